"""The Stripe sandbox over HTTP, without the connector: its wire shapes, lists and paging,
errors and faults, its search language, and what a Stripe integration calls besides the
connector (``created`` filters, customer search and update, invoice finalization, customer
balance transactions), each answered as Stripe answers or refused in Stripe's words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from connectors.models import CustomerRecord, Invoice, Subscription, SystemName
from connectors.sandbox import fleet
from connectors.sandbox.billing import create_app
from connectors.sandbox.seed import generate
from tests.connectors.billing_helpers import SECRET, SEEDED, _get
from tests.connectors.conftest import running_sandbox

# The search tests' world: twelve customers, so that ten of them fill a query.
WORLD = generate(customers=12, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.BILLING)
CUSTOMERS = [r.id for r in WORLD if isinstance(r, CustomerRecord)]
INVOICES = [r for r in SEEDED if isinstance(r, Invoice)]
SUBSCRIPTION = next(r for r in SEEDED if isinstance(r, Subscription))
CUSTOMER = next(r for r in SEEDED if isinstance(r, CustomerRecord))  # Acme Logistics, in USD
REFINALIZED = "This invoice is already finalized, you can't re-finalize a non-draft invoice."


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(create_app, SEEDED) as running:
        yield running


@pytest.fixture(scope="module")
def admin() -> Iterator[httpx.Client]:
    """The sandbox of the search tests, seeded with ``WORLD``."""
    with running_sandbox(create_app, WORLD) as (_, client):
        yield client


@pytest.fixture
def fresh() -> Iterator[httpx.Client]:
    """A seeded sandbox of the test's own, for the tests that write."""
    with running_sandbox(create_app, SEEDED) as (_, client):
        yield client


def _post(admin: httpx.Client, path: str, **data: Any) -> httpx.Response:
    return admin.post(path, data=data, headers={"Authorization": f"Bearer {SECRET}"})


def _made(admin: httpx.Client, path: str, **data: Any) -> dict[str, Any]:
    """What a write that must succeed answers."""
    answer = _post(admin, path, **data)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [d["id"] for d in answer.json()["data"]]


def _refusal(message: str, param: str | None = None, code: str | None = None) -> Any:
    """Stripe's 400 body for a request it refuses."""
    error: dict[str, str] = {"message": message, "type": "invalid_request_error"}
    if code:
        error["code"] = code
        error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
    if param:
        error["param"] = param
    return {"error": error}


# wire shapes


def test_a_price_is_served_with_its_product_expanded(sandbox: tuple[str, httpx.Client]) -> None:
    got = _get(sandbox[1], "/v1/prices/price_growth_eur", **{"expand[]": "product"}).json()
    assert got == PRICE_GROWTH_EUR


def test_a_seeded_subscription_keeps_its_period_on_the_item(
    sandbox: tuple[str, httpx.Client],
) -> None:
    got = _get(sandbox[1], f"/v1/subscriptions/{SUBSCRIPTION.id}").json()
    item = got["items"]["data"][0]
    assert (got["object"], got["customer"], got["status"]) == (
        "subscription", SUBSCRIPTION.customer_id, "active")  # fmt: skip
    assert "current_period_start" not in got
    assert (item["price"]["id"], item["quantity"]) == (SUBSCRIPTION.plan_id, SUBSCRIPTION.quantity)
    assert item["current_period_start"] == int(SUBSCRIPTION.current_period_start.timestamp())
    assert item["current_period_end"] == int(SUBSCRIPTION.current_period_end.timestamp())


def test_a_seeded_invoice_names_its_subscription_under_parent(
    sandbox: tuple[str, httpx.Client],
) -> None:
    inv = next(i for i in INVOICES if i.tax.amount_minor)
    got = _get(sandbox[1], f"/v1/invoices/{inv.id}").json()
    assert got["parent"]["subscription_details"]["subscription"] == inv.subscription_id
    assert "subscription" not in got and "tax" not in got
    assert [t["amount"] for t in got["total_taxes"]] == [inv.tax.amount_minor]
    assert (got["subtotal"], got["total"]) == (inv.subtotal.amount_minor, inv.total.amount_minor)


def test_plans_are_the_legacy_view_of_the_recurring_prices(
    sandbox: tuple[str, httpx.Client],
) -> None:
    plans = _get(sandbox[1], "/v1/plans", product="prod_growth", limit=100).json()["data"]
    assert sorted((p["id"], p["amount"], p["currency"], p["interval"]) for p in plans) == [
        ("price_growth_eur", 18500, "eur", "month"), ("price_growth_jpy", 29000, "jpy", "month"),
        ("price_growth_kwd", 61000, "kwd", "month"), ("price_growth_usd", 19900, "usd", "month"),
    ]  # fmt: skip
    assert {p["object"] for p in plans} == {"plan"}


