"""API keys for service clients: ``og_<id>_<secret>``, sent as ``Authorization: Bearer
og_...`` or ``X-API-Key: og_...``.

The secret is 256 random bits, shown once when the key is created; opsgraph keeps only
its SHA-256 (a slow password hash buys nothing against a secret that cannot be guessed)
and compares it in constant time. A key carries scopes and, optionally, the legal
entities its principal may see. Revoking a key refuses it from the next request on: keys
are looked up on every request, by id, never cached.

A key's last use is written at most once a minute per key, in the background.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.principal import Principal, PrincipalKind
from gateway.auth.scopes import Scope
from gateway.data.detached import Detached
from gateway.errors import NotFound, Unauthenticated
from gateway.logs import quoted
from gateway.storage.database import create_engine, sessions
from gateway.storage.tables import ApiKey

PREFIX = "og_"
KEY_PATTERN = re.compile(r"\bog_([0-9a-f]{16})_([\w-]{20,})")
TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class KeyInfo:
    """A key as ``keys list`` shows it: everything but the secret, which is not kept."""

    id: str
    name: str
    scopes: tuple[Scope, ...]
    legal_entities: tuple[str, ...] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(
            id=row.id,
            name=row.name,
            scopes=_scopes(row.scopes),
            legal_entities=None if row.legal_entities is None else tuple(row.legal_entities),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    def principal(self) -> Principal:
        return Principal.of(
            f"key:{self.id}",
            PrincipalKind.SERVICE,
            scopes=self.scopes,
            entities=self.legal_entities,
        )


def _scopes(stored: Iterable[str]) -> tuple[Scope, ...]:
    known = {s.value for s in Scope}
    return tuple(Scope(s) for s in stored if s in known)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], touch_every_s: float = TOUCH_EVERY_S
    ) -> None:
        self._sessions = sessions
        self._touch_every_s = touch_every_s
        self._touching: set[str] = set()  # ids of the keys whose last use is being written
        self._touches = Detached("API key last-used write")

    async def create(
        self, name: str, scopes: Iterable[Scope], legal_entities: Iterable[str] | None = None
    ) -> tuple[KeyInfo, str]:
        """A new key and its full text ``og_<id>_<secret>``, which nobody can see again."""
        id_, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        row = ApiKey(
            id=id_,
            name=name,
            secret_sha256=_digest(secret),
            scopes=sorted({s.value for s in scopes}),
            legal_entities=None if legal_entities is None else sorted(set(legal_entities)),
            created_at=datetime.now(UTC),
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return KeyInfo.of(row), f"{PREFIX}{id_}_{secret}"

    async def issued(self) -> list[KeyInfo]:
        """Every key, revoked ones included, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
            return [KeyInfo.of(row) for row in rows]

    async def revoke(self, key_id: str) -> KeyInfo:
        async with self._sessions.begin() as session:
            row = await session.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"no API key with id {quoted(key_id)}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return KeyInfo.of(row)

    async def principal(self, presented: str) -> Principal:
        """The service ``presented`` (a whole key) speaks for; ``Unauthenticated`` if it is
        not a key we issued or it is revoked."""
        match = KEY_PATTERN.fullmatch(presented)
        if match is None:
            raise Unauthenticated("the API key is not valid")
        id_, secret = match.groups()
        async with self._sessions() as session:
            row = await session.get(ApiKey, id_)
            if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
                raise Unauthenticated("the API key is not valid")
            if row.revoked_at is not None:
                raise Unauthenticated("the API key has been revoked")
            key = KeyInfo.of(row)
        self._touch(key)
        return key.principal()

    def _touch(self, key: KeyInfo) -> None:
        """Writes the key's last use when the stored one (read just now) is a minute old,
        unless that write is on its way already."""
        used, every = key.last_used_at, timedelta(seconds=self._touch_every_s)
        if key.id in self._touching or (used and datetime.now(UTC) - used < every):
            return
        self._touching.add(key.id)
        if not self._touches.start(self._write_use(key.id)):
            self._touching.discard(key.id)

    async def _write_use(self, key_id: str) -> None:
        try:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(UTC))
                )
        finally:
            self._touching.discard(key_id)

    async def drain(self) -> None:
        await self._touches.drain()


@asynccontextmanager
async def opened(database_url: str) -> AsyncIterator[ApiKeys]:
    """The keys of the gateway database at ``database_url``, for the ``opsgraph keys``
    commands."""
    engine = create_engine(database_url)
    try:
        keys = ApiKeys(sessions(engine))
        yield keys
        await keys.drain()
    finally:
        await engine.dispose()
