"""The reconciliation benchmark's world: the same for the same arguments, one invoice in a
hundred planted with each kind of discrepancy in turn, and made by billing and the ERP
themselves (``/_sandbox/bulk``) as the very documents the seed path stores."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from connectors import codec
from connectors.models import ExceptionKind, InvoiceStatus, Posting, Record, SystemName
from connectors.money import Money
from connectors.sandbox import billing, crm, erp, jsonio
from connectors.sandbox.billing import documents
from connectors.sandbox.billing.api import StripeApi
from connectors.sandbox.bulk import KINDS, BenchWorld
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.erp.api import NetSuiteApi
from connectors.sandbox.fleet import CreateApp

WORLD = BenchWorld(invoices=2100, seed=4)
STRIPE = {"Authorization": "Bearer sandbox-secret"}
NETSUITE = {**STRIPE, "Prefer": "transient"}
SUITEQL = "/services/rest/query/v1/suiteql"


def test_the_world_is_the_same_for_the_same_arguments() -> None:
    again = BenchWorld(invoices=2100, seed=4)
    other = BenchWorld(invoices=2100, seed=5)
    assert list(again.planted()) == list(WORLD.planted())
    assert [again.invoice(n) for n in (0, 777, 2099)] == [WORLD.invoice(n) for n in (0, 777, 2099)]
    assert set(other.planted()) != set(WORLD.planted())


def test_one_invoice_in_a_hundred_carries_each_kind_in_turn() -> None:
    planted = list(WORLD.planted())
    assert len(planted) == 21 and len({key for _, key in planted}) == 21
    assert Counter(kind for kind, _ in planted) == dict.fromkeys(KINDS, 3)
    assert len(list(BenchWorld(invoices=99).planted())) == 0  # no whole block


def test_invoices_are_issued_in_order_over_three_months() -> None:
    issued = [WORLD.invoice(n).issued_at for n in range(WORLD.invoices)]
    assert issued == sorted(issued)
    assert (issued[0].date(), issued[-1].date().replace(day=1)) == (
        date(2026, 9, 1),
        date(2026, 11, 1),
    )
    statuses = Counter((i.month, WORLD.invoice(n).status) for n, i in enumerate(issued))
    assert statuses == {(9, InvoiceStatus.PAID): 700, (10, InvoiceStatus.PAID): 700,
                        (11, InvoiceStatus.OPEN): 700}  # fmt: skip
    assert WORLD.customers == 105 and WORLD.invoice(106).customer_id == WORLD.customer(1).billing_id


def _differences(invoice_n: int) -> set[str]:
    """What the postings carrying invoice ``invoice_n``'s id differ in from it."""
    invoice = WORLD.invoice(invoice_n)
    posted = [
        p
        for p in map(WORLD.posting, range(WORLD.postings))
        if p is not None and p.external_id == invoice.id
    ]
    if not posted:
        return {"missing"}
    first, *more = posted
    found = {"twice"} if more else set()
    if first.amount.currency != invoice.subtotal.currency:
        return found | {"currency"}
    found |= {"amount"} if first.amount != invoice.subtotal else set()
    found |= {"tax"} if first.tax != invoice.tax else set()
    return found | ({"date"} if first.tran_date != invoice.issued_at.date() else set())


def test_each_planted_posting_differs_as_its_kind_says_and_no_other() -> None:
    expected = {
        ExceptionKind.MISSING_IN_TARGET: {"missing"},
        ExceptionKind.DUPLICATE_IN_TARGET: {"twice"},
        ExceptionKind.AMOUNT_MISMATCH: {"amount"},
        ExceptionKind.TAX_MISMATCH: {"tax"},
        ExceptionKind.CURRENCY_MISMATCH: {"currency"},
        ExceptionKind.PERIOD_MISMATCH: {"date"},
    }
    victims = {key: kind for kind, key in WORLD.planted()}
    for n in range(0, WORLD.invoices, 7):  # every seventh, and every victim below
        if WORLD.invoice_id(n) not in victims:
            assert _differences(n) == set(), n
    for key, kind in victims.items():
        n = WORLD.invoice_position(key)
        if kind is ExceptionKind.ORPHAN_IN_TARGET:
            assert n is None  # no invoice has the id its posting carries
            continue
        assert n is not None and _differences(n) == expected[kind], key