# lists


def test_lists_are_stripe_list_objects_paged_newest_first(
    sandbox: tuple[str, httpx.Client],
) -> None:
    admin = sandbox[1]
    first = _get(admin, "/v1/invoices", limit=10).json()
    assert (first["object"], first["url"], first["has_more"]) == ("list", "/v1/invoices", True)
    created = [i["created"] for i in first["data"]]
    assert created == sorted(created, reverse=True)
    rest = _get(admin, "/v1/invoices", limit=100, starting_after=first["data"][-1]["id"]).json()
    assert (len(first["data"]), len(rest["data"]), rest["has_more"]) == (10, 14, False)
    back = _get(admin, "/v1/invoices", limit=3, ending_before=rest["data"][0]["id"]).json()
    assert [i["id"] for i in back["data"]] == [i["id"] for i in first["data"][-3:]]
    assert back["has_more"] is True


def test_a_page_larger_than_100_is_refused(sandbox: tuple[str, httpx.Client]) -> None:
    answer = _get(sandbox[1], "/v1/customers", limit=101)
    assert answer.status_code == 400
    assert answer.json() == {"error": {
        "message": "Invalid limit: must be between 1 and 100", "param": "limit",
        "type": "invalid_request_error"}}  # fmt: skip


def test_lists_keep_only_what_was_created_when_asked(sandbox: tuple[str, httpx.Client]) -> None:
    october = [i for i in INVOICES if i.issued_at.month == 10]
    at = int(october[0].issued_at.timestamp())
    expected = sorted(i.id for i in october)
    window = {"created[gte]": at, "created[lt]": at + 86400}
    assert sorted(_ids(_get(sandbox[1], "/v1/invoices", limit=100, **window))) == expected
    assert sorted(_ids(_get(sandbox[1], "/v1/invoices", limit=100, created=at))) == expected
    newest = _get(sandbox[1], "/v1/invoices", limit=100, **{"created[gt]": at})
    assert sorted(_ids(newest)) == sorted(i.id for i in INVOICES if i.issued_at.month == 11)
    started = int(SUBSCRIPTION.current_period_start.timestamp())
    assert _ids(_get(sandbox[1], "/v1/subscriptions", **{"created[lt]": started})) == []


def test_a_created_window_pages_like_any_list(sandbox: tuple[str, httpx.Client]) -> None:
    admin = sandbox[1]
    moments = sorted({int(i.issued_at.timestamp()) for i in INVOICES})
    low, high = moments[1], moments[-2]  # whole moments cut off at both ends
    window = {"created[gte]": low, "created[lte]": high}
    inside = [i for i in INVOICES if low <= int(i.issued_at.timestamp()) <= high]
    assert 4 < len(inside) < len(INVOICES)
    pages = [_get(admin, "/v1/invoices", limit=3, **window).json()]
    while pages[-1]["has_more"]:
        after = pages[-1]["data"][-1]["id"]
        pages.append(_get(admin, "/v1/invoices", limit=3, starting_after=after, **window).json())
    listed = [i for page in pages for i in page["data"]]
    assert sorted(i["id"] for i in listed) == sorted(i.id for i in inside)
    assert [i["created"] for i in listed] == sorted((i["created"] for i in listed), reverse=True)
    # Back from the last page's first: the page before it, and more before that.
    back = _get(admin, "/v1/invoices", limit=3, ending_before=listed[3]["id"], **window).json()
    assert ([i["id"] for i in back["data"]], back["has_more"]) == (
        [i["id"] for i in listed[:3]],
        False,
    )
    # A cursor the window does not hold is no cursor of this list.
    outside = next(i for i in INVOICES if int(i.issued_at.timestamp()) > high)
    refused = _get(admin, "/v1/invoices", limit=3, starting_after=outside.id, **window)
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "starting_after")


