"""A sandbox's own storage: JSON documents in SQLite, with a change sequence for change
feeds and a table of idempotent responses; and, beside them, generated documents
(``Generated``): a benchmark's million invoices, made on demand from their position rather
than stored.

The standard library's ``sqlite3`` is used synchronously on purpose: every statement is
sub-millisecond on a local file, and a sandbox is a stand-in, not a production service.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# The body that stands for a generated document deleted (a stored row, so that it rolls back).
_GONE = "null"
Doc = dict[str, Any]


@dataclass(frozen=True)
class Generated:
    """A collection's documents made on demand: ``count`` positions, ``make(n)`` the
    document at position ``n`` (a new one each call; None when there is none there) and
    ``position(id)`` where a document is (None: not one of these). A million Stripe
    invoices held as dicts take ~9 GB; made from their position, the bytes of their maker.
    What they hold is what the seed path stores for the same records: the sandbox makes
    them with the same builders."""

    count: int
    position: Callable[[str], int | None]
    make: Callable[[int], Doc | None]


class Store:
    """Documents live in SQLite and, decoded, in memory (in insertion order), so the full
    scans a sandbox does per request cost neither SQL nor JSON decoding. Readers get their
    own copies: mutating a returned document never changes what is stored. ``version``
    changes with every write, ``version_of(collection)`` with every write to that
    collection, for callers that derive tables or orders from the documents.

    A collection may also hold generated documents (``generate``), listed before the stored
    ones. Writing one stores it (in its place); deleting one stores that it is gone. Their
    loading is not a change: the change sequence starts from them, as from a restore."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._docs: dict[str, dict[str, tuple[str, Doc | None]]] = {}
        self._generated: dict[str, Generated] = {}
        self._written: dict[str, int] = {}  # collection -> ``version`` at its last write
        self._reset_at = 0  # ``version`` at the last rollback, which may have undone any
        self.version = 0

    def _collection(self, collection: str) -> dict[str, tuple[str, Doc | None]]:
        """The collection's id -> (JSON text, decoded; None for a generated document
        deleted), loaded once (lock held)."""
        docs = self._docs.get(collection)
        if docs is None:
            rows = self._db.execute(
                "SELECT id, body FROM docs WHERE collection=? ORDER BY rowid", (collection,)
            ).fetchall()
            docs = self._docs[collection] = {i: (body, json.loads(body)) for i, body in rows}
        return docs

    def _wrote(self, collection: str) -> None:
        self.version += 1
        self._written[collection] = self.version

    def version_of(self, collection: str) -> int:
        """Changes whenever a document of ``collection`` may have."""
        return max(self._written.get(collection, 0), self._reset_at)

    def generate(self, collection: str, generated: Generated) -> None:
        """Hold ``generated``'s documents in ``collection`` (instead of any generated
        before); documents stored under the same ids stand in for them."""
        with self._lock:
            self._generated[collection] = generated
            self._wrote(collection)

    def _made(self, collection: str, id: str) -> Doc | None:
        generated = self._generated.get(collection)
        if generated is None:
            return None
        at = generated.position(id)
        return None if at is None else generated.make(at)

    def _entries(self, collection: str) -> Iterator[tuple[str | None, Doc]]:
        """(JSON text, or None for a document made afresh; the document) in insertion
        order: the generated ones, each stored one that stands in for one of them in its
        place, then the other stored ones."""
        with self._lock:
            stored = dict(self._collection(collection))
            generated = self._generated.get(collection)
        if generated is not None:
            for n in range(generated.count):
                made = generated.make(n)
                if made is None:
                    continue
                kept = stored.pop(made["id"], None)
                if kept is None:
                    yield None, made
                elif kept[1] is not None:
                    yield kept[0], kept[1]
        for text, doc in stored.values():
            if doc is not None:
                yield text, doc

    def each(self, collection: str) -> Iterator[Doc]:
        """Every document in insertion order as the store holds it, not copied: for
        reading alone (``all`` hands out copies)."""
        for _, doc in self._entries(collection):
            yield doc

    def _run(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def put(self, collection: str, id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace a document and record the change."""
        text = json.dumps(body)
        with self._lock:
            docs = self._collection(collection)
            row = docs.get(id)
            if row is None:
                existed = self._made(collection, id) is not None
            else:
                existed = row[1] is not None
            # INSERT OR REPLACE would move a replaced row to the end; keep its place.
            if row is not None:
                self._db.execute(
                    "UPDATE docs SET body=? WHERE collection=? AND id=?", (text, collection, id)
                )
            else:
                self._db.execute(
                    "INSERT INTO docs (collection, id, body) VALUES (?, ?, ?)",
                    (collection, id, text),
                )
            docs[id] = (text, json.loads(text))
            self._wrote(collection)
            self._db.execute(
                "INSERT INTO changes (collection, id, type, at) VALUES (?, ?, ?, ?)",
                (collection, id, "updated" if existed else "created", _now()),
            )
        return body

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._collection(collection).get(id)
        if found is None:
            return self._made(collection, id)
        return None if found[1] is None else json.loads(found[0])

    def get_many(self, collection: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            docs = self._collection(collection)
            found = {id_: docs.get(id_) for id_ in dict.fromkeys(ids)}
        out = {}
        for id_, row in found.items():
            if row is None:
                made = self._made(collection, id_)
                if made is not None:
                    out[id_] = made
            elif row[1] is not None:
                out[id_] = json.loads(row[0])
        return out

    def all(
        self, collection: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Every document in insertion order, optionally filtered. ``where`` sees the
        stored document and must not change it; only the matches are copied."""
        return [
            doc if text is None else json.loads(text)
            for text, doc in self._entries(collection)
            if where is None or where(doc)
        ]

    def delete(self, collection: str, id: str) -> bool:
        with self._lock:
            docs = self._collection(collection)
            row = docs.get(id)
            self._wrote(collection)
            if self._made(collection, id) is None:
                docs.pop(id, None)
                gone = self._db.execute(
                    "DELETE FROM docs WHERE collection=? AND id=?", (collection, id)
                ).rowcount
            elif row is None or row[1] is not None:  # a generated one: stored as gone
                docs[id] = (_GONE, None)
                self._db.execute(
                    "INSERT OR REPLACE INTO docs (collection, id, body) VALUES (?, ?, ?)",
                    (collection, id, _GONE),
                )
                gone = 1
            else:
                gone = 0
            if gone:
                self._db.execute(
                    "INSERT INTO changes (collection, id, type, at) VALUES (?, ?, 'deleted', ?)",
                    (collection, id, _now()),
                )
        return bool(gone)

    def changes(self, after: int, limit: int = 100) -> list[tuple[int, str, str, str, str]]:
        """(seq, collection, id, type, at) after ``after``, oldest first."""
        rows = self._run(
            "SELECT seq, collection, id, type, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def next_number(self, name: str, start: int = 1) -> int:
        """A per-name counter for generating ids: start, start+1, ..."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
            value = start if row is None else row[0] + 1
            self._db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (name, value))
        return value

    def remembered(self, key: str) -> tuple[int, Any] | None:
        """The response stored for an idempotency key, if any."""
        rows = self._run("SELECT status, body FROM idempotency WHERE key=?", (key,))
        return (rows[0][0], json.loads(rows[0][1])) if rows else None

    def remember(self, key: str, status: int, body: Any) -> None:
        self._run(
            "INSERT OR IGNORE INTO idempotency (key, status, body) VALUES (?, ?, ?)",
            (key, status, json.dumps(body)),
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes inside commit together, or, when the block raises, none of them does
        (documents, change log and counters alike). Not reentrant; the block must not await,
        so that no other request's write can fall inside it."""
        self._run("BEGIN")
        try:
            yield
        except BaseException:
            with self._lock:
                self._db.execute("ROLLBACK")
                self._docs.clear()  # reloaded from the rolled-back tables when next read
                self.version += 1
                self._reset_at = self.version
            raise
        self._run("COMMIT")

    def close(self) -> None:
        self._db.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()
