"""Which text a request runs, given its ``query`` and ``extensions.persistedQuery`` and the
mode in settings (see the package's docstring); and keeping what automatic persisted
queries register."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from gateway.auth.principal import Principal
from gateway.auth.scopes import Scope
from gateway.data.cache import EntityCache, Entry, FallbackCache, MemoryCache
from gateway.data.redis_guard import RedisGuard
from gateway.persisted.errors import (
    NotInPersistedList,
    NotInSafelist,
    PersistedQueryInvalid,
    PersistedQueryMismatch,
    PersistedQueryNotFound,
    PersistedQueryNotSupported,
)
from gateway.persisted.manifest import load, sha256
from gateway.settings import PersistedMode, PersistedQuerySettings

KEY = "apq:"
# Queries kept in process (each at most the request body limit, usually a few KB).
KEPT_IN_PROCESS = 10_000
HASH = re.compile(r"[0-9a-f]{64}")


class PersistedQueries:
    def __init__(self, settings: PersistedQuerySettings) -> None:
        self.mode = settings.mode
        self.ttl_s = settings.ttl_s
        self.registered = load(settings.manifest) if self.mode is PersistedMode.SAFELIST else {}
        self._memory = MemoryCache(max_entries=KEPT_IN_PROCESS)
        self._store: EntityCache = self._memory

    def share(self, guard: RedisGuard) -> None:
        """Keep automatically persisted queries in Redis, for every replica."""
        self._store = FallbackCache(guard, self._memory)

    async def query(
        self, query: str | None, extensions: Mapping[str, object] | None, asker: Principal | None
    ) -> str | None:
        """The text the request runs: ``query``, or the one its hash names."""
        wanted = persisted_hash(extensions)
        if wanted is not None and query is not None and sha256(query) != wanted:
            raise PersistedQueryMismatch("The persisted query hash is not the query's SHA-256.")
        if self.mode is PersistedMode.SAFELIST:
            return self._safelisted(query, wanted, asker)
        if wanted is None:
            return query
        if self.mode is PersistedMode.OFF:
            raise PersistedQueryNotSupported()
        if query is not None:
            return query
        (kept,) = await self._store.get_many([KEY + wanted])
        if kept is None:
            raise PersistedQueryNotFound()
        return str(kept.value)

    async def keep(self, query: str | None, extensions: Mapping[str, object] | None) -> None:
        """Registers an automatically persisted query sent with its text (once it has
        validated: the text matches its hash, ``query`` checked that)."""
        wanted = persisted_hash(extensions)
        if self.mode is not PersistedMode.APQ or query is None or wanted is None:
            return
        now = time.time()
        entry = Entry(query, fetched_at=now, fresh_until=now + self.ttl_s)
        await self._store.put_many({KEY + wanted: entry}, self.ttl_s)

    def _safelisted(
        self, query: str | None, wanted: str | None, asker: Principal | None
    ) -> str | None:
        if wanted is not None:
            body = self.registered.get(wanted)
            if body is None:
                raise NotInPersistedList(f"No registered operation has the hash {wanted}.")
            return body
        if query is None or sha256(query) in self.registered:
            return query
        if asker is not None and asker.may(Scope.SCHEMA_READ):
            return query
        raise NotInSafelist(
            "Only registered operations run here: send one of them, or its persisted query hash."
        )


def persisted_hash(extensions: Mapping[str, object] | None) -> str | None:
    """The hash ``extensions.persistedQuery`` names, if any."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise PersistedQueryInvalid("persistedQuery must be version 1.")
    wanted = persisted.get("sha256Hash")
    if not isinstance(wanted, str) or not HASH.fullmatch(wanted):
        raise PersistedQueryInvalid("persistedQuery.sha256Hash must be 64 lowercase hex digits.")
    return wanted