@pytest.mark.parametrize(
    ("path", "params", "refusal"),
    [
        ("/v1/customers", {"created[since]": "1"}, _refusal(
            "Received unknown parameter: created[since]", "created[since]", "parameter_unknown")),
        ("/v1/customers", {"created": "yesterday"}, _refusal(
            "Invalid integer: yesterday", "created")),
        ("/v1/customers", {"test_clock": "clock_1"}, _refusal(
            "Received unknown parameter: test_clock", "test_clock", "parameter_unknown")),
        ("/v1/invoices", {"status": "unpaid"}, _refusal(
            "Invalid status: must be one of draft, open, paid, uncollectible, or void", "status")),
        ("/v1/subscriptions", {"status": "gone"}, _refusal(
            "Invalid status: must be one of active, all, canceled, ended, incomplete, "
            "incomplete_expired, past_due, paused, trialing, or unpaid", "status")),
        ("/v1/invoiceitems", {"pending": "yes"}, _refusal("Invalid boolean: yes", "pending")),
        ("/v1/events", {"types": "invoice.paid"}, _refusal("Invalid array", "types")),
        ("/v1/events", {"delivery_success": "true"}, _refusal(
            "Received unknown parameter: delivery_success", "delivery_success",
            "parameter_unknown")),
        ("/v1/balance", {"expand[]": "available"}, _refusal(
            "This property cannot be expanded (available).", "expand")),
    ],
    ids=["created-bound", "created-value", "test-clock", "invoice-status",
         "subscription-status", "pending", "types", "delivery-success", "balance-expand"],
)  # fmt: skip
def test_a_parameter_the_sandbox_does_not_apply_is_refused(
    sandbox: tuple[str, httpx.Client], path: str, params: dict[str, str], refusal: Any
) -> None:
    answer = _get(sandbox[1], path, **params)
    assert (answer.status_code, answer.json()) == (400, refusal)


# errors and faults


def test_a_wrong_key_gets_stripes_401_with_the_key_masked(
    sandbox: tuple[str, httpx.Client],
) -> None:
    answer = _get(sandbox[1], "/v1/customers", secret="sk_test_51Hwrongkey1234567890")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="Stripe"'
    assert answer.json() == {"error": {
        "message": "Invalid API Key provided: sk_test_*****************7890",
        "type": "invalid_request_error"}}  # fmt: skip


def test_an_unknown_id_is_resource_missing(sandbox: tuple[str, httpx.Client]) -> None:
    answer = _get(sandbox[1], "/v1/customers/cus_nope")
    assert answer.status_code == 404
    assert answer.json() == {"error": {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such customer: 'cus_nope'", "param": "id",
        "type": "invalid_request_error"}}  # fmt: skip


def test_injected_faults_speak_stripes_error_json(sandbox: tuple[str, httpx.Client]) -> None:
    admin = sandbox[1]
    fleet.set_faults(admin, rate_limit_next=1, retry_after_s=3)
    try:
        limited = _get(admin, "/v1/customers")
        fleet.set_faults(admin, error_rate=1.0, error_status=502)
        failed = _get(admin, "/v1/customers")
    finally:
        fleet.set_faults(admin)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert (failed.status_code, failed.json()["error"]["type"]) == (502, "api_error")


def test_seeding_records_no_events() -> None:
    with running_sandbox(create_app, SEEDED) as (_, admin):
        assert _get(admin, "/v1/events").json()["data"] == []


# customers: search, update, balance transactions


def test_customer_search_is_a_search_not_a_customer_id(sandbox: tuple[str, httpx.Client]) -> None:
    answer = _get(sandbox[1], "/v1/customers/search", query="name~'logistics'")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["object"], got["url"], got["has_more"], got["next_page"]) == (
        "search_result", "/v1/customers/search", False, None)  # fmt: skip
    assert sorted(c["name"] for c in got["data"]) == ["Acme Logistics", "Hooli Logistics"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("name:'ACME LOGISTICS'", ["Acme Logistics"]),  # string fields ignore case
        ("name~'healt'", ["Vandelay Health", "Wayne Health"]),
        ("email~'@globex2.'", ["Globex Retail"]),
        ("email:'billing@stark7.example' OR phone:'+1555'", ["Stark Analytics"]),
        ("metadata['opsgraph_id']:'cust_0003'", ["Initech Labs"]),
        ("metadata['opsgraph_id']:'CUST_0003'", []),  # metadata is a token: case counts
        ("name~'health' AND email~'wayne'", ["Wayne Health"]),
        ("created>={origin} name~'logist'", ["Acme Logistics", "Hooli Logistics"]),
        ("created<{origin}", []),
    ],
)
def test_customer_search_answers_stripes_language(
    sandbox: tuple[str, httpx.Client], query: str, names: list[str]
) -> None:
    origin = _get(sandbox[1], f"/v1/customers/{CUSTOMER.id}").json()["created"]
    answer = _get(sandbox[1], "/v1/customers/search", query=query.format(origin=origin))
    assert answer.status_code == 200, answer.text
    assert sorted(c["name"] for c in answer.json()["data"]) == names


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("name~'ac'", "A substring search (`~`) needs at least 3 characters: `name~'ac'`."),
        ("balance>0", "Field `balance` is an unsupported search field for resource "
         "`customers`. See http://stripe.com/docs/search#query-fields-for-customers for a "
         "list of supported fields."),
        ("-name:'Acme Logistics'", "The sandbox does not implement `-name:'Acme` in a search "
         "query: it answers exact matches (field:'value') on created, email, name, phone and "
         "metadata['key']; substrings (field~'value') of email, name and phone; comparisons "
         "(field>1700000000) of created, joined by AND or by OR."),
        ("created>'soon'", "We were unable to parse your search query. Try using the format "
         '`metadata["key"]:"value"` to query for metadata or key:"value" to query for other '
         "fields."),
    ],
    ids=["short-substring", "unknown-field", "negation", "not-a-number"],
)  # fmt: skip
def test_a_customer_query_outside_the_language_is_refused(
    sandbox: tuple[str, httpx.Client], query: str, message: str
) -> None:
    answer = _get(sandbox[1], "/v1/customers/search", query=query)
    assert (answer.status_code, answer.json()) == (400, _refusal(message))


