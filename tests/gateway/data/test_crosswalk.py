from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event

from connectors.models import SystemName
from gateway.data.crosswalk import Crosswalk, CustomerIdentity
from gateway.data.remembered import Remembered
from gateway.errors import BadUserInput
from gateway.storage.database import create_engine, sessions

BILLING, ERP, CRM = SystemName.BILLING, SystemName.ERP, SystemName.CRM
US = "Opsgraph Inc."


@pytest.fixture
async def crosswalk(migrated_url: str) -> AsyncIterator[Crosswalk]:
    engine = create_engine(migrated_url)
    walk = Crosswalk(sessions(engine))
    await walk.link("cust_0002", "Globex", {BILLING: "cus_B", ERP: "1002"}, "Opsgraph B.V.")
    await walk.link("cust_0001", "Acme", {BILLING: "cus_A", ERP: "1001", CRM: "001A"}, US)
    await walk.link("cust_0003", "Initech", {})
    yield walk
    await engine.dispose()


async def test_get_many_answers_in_the_order_asked(crosswalk: Crosswalk) -> None:
    got = await crosswalk.get_many(["cust_0002", "nope", "cust_0001", "cust_0002"], entities=None)
    ids = {BILLING: "cus_A", ERP: "1001", CRM: "001A"}
    acme = CustomerIdentity("cust_0001", "Acme", ids, US)
    globex = CustomerIdentity(
        "cust_0002", "Globex", {BILLING: "cus_B", ERP: "1002"}, "Opsgraph B.V."
    )
    assert got == [globex, None, acme, globex]


async def test_lookup_by_external_id(crosswalk: Crosswalk) -> None:
    found = await crosswalk.by_external_id(ERP, "1002", entities=None)
    assert found is not None and found.id == "cust_0002"
    assert await crosswalk.by_external_id(CRM, "1002", entities=None) is None


async def test_relinking_updates_in_place(crosswalk: Crosswalk) -> None:
    await crosswalk.link("cust_0002", "Globex Corp", {ERP: "2002", CRM: "001B"}, US)
    (found,) = await crosswalk.get_many(["cust_0002"], entities=None)
    assert found == CustomerIdentity(
        "cust_0002", "Globex Corp", {BILLING: "cus_B", ERP: "2002", CRM: "001B"}, US
    )
    assert await crosswalk.by_external_id(ERP, "1002", entities=None) is None


async def test_pages_follow_the_id_cursor(crosswalk: Crosswalk) -> None:
    first, more, total = await crosswalk.page(2, None, entities=None)
    assert [c.id for c in first] == ["cust_0001", "cust_0002"] and more is True and total == 3
    rest, more, total = await crosswalk.page(2, "cust_0002", entities=None)
    assert [c.id for c in rest] == ["cust_0003"] and more is False and total == 3
    named, more, total = await crosswalk.page(5, None, name_contains="globex", entities=None)
    assert [c.id for c in named] == ["cust_0002"] and more is False and total == 1


async def test_customers_of_other_legal_entities_are_not_there(crosswalk: Crosswalk) -> None:
    us = frozenset({US})
    got = await crosswalk.get_many(["cust_0001", "cust_0002", "cust_0003"], entities=us)
    assert [c and c.id for c in got] == ["cust_0001", None, None]
    assert await crosswalk.by_external_id(ERP, "1002", entities=us) is None
    found = await crosswalk.by_external_id(ERP, "1001", entities=us)
    assert found is not None and found.id == "cust_0001"
    page, more, total = await crosswalk.page(5, None, entities=us)
    assert [c.id for c in page] == ["cust_0001"] and more is False and total == 1
    nothing, more, total = await crosswalk.page(5, None, entities=frozenset())
    assert nothing == [] and more is False and total == 0


async def test_opsgraph_is_not_an_external_system(crosswalk: Crosswalk) -> None:
    with pytest.raises(BadUserInput):
        await crosswalk.link("cust_0009", "X", {SystemName.OPSGRAPH: "cust_0009"})


async def test_which_customer_an_external_id_is_is_remembered_until_a_link_moves(
    migrated_url: str,
) -> None:
    engine = create_engine(migrated_url)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    walk = Crosswalk(sessions(engine), Remembered(ttl_s=3600))
    try:
        await walk.link("cust_0001", "Acme", {BILLING: "cus_A", ERP: "1001"}, US)
        asked = {(BILLING, "cus_A"), (ERP, "1001"), (CRM, "001A")}
        statements.clear()
        assert await walk.customer_ids(asked) == {(BILLING, "cus_A"): "cust_0001",
                                                  (ERP, "1001"): "cust_0001"}  # fmt: skip
        assert len(statements) == 1
        # Asked again, linked or not: nothing is read.
        assert await walk.customer_ids(asked) == {(BILLING, "cus_A"): "cust_0001",
                                                  (ERP, "1001"): "cust_0001"}  # fmt: skip
        assert len(statements) == 1
        await walk.attach("cust_0001", CRM, "001A")
        assert (await walk.customer_ids(asked))[(CRM, "001A")] == "cust_0001"
        assert await walk.detach("cust_0001", ERP) == "1001"
        assert (ERP, "1001") not in await walk.customer_ids(asked)
        await walk.link("cust_0001", "Acme", {BILLING: "cus_A2"}, US)  # relinked in place
        assert await walk.customer_ids({(BILLING, "cus_A"), (BILLING, "cus_A2")}) == {
            (BILLING, "cus_A2"): "cust_0001"
        }
    finally:
        await engine.dispose()
