"""Replay of idempotent requests by key, over the sandbox's store.

The first successful answer to a key is remembered; a retry with that key gets it again,
writing nothing. A refusal (a ``VendorError`` raised by the write) is not remembered, as on
Stripe and Zendesk, so a corrected request may reuse its key. A key first used with another
request (another ``fingerprint``) is the vendor's ``conflict``; a vendor with no such check
(NetSuite's synchronous creates) passes none and replays whatever the request.

``once`` never awaits: a concurrent retry with the same key cannot slip between the check
and the write, so there is no lock to hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.errors import VendorError
from connectors.sandbox.store import Store


def fingerprint(*request: Any) -> str:
    """What makes two requests the same one: a digest of their canonical JSON."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    status: int
    answer: Any  # what the system needs to answer again: a body, a location, a request id
    replayed: bool


class Replays:
    def __init__(self, store: Store, conflict: Callable[[str], VendorError] | None = None) -> None:
        self.store = store
        self.conflict = conflict

    def once(
        self, key: str | None, fingerprint: str, write: Callable[[], tuple[int, Any]]
    ) -> Outcome:
        """``write()`` (status, answer) the first time ``key`` is seen, the remembered
        outcome every later time; without a key, ``write()`` every time."""
        if key:
            seen = self.store.remembered(key)
            if seen is not None:
                status, saved = seen
                if self.conflict is not None and saved["fingerprint"] != fingerprint:
                    raise self.conflict(key)
                return Outcome(status, saved["answer"], replayed=True)
        status, answer = write()
        if key:
            self.store.remember(key, status, {"fingerprint": fingerprint, "answer": answer})
        return Outcome(status, answer, replayed=False)