def test_a_customer_update_merges_metadata_and_unsets_what_is_emptied(
    fresh: httpx.Client,
) -> None:
    kept = {"metadata[keep]": "1", "metadata[drop]": "2", "metadata[change]": "3"}
    made = _made(fresh, "/v1/customers", name="Initial", email="ap@x.example", phone="+1555",
                 **kept)  # fmt: skip
    path = f"/v1/customers/{made['id']}"
    changed = {"metadata[drop]": "", "metadata[change]": "4", "metadata[add]": "5"}
    got = _made(fresh, path, name="Renamed", phone="", **changed)
    assert (got["name"], got["email"], got["phone"]) == ("Renamed", "ap@x.example", None)
    assert got["metadata"] == {"keep": "1", "change": "4", "add": "5"}
    assert _get(fresh, path).json() == got
    assert _made(fresh, path, metadata="")["metadata"] == {}
    updates = _get(fresh, "/v1/events", type="customer.updated").json()["data"]
    assert [e["data"]["previous_attributes"] for e in updates] == [
        {"metadata": {"add": "5", "change": "4", "keep": "1"}},
        {"name": "Initial", "phone": "+1555",
         "metadata": {"add": None, "change": "3", "drop": "2"}},
    ]  # fmt: skip


def test_updating_an_unknown_customer_is_resource_missing(fresh: httpx.Client) -> None:
    answer = _post(fresh, "/v1/customers/cus_nope", name="X")
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "resource_missing")


def test_a_balance_transaction_moves_the_customers_balance(fresh: httpx.Client) -> None:
    path = f"/v1/customers/{CUSTOMER.id}/balance_transactions"
    credit = _made(fresh, path, amount="-1500", currency="usd", description="SLA credit")
    debit = _made(fresh, path, amount="400", currency="USD")
    assert {k: credit[k] for k in ("object", "amount", "currency", "customer", "description",
                                   "ending_balance", "invoice", "type")} == {
        "object": "customer_balance_transaction", "amount": -1500, "currency": "usd",
        "customer": CUSTOMER.id, "description": "SLA credit", "ending_balance": -1500,
        "invoice": None, "type": "adjustment"}  # fmt: skip
    assert (debit["amount"], debit["ending_balance"]) == (400, -1100)
    assert _get(fresh, f"/v1/customers/{CUSTOMER.id}").json()["balance"] == -1100
    first = _get(fresh, path, limit=1).json()
    assert (first["url"], first["has_more"], _ids(_get(fresh, path))) == (
        path, True, [debit["id"], credit["id"]])  # fmt: skip
    assert _get(fresh, f"{path}/{credit['id']}").json() == credit
    euros = _post(fresh, path, amount="100", currency="eur")
    assert (euros.status_code, euros.json()["error"]["param"]) == (400, "currency")


