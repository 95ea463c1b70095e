"""API keys on SQLite and PostgreSQL: only a hash is kept, a key speaks for a service with
its scopes and legal entities, a revoked or unknown key is refused, and its last use is
written at most once a minute."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from gateway.auth.keys import ApiKeys, opened
from gateway.auth.principal import PrincipalKind
from gateway.auth.scopes import Scope
from gateway.errors import NotFound, Unauthenticated
from gateway.storage.database import create_engine, sessions
from gateway.storage.tables import ApiKey


@pytest.fixture
async def keys(migrated_url: str) -> AsyncIterator[ApiKeys]:
    async with opened(migrated_url) as store:
        yield store


async def _rows(url: str) -> list[ApiKey]:
    engine = create_engine(url)
    try:
        async with sessions(engine)() as session:
            return list(await session.scalars(select(ApiKey)))
    finally:
        await engine.dispose()


async def test_only_the_hash_of_the_secret_is_kept(keys: ApiKeys, migrated_url: str) -> None:
    info, key = await keys.create("router", [Scope.SCHEMA_READ, Scope.CUSTOMERS_READ])
    prefix, key_id, secret = key.split("_", 2)
    assert (prefix, key_id) == ("og", info.id) and len(secret) == 43
    (row,) = await _rows(migrated_url)
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(vars(row))
    assert row.scopes == ["customers:read", "schema:read"] and row.legal_entities is None


async def test_a_key_speaks_for_a_service_with_its_scopes_and_entities(keys: ApiKeys) -> None:
    info, key = await keys.create("eu", [Scope.BILLING_READ], ["Opsgraph B.V."])
    principal = await keys.principal(key)
    assert principal.subject == f"key:{info.id}"
    assert principal.kind is PrincipalKind.SERVICE
    assert principal.scopes == frozenset({Scope.BILLING_READ})
    assert principal.roles == frozenset()
    assert principal.entities == frozenset({"Opsgraph B.V."})


async def test_unknown_malformed_and_revoked_keys_are_refused(keys: ApiKeys) -> None:
    info, key = await keys.create("ci", [Scope.SYSTEMS_READ])
    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    unknown_id = "og_" + "0" * 16 + key[19:]
    for presented in (wrong_secret, unknown_id, "og_nothex_secret", "og_"):
        with pytest.raises(Unauthenticated) as invalid:
            await keys.principal(presented)
        assert invalid.value.message == "the API key is not valid"
    revoked = await keys.revoke(info.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated) as refused:
        await keys.principal(key)
    assert refused.value.message == "the API key has been revoked"
    with pytest.raises(NotFound) as missing:
        await keys.revoke("nope")
    assert missing.value.message == "no API key with id 'nope'"
    assert [k.id for k in await keys.issued()] == [info.id]


async def test_the_last_use_is_written_at_most_once_a_minute(
    keys: ApiKeys, migrated_url: str
) -> None:
    info, key = await keys.create("dash", [Scope.CUSTOMERS_READ])
    assert info.last_used_at is None
    for _ in range(5):
        await keys.principal(key)
    await keys.drain()
    (first,) = await keys.issued()
    assert first.last_used_at is not None
    for _ in range(5):
        await keys.principal(key)
    await keys.drain()
    (again,) = await keys.issued()
    assert again.last_used_at == first.last_used_at
    engine = create_engine(migrated_url)
    eager = ApiKeys(sessions(engine), touch_every_s=0)
    await eager.principal(key)
    await eager.drain()
    await engine.dispose()
    (later,) = await keys.issued()
    assert later.last_used_at is not None and later.last_used_at > first.last_used_at
