"""Replay by key: the first successful answer is written once and answered again; a key
used for another request is the vendor's conflict, or, without one, replayed all the same;
a refusal is not remembered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.sandbox.errors import VendorError
from connectors.sandbox.idempotency import Outcome, Replays, fingerprint
from connectors.sandbox.store import Store


def conflict(key: str) -> VendorError:
    return VendorError(400, {"reused": key}, "reused")


def counting(answer: Any) -> tuple[list[int], Callable[[], tuple[int, Any]]]:
    writes: list[int] = []

    def write() -> tuple[int, Any]:
        writes.append(1)
        return 201, answer

    return writes, write


def test_a_key_writes_once_and_replays_the_first_answer() -> None:
    replays = Replays(Store(), conflict)
    writes, write = counting({"id": 1})
    first = replays.once("k", fingerprint("POST", {"a": 1}), write)
    again = replays.once("k", fingerprint("POST", {"a": 1}), write)
    assert (first, again) == (Outcome(201, {"id": 1}, False), Outcome(201, {"id": 1}, True))
    assert writes == [1]


def test_a_key_reused_for_another_request_is_the_vendors_conflict() -> None:
    replays = Replays(Store(), conflict)
    writes, write = counting({"id": 1})
    replays.once("k", fingerprint({"a": 1}), write)
    with pytest.raises(VendorError) as refused:
        replays.once("k", fingerprint({"a": 2}), write)
    assert refused.value.document == {"reused": "k"}
    assert writes == [1]


def test_without_a_conflict_a_key_replays_whatever_the_request() -> None:
    replays = Replays(Store())
    writes, write = counting("/record/1")
    replays.once("k", fingerprint({"a": 1}), write)
    assert replays.once("k", fingerprint({"a": 2}), write) == Outcome(201, "/record/1", True)
    assert writes == [1]


def test_a_refusal_is_not_remembered() -> None:
    replays = Replays(Store(), conflict)

    def refuse() -> tuple[int, Any]:
        raise VendorError(422, {"invalid": True}, "invalid")

    with pytest.raises(VendorError):
        replays.once("k", fingerprint({"a": 1}), refuse)
    writes, write = counting({"id": 2})
    assert replays.once("k", fingerprint({"a": 2}), write) == Outcome(201, {"id": 2}, False)


def test_without_a_key_every_request_writes() -> None:
    replays = Replays(Store(), conflict)
    writes, write = counting({"id": 1})
    replays.once(None, fingerprint({}), write)
    replays.once("", fingerprint({}), write)
    assert writes == [1, 1]


def test_a_fingerprint_ignores_key_order() -> None:
    assert fingerprint({"a": 1, "b": [2]}) == fingerprint({"b": [2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": "1"})