def test_finalizing_a_draft_opens_it_with_the_customers_next_number(fresh: httpx.Client) -> None:
    _made(fresh, "/v1/invoiceitems", customer=CUSTOMER.id, amount="2500", currency="usd")
    draft = _made(fresh, "/v1/invoices", customer=CUSTOMER.id,
                  pending_invoice_items_behavior="include")  # fmt: skip
    opened = _made(fresh, f"/v1/invoices/{draft['id']}/finalize")
    prefix = _get(fresh, f"/v1/customers/{CUSTOMER.id}").json()["invoice_prefix"]
    assert (draft["status"], draft["number"]) == ("draft", None)
    assert (opened["status"], opened["number"], opened["amount_due"]) == (
        "open", f"{prefix}-0001", 2500)  # fmt: skip
    assert opened["status_transitions"]["finalized_at"] == opened["effective_at"] is not None
    assert _get(fresh, f"/v1/invoices/{draft['id']}").json() == opened
    again = _post(fresh, f"/v1/invoices/{draft['id']}/finalize")
    assert (again.status_code, again.json()) == (400, _refusal(REFINALIZED))
    events = _get(fresh, "/v1/events", type="invoice.finalized").json()["data"]
    assert [e["data"]["object"]["number"] for e in events] == [f"{prefix}-0001"]


def test_finalizing_applies_the_customers_credit_and_with_nothing_due_pays(
    fresh: httpx.Client,
) -> None:
    credits = f"/v1/customers/{CUSTOMER.id}/balance_transactions"
    _made(fresh, credits, amount="-1500", currency="usd")
    _made(fresh, "/v1/invoiceitems", customer=CUSTOMER.id, amount="1000", currency="usd")
    draft = _made(fresh, "/v1/invoices", customer=CUSTOMER.id,
                  pending_invoice_items_behavior="include")  # fmt: skip
    paid = _made(fresh, f"/v1/invoices/{draft['id']}/finalize")
    assert (paid["status"], paid["total"], paid["amount_due"]) == ("paid", 1000, 0)
    assert (paid["starting_balance"], paid["ending_balance"]) == (-1500, -500)
    applied = _get(fresh, credits).json()["data"][0]
    assert (applied["type"], applied["amount"], applied["invoice"], applied["ending_balance"]) == (
        "applied_to_invoice", 1000, draft["id"], -500)  # fmt: skip
    assert _get(fresh, f"/v1/customers/{CUSTOMER.id}").json()["balance"] == -500
    events = _get(fresh, "/v1/events", **{"types[]": ["invoice.*"]}).json()["data"]
    assert [e["type"] for e in events] == ["invoice.paid", "invoice.finalized", "invoice.created"]


# the search language (invoices)


def search(admin: httpx.Client, query: str, **params: Any) -> httpx.Response:
    return _get(admin, "/v1/invoices/search", query=query, **params)


def test_search_pages_with_next_page_newest_first(admin: httpx.Client) -> None:
    a, b = CUSTOMERS[:2]
    query = f"customer:'{a}' OR customer:'{b}'"
    first = search(admin, query, limit=4).json()
    assert (first["object"], first["url"], first["has_more"], len(first["data"])) == (
        "search_result", "/v1/invoices/search", True, 4)  # fmt: skip
    rest = search(admin, query, limit=4, page=first["next_page"]).json()
    assert (rest["has_more"], rest["next_page"], len(rest["data"])) == (False, None, 2)
    everything = _get(admin, "/v1/invoices", limit=100).json()["data"]
    assert [i["id"] for i in first["data"] + rest["data"]] == [
        i["id"] for i in everything if i["customer"] in (a, b)
    ]


def test_a_page_token_of_another_query_is_refused(admin: httpx.Client) -> None:
    token = search(admin, "status:'paid'", limit=1).json()["next_page"]
    answer = search(admin, "status:'open'", page=token)
    assert answer.status_code == 400
    assert answer.json() == {"error": {
        "message": f"Invalid page: {token}", "param": "page",
        "type": "invalid_request_error"}}  # fmt: skip


def test_clauses_match_status_number_subscription_and_metadata(admin: httpx.Client) -> None:
    invoice = next(r for r in WORLD if isinstance(r, Invoice) and r.status == "paid")

    def ids(query: str) -> list[str]:
        answer = search(admin, query, limit=100)
        assert answer.status_code == 200, answer.text
        return [i["id"] for i in answer.json()["data"]]

    assert ids(f'number:"{invoice.number}"') == [invoice.id]
    assert invoice.id in ids(f"customer:'{invoice.customer_id}' AND status:'paid'")
    assert invoice.id in ids(f"subscription:'{invoice.subscription_id}' status:paid")
    assert ids(f"customer:'{invoice.customer_id}' status:'nope'") == []
    customer = _made(admin, "/v1/customers", name="Tagged")["id"]
    _made(admin, "/v1/invoiceitems", customer=customer, amount="500", currency="usd")
    tagged = _made(admin, "/v1/invoices", customer=customer, **{
        "metadata[order]": "o'1", "pending_invoice_items_behavior": "include"})["id"]  # fmt: skip
    assert ids("metadata['order']:'o\\'1'") == [tagged]


