"""A sandbox's store holding generated documents beside stored ones: read like stored ones,
written and deleted as stored ones are (and rolled back with them), each collection's
version moving only with its own writes."""

from __future__ import annotations

import pytest

from connectors.sandbox.store import Doc, Generated, Store


def _doc(n: int) -> Doc | None:
    return None if n == 2 else {"id": f"g{n}", "n": n, "tags": []}


def _position(id_: str) -> int | None:
    n = int(id_[1:]) if id_[:1] == "g" and id_[1:].isdigit() else -1
    return n if 0 <= n < 5 else None


@pytest.fixture
def store() -> Store:
    store = Store()
    store.put("thing", "s1", {"id": "s1", "n": 100})
    store.generate("thing", Generated(5, _position, _doc))
    return store


def _ids(store: Store) -> list[str]:
    return [d["id"] for d in store.all("thing")]


def test_generated_documents_are_read_like_stored_ones(store: Store) -> None:
    assert _ids(store) == ["g0", "g1", "g3", "g4", "s1"]  # made ones first; none at 2
    assert store.get("thing", "g3") == {"id": "g3", "n": 3, "tags": []}
    assert store.get("thing", "g2") is None and store.get("thing", "g9") is None
    assert list(store.get_many("thing", ["g4", "s1", "g2", "g4"])) == ["g4", "s1"]
    assert [d["n"] for d in store.all("thing", lambda d: d["n"] % 2 == 1)] == [1, 3]


def test_a_generated_document_handed_out_is_the_callers_to_change(store: Store) -> None:
    got = store.get("thing", "g1")
    assert got is not None
    got["tags"].append("mine")
    assert store.get("thing", "g1") == {"id": "g1", "n": 1, "tags": []}


def test_writing_a_generated_document_stores_it_in_its_place(store: Store) -> None:
    store.put("thing", "g1", {"id": "g1", "n": -1})
    assert _ids(store) == ["g0", "g1", "g3", "g4", "s1"]
    assert store.get("thing", "g1") == {"id": "g1", "n": -1}
    assert [c[2:4] for c in store.changes(0)][-1] == ("g1", "updated")


def test_deleting_a_generated_document_is_a_change_and_stays_deleted(store: Store) -> None:
    assert store.delete("thing", "g3") is True
    assert store.delete("thing", "g3") is False
    assert store.get("thing", "g3") is None and _ids(store) == ["g0", "g1", "g4", "s1"]
    assert [c[2:4] for c in store.changes(0)][-1] == ("g3", "deleted")
    store.put("thing", "g3", {"id": "g3", "n": 33})
    assert store.get("thing", "g3") == {"id": "g3", "n": 33}
    assert [c[2:4] for c in store.changes(0)][-1] == ("g3", "created")


def test_a_rollback_undoes_writes_to_generated_documents(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.delete("thing", "g0")
        store.put("thing", "g1", {"id": "g1", "n": -1})
        raise RuntimeError("refused")
    assert _ids(store) == ["g0", "g1", "g3", "g4", "s1"]
    assert store.get("thing", "g1") == {"id": "g1", "n": 1, "tags": []}


def test_a_collection_version_moves_with_its_own_writes_only(store: Store) -> None:
    before = store.version_of("thing")
    store.put("other", "o1", {"id": "o1"})
    assert store.version_of("thing") == before
    store.delete("thing", "g4")
    assert store.version_of("thing") > before
    moved = store.version_of("thing")
    store.generate("thing", Generated(1, _position, _doc))
    assert store.version_of("thing") > moved and _ids(store) == ["g0", "s1"]
