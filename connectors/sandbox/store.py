"""A sandbox's own storage: JSON documents in SQLite, with a change sequence for change
feeds and a table of idempotent responses.

The standard library's ``sqlite3`` is used synchronously on purpose: every statement is
sub-millisecond on a local file, and a sandbox is a stand-in, not a production service.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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


class Store:
    """Documents live in SQLite and, decoded, in memory (in insertion order), so the full
    scans a sandbox does per request cost neither SQL nor JSON decoding. Readers get their
    own copies: mutating a returned document never changes what is stored. ``version``
    changes with every write, for callers that derive tables from the documents."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._docs: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
        self.version = 0

    def _collection(self, collection: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """The collection's id -> (JSON text, decoded), loaded once (lock held)."""
        docs = self._docs.get(collection)
        if docs is None:
            rows = self._db.execute(
                "SELECT id, body FROM docs WHERE collection=? ORDER BY rowid", (collection,)
            ).fetchall()
            docs = self._docs[collection] = {i: (body, json.loads(body)) for i, body in rows}
        return docs

    def _run(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def put(self, collection: str, id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace a document and record the change."""
        text = json.dumps(body)
        with self._lock:
            docs = self._collection(collection)
            existed = id in docs
            # INSERT OR REPLACE would move a replaced row to the end; keep its place.
            if existed:
                self._db.execute(
                    "UPDATE docs SET body=? WHERE collection=? AND id=?", (text, collection, id)
                )
            else:
                self._db.execute(
                    "INSERT INTO docs (collection, id, body) VALUES (?, ?, ?)",
                    (collection, id, text),
                )
            docs[id] = (text, json.loads(text))
            self.version += 1
            self._db.execute(
                "INSERT INTO changes (collection, id, type, at) VALUES (?, ?, ?, ?)",
                (collection, id, "updated" if existed else "created", _now()),
            )
        return body

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._collection(collection).get(id)
        return None if found is None else json.loads(found[0])

    def get_many(self, collection: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            docs = self._collection(collection)
            found = {id_: docs[id_][0] for id_ in dict.fromkeys(ids) if id_ in docs}
        return {id_: json.loads(text) for id_, text in found.items()}

    def all(
        self, collection: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Every document in insertion order, optionally filtered. ``where`` sees the
        stored document and must not change it; only the matches are copied."""
        with self._lock:
            docs = list(self._collection(collection).values())
        return [json.loads(text) for text, doc in docs if where is None or where(doc)]

    def delete(self, collection: str, id: str) -> bool:
        with self._lock:
            self._collection(collection).pop(id, None)
            self.version += 1
            gone = self._db.execute(
                "DELETE FROM docs WHERE collection=? AND id=?", (collection, id)
            ).rowcount
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
            raise
        self._run("COMMIT")

    def close(self) -> None:
        self._db.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()