def test_search_expands_customers_and_subscriptions(admin: httpx.Client) -> None:
    invoice = next(r for r in WORLD if isinstance(r, Invoice) and r.subscription_id)
    got = search(admin, f"number:'{invoice.number}'", **{"expand[]": [
        "data.customer", "data.parent.subscription_details.subscription"]}).json()  # fmt: skip
    found = got["data"][0]
    assert (found["customer"]["object"], found["customer"]["id"]) == (
        "customer", invoice.customer_id)  # fmt: skip
    sub = found["parent"]["subscription_details"]["subscription"]
    assert (sub["object"], sub["id"]) == ("subscription", invoice.subscription_id)
    # Invoices have had no top-level ``subscription`` since API version 2025-03-31.
    old = search(admin, f"number:'{invoice.number}'", **{"expand[]": "data.subscription"})
    assert (old.status_code, old.json()["error"]["message"]) == (
        400, "This property cannot be expanded (data.subscription).")  # fmt: skip


UNPARSABLE = (
    "We were unable to parse your search query. Try using the format "
    '`metadata["key"]:"value"` to query for metadata or key:"value" to query for other fields.'
)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "status:'paid' OR customer:'cus_a' AND number:'1'",
            "A search query cannot combine AND and OR: join every clause with the same one "
            "(a space means AND).",
        ),
        (
            "status:'paid' OR customer:'cus_a' number:'1'",
            "A search query cannot combine AND and OR: join every clause with the same one "
            "(a space means AND).",
        ),
        (
            " OR ".join(f"customer:'cus_{n}'" for n in range(11)),
            "A search query can combine at most 10 clauses; this one has 11.",
        ),
        (
            "colour:'red'",
            "Field `colour` is an unsupported search field for resource `invoices`. See "
            "http://stripe.com/docs/search#query-fields-for-invoices for a list of supported "
            "fields.",
        ),
        (
            "total>1000",
            "The sandbox does not implement `total>1000` in a search query: it answers exact "
            "matches (field:'value') on customer, status, subscription, number and "
            "metadata['key'], joined by AND or by OR.",
        ),
        ("customer:'cus_a' OR", UNPARSABLE),
        ("status:'paid", UNPARSABLE),
    ],
    ids=[
        "mixed-and-or",
        "mixed-space-or",
        "11-clauses",
        "unknown-field",
        "comparator",
        "dangling-or",
        "unclosed-quote",
    ],  # fmt: skip
)
def test_a_query_outside_the_language_is_stripes_400(
    admin: httpx.Client, query: str, message: str
) -> None:
    answer = search(admin, query)
    assert answer.status_code == 400
    assert answer.json() == {"error": {"message": message, "type": "invalid_request_error"}}


def test_ten_clauses_are_accepted(admin: httpx.Client) -> None:
    answer = search(admin, " or ".join(f"customer:'{c}'" for c in CUSTOMERS[:10]), limit=100)
    assert (answer.status_code, len(answer.json()["data"])) == (200, 30)


PRICE_GROWTH_EUR = {
    "id": "price_growth_eur", "object": "price", "active": True, "billing_scheme": "per_unit",
    "created": 1788253200, "currency": "eur", "custom_unit_amount": None, "livemode": False,
    "lookup_key": None, "metadata": {}, "nickname": None,
    "product": {
        "id": "prod_growth", "object": "product", "active": True, "created": 1788253200,
        "default_price": None, "description": None, "images": [], "livemode": False,
        "marketing_features": [],
        "metadata": {"features": "api_access,email_support,sso,audit_log",
                     "support_tier": "priority", "sla_hours": "24"},
        "name": "Growth", "package_dimensions": None, "shippable": None,
        "statement_descriptor": None, "tax_code": None, "type": "service", "unit_label": None,
        "updated": 1788253200, "url": None,
    },
    "recurring": {"interval": "month", "interval_count": 1, "meter": None,
                  "trial_period_days": None, "usage_type": "licensed"},
    "tax_behavior": "exclusive", "tiers_mode": None, "transform_quantity": None,
    "type": "recurring", "unit_amount": 18500, "unit_amount_decimal": "18500",
}  # fmt: skip