def test_an_orphan_is_a_posting_of_an_invoice_billing_never_issued() -> None:
    orphans = {key for kind, key in WORLD.planted() if kind is ExceptionKind.ORPHAN_IN_TARGET}
    posted = [WORLD.posting(p) for p in range(WORLD.invoices, WORLD.postings)]
    carried = {p.external_id for p in posted if p is not None}
    assert orphans <= carried
    (orphan,) = [p for p in posted if p is not None and p.external_id == min(orphans)]
    assert date(2026, 9, 1) <= orphan.tran_date < date(2026, 12, 1)
    assert WORLD.posted == WORLD.invoices - 3 + 6  # 3 missing; 3 duplicates, 3 orphans


def test_ids_carry_their_positions() -> None:
    assert WORLD.invoice_position(WORLD.invoice_id(1234)) == 1234
    assert WORLD.invoice_position(WORLD.invoice_id(2100)) is None  # past the last
    assert BenchWorld(2100, seed=44).invoice_position(WORLD.invoice_id(1)) is None
    customer = WORLD.customer(7)
    assert WORLD.billing_customer_position(customer.billing_id) == 7
    assert WORLD.erp_customer_position(customer.erp_id) == 7
    last = WORLD.posting(WORLD.postings - 1)
    assert last is not None and WORLD.posting_position(last.id) == WORLD.postings - 1


# -- made by the sandboxes ---------------------------------------------------------------------


def _client(create_app: CreateApp) -> TestClient:
    return TestClient(create_app(SandboxConfig()))


@pytest.fixture
def made() -> Iterator[tuple[TestClient, TestClient]]:
    """A billing sandbox and an ERP sandbox that made ``WORLD``."""
    with _client(billing.create_app) as stripe, _client(erp.create_app) as netsuite:
        for client in (stripe, netsuite):
            answer = client.post("/_sandbox/bulk", json={"invoices": 2100, "seed": 4})
            assert answer.status_code == 200, answer.text
        yield stripe, netsuite


def _seeded(create_app: CreateApp, records: list[Record]) -> TestClient:
    client = _client(create_app)
    answer = client.post("/_sandbox/seed", json={"records": [codec.to_json(r) for r in records]})
    assert answer.status_code == 200, answer.text
    return client


def test_billing_makes_the_documents_its_seed_path_stores(
    made: tuple[TestClient, TestClient],
) -> None:
    stripe, _ = made
    wanted = [WORLD.invoice(n) for n in (0, 1500)]
    with _seeded(billing.create_app, list(wanted)) as seeded:
        for invoice in wanted:
            path = f"/v1/invoices/{invoice.id}"
            bulk, seed = (x.get(path, headers=STRIPE).json() for x in (stripe, seeded))
            assert bulk == seed
    customer = stripe.get(f"/v1/customers/{WORLD.customer(3).billing_id}", headers=STRIPE).json()
    assert customer["metadata"] == {"opsgraph_id": "cust_b0000003"}


def test_billing_makes_every_invoice_byte_for_byte_as_the_seed_path_would() -> None:
    """Billing makes the world's invoices from their facts (``invoice_facts``), not through
    the ``Invoice`` the seed path takes: the same documents, keys in the same order."""
    api = StripeApi(SandboxConfig())
    api.bulk(WORLD.invoices, WORLD.seed)
    for n in range(WORLD.invoices):
        made = api.store.get("invoice", WORLD.invoice_id(n))
        assert orjson.dumps(made) == orjson.dumps(documents.seeded_invoice(WORLD.invoice(n))), n


