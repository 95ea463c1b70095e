from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.models import SystemName
from gateway.data.crosswalk import Crosswalk, CustomerIdentity
from gateway.errors import BadUserInput
from gateway.storage.database import create_engine, sessions

BILLING, ERP, CRM = SystemName.BILLING, SystemName.ERP, SystemName.CRM


@pytest.fixture
async def crosswalk(migrated_url: str) -> AsyncIterator[Crosswalk]:
    engine = create_engine(migrated_url)
    walk = Crosswalk(sessions(engine))
    await walk.link("cust_0002", "Globex", {BILLING: "cus_B", ERP: "1002"})
    await walk.link("cust_0001", "Acme", {BILLING: "cus_A", ERP: "1001", CRM: "001A"})
    await walk.link("cust_0003", "Initech", {})
    yield walk
    await engine.dispose()


async def test_get_many_answers_in_the_order_asked(crosswalk: Crosswalk) -> None:
    got = await crosswalk.get_many(["cust_0002", "nope", "cust_0001", "cust_0002"])
    acme = CustomerIdentity("cust_0001", "Acme", {BILLING: "cus_A", ERP: "1001", CRM: "001A"})
    globex = CustomerIdentity("cust_0002", "Globex", {BILLING: "cus_B", ERP: "1002"})
    assert got == [globex, None, acme, globex]


async def test_lookup_by_external_id(crosswalk: Crosswalk) -> None:
    found = await crosswalk.by_external_id(ERP, "1002")
    assert found is not None and found.id == "cust_0002"
    assert await crosswalk.by_external_id(CRM, "1002") is None


async def test_relinking_updates_in_place(crosswalk: Crosswalk) -> None:
    await crosswalk.link("cust_0002", "Globex Corp", {ERP: "2002", CRM: "001B"})
    (found,) = await crosswalk.get_many(["cust_0002"])
    assert found == CustomerIdentity(
        "cust_0002", "Globex Corp", {BILLING: "cus_B", ERP: "2002", CRM: "001B"}
    )
    assert await crosswalk.by_external_id(ERP, "1002") is None


async def test_pages_follow_the_id_cursor(crosswalk: Crosswalk) -> None:
    first, more, total = await crosswalk.page(2, None)
    assert [c.id for c in first] == ["cust_0001", "cust_0002"] and more is True and total == 3
    rest, more, total = await crosswalk.page(2, "cust_0002")
    assert [c.id for c in rest] == ["cust_0003"] and more is False and total == 3
    named, more, total = await crosswalk.page(5, None, name_contains="globex")
    assert [c.id for c in named] == ["cust_0002"] and more is False and total == 1


async def test_opsgraph_is_not_an_external_system(crosswalk: Crosswalk) -> None:
    with pytest.raises(BadUserInput):
        await crosswalk.link("cust_0009", "X", {SystemName.OPSGRAPH: "cust_0009"})
