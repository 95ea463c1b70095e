"""JSON for what the gateway writes and reads back itself: its JSON columns (inbox and outbox
payloads, audit details), the stream's events and the broadcast's notices.

orjson rather than the standard library's ``json``: a webhook's payload is encoded and
decoded several times on its way (the inbox, the outbox, the stream), and the standard
library's encoder and decoder were 6% of the CPU a delivery costs. A value orjson does not
take (an integer beyond 64 bits in a vendor's payload) is written by ``json``, so nothing
that ``json`` could store is refused; text orjson does not read (``NaN``) is read by
``json``. One difference remains: orjson reads an integer beyond 64 bits as a float. No
field the gateway uses holds one (money is minor units, ids are strings).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # as ``json`` does: {1: x} is {"1": x}


def dumps(value: object) -> str:
    return dumpb(value).decode()


def dumpb(value: object) -> bytes:
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: beyond what orjson writes
        return json.dumps(value).encode()


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