def test_the_erps_rows_of_what_it_made_hold_nothing_the_collector_tracks() -> None:
    """A SuiteQL row of text alone is not tracked by the garbage collector; one holding an
    enum member is, and 100,000 of those made each full collection of the sandbox process
    take 0.19 s instead of 0.03 s, ten times that at a million."""
    api = NetSuiteApi(SandboxConfig())
    api.bulk(WORLD.invoices, WORLD.seed)
    rows = api.ledger.table("transaction").rows
    assert len(rows) == WORLD.posted
    assert not any(gc.is_tracked(row) for row in rows)


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A record but for when it was written and a customer's balance (which sums all its
    postings: one was seeded, the bench world has twenty)."""
    return {k: v for k, v in doc.items() if k not in ("lastModifiedDate", "balance")}


def test_the_erp_makes_the_documents_its_seed_path_stores(
    made: tuple[TestClient, TestClient],
) -> None:
    _, netsuite = made
    posting = WORLD.posting(WORLD.postings - 1)
    assert isinstance(posting, Posting)
    c = WORLD.erp_customer_position(posting.customer_id)
    assert c is not None
    records: list[Record] = [WORLD.customer_record(SystemName.ERP, c), posting]
    with _seeded(erp.create_app, records) as seeded:
        for path in (f"/services/rest/record/v1/invoice/{posting.id}",
                     f"/services/rest/record/v1/customer/{posting.customer_id}"):  # fmt: skip
            bulk, seed = (x.get(path, headers=STRIPE).json() for x in (netsuite, seeded))
            assert _comparable(bulk) == _comparable(seed)


def test_the_erp_answers_suiteql_over_what_it_made(made: tuple[TestClient, TestClient]) -> None:
    _, netsuite = made
    query = "SELECT id, externalid FROM transaction WHERE type = 'CustInvc' AND id > 1002098"
    answer = netsuite.post(SUITEQL, params={"limit": 1000}, json={"q": query + " ORDER BY id"},
                           headers=NETSUITE).json()  # fmt: skip
    # The last invoice's posting, then the extras: 3 duplicates and 3 orphans.
    assert answer["totalResults"] == 1 + 6
    missing = next(k for kind, k in WORLD.planted() if kind is ExceptionKind.MISSING_IN_TARGET)
    where = f"externalid = '{missing}'"
    none = netsuite.post(SUITEQL, json={"q": f"SELECT id FROM transaction WHERE {where}"},
                         headers=NETSUITE).json()  # fmt: skip
    assert none["totalResults"] == 0


def test_billing_lists_what_it_made_newest_first_page_by_page(
    made: tuple[TestClient, TestClient],
) -> None:
    stripe, _ = made
    window = {"created[gte]": "1790812800", "created[lt]": "1793491200"}  # 2026-10
    seen: list[str] = []
    params: dict[str, Any] = {**window, "limit": 100}
    while True:
        page = stripe.get("/v1/invoices", params=params, headers=STRIPE).json()
        seen += [d["id"] for d in page["data"]]
        if not page["has_more"]:
            break
        params["starting_after"] = seen[-1]
    assert seen == [WORLD.invoice_id(n) for n in reversed(range(700, 1400))]
    back = {**window, "limit": 3, "ending_before": seen[10]}
    before = stripe.get("/v1/invoices", params=back, headers=STRIPE).json()
    assert ([d["id"] for d in before["data"]], before["has_more"]) == (seen[7:10], True)


def test_a_write_is_listed_at_once(made: tuple[TestClient, TestClient]) -> None:
    stripe, _ = made
    first = stripe.get("/v1/invoices", params={"limit": 1}, headers=STRIPE).json()["data"][0]
    drafted = stripe.post("/v1/invoices", data={"customer": WORLD.customer(0).billing_id},
                          headers=STRIPE).json()  # fmt: skip
    listed = stripe.get("/v1/invoices", params={"limit": 2}, headers=STRIPE).json()["data"]
    assert [d["id"] for d in listed] == [drafted["id"], first["id"]]


def test_a_planted_amount_is_what_the_erp_serves(made: tuple[TestClient, TestClient]) -> None:
    _, netsuite = made
    key = next(k for kind, k in WORLD.planted() if kind is ExceptionKind.AMOUNT_MISMATCH)
    n = WORLD.invoice_position(key)
    assert n is not None
    posting = WORLD.posting(n)
    assert posting is not None
    answer = netsuite.get(f"/services/rest/record/v1/invoice/{posting.id}", headers=STRIPE)
    doc = jsonio.loads(answer.content)
    billed = WORLD.invoice(n).subtotal
    assert Money.of(doc["subtotal"], billed.currency) == billed + Money(
        10 ** (3 if billed.currency == "KWD" else 0 if billed.currency == "JPY" else 2),
        billed.currency,
    )


def test_a_sandbox_with_no_side_in_it_or_a_bad_body_is_refused() -> None:
    with _client(crm.create_app) as salesforce:
        answer = salesforce.post("/_sandbox/bulk", json={"invoices": 10})
        assert (answer.status_code, list(answer.json())) == (404, ["error"])
    with _client(billing.create_app) as stripe:
        for body in ({"seed": 1}, {"invoices": "ten"}, {"invoices": 0}):
            assert stripe.post("/_sandbox/bulk", json=body).status_code == 400
