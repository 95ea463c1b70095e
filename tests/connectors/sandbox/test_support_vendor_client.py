"""The support sandbox driven by a Zendesk client we did not write: zenpy's ``Zenpy``, over
real HTTP. The calls are a real integration's: tickets by id and ``show_many``, the people and
organization a ticket names, a ticket opened with zenpy's ``Ticket``, updated and commented
on, comments listed, searches with quoted values, date bounds, types and sorting, an
organization's tickets, the incremental ticket export, SLA policies, and the errors zenpy
raises for a missing record, bad credentials and a search the sandbox cannot run."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, Organization, Ticket, User
from zenpy.lib.exception import APIException, RecordNotFoundException

from tests.connectors import support_helpers

VENDOR = "https://acme.zendesk.com"
AGENT, ACME, ACME_CONTACT = 1000001, 360000017, 3600000171


class ToSandbox(HTTPAdapter):
    """Sends what zenpy addresses to ``https://{subdomain}.zendesk.com`` to the sandbox on
    loopback, naming the vendor's host and scheme in ``Host`` and ``X-Forwarded-Proto`` as a
    TLS-terminating proxy would. The sandbox then answers with Zendesk's own URLs (``url``,
    next-page links), and zenpy, which knows its responses by that host, reads them as
    Zendesk's."""

    def __init__(self, sandbox_url: str) -> None:
        super().__init__()
        self.sandbox = urlsplit(sandbox_url)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        vendor = urlsplit(request.url or "")
        sent = request.copy()
        sent.url = vendor._replace(scheme=self.sandbox.scheme, netloc=self.sandbox.netloc).geturl()
        sent.headers["Host"] = vendor.netloc
        sent.headers["X-Forwarded-Proto"] = vendor.scheme
        response = super().send(sent, **kwargs)
        response.request, response.url = request, request.url or ""
        return response


def zendesk(sandbox_url: str, token: str = "sandbox-secret") -> Zenpy:
    session = requests.Session()
    session.mount(VENDOR, ToSandbox(sandbox_url))
    # No cache: every call below is answered by the sandbox, not by zenpy's memory.
    return Zenpy(
        subdomain="acme", email="agent@example.com", token=token, session=session,
        disable_cache=True,
    )  # fmt: skip


sandbox, fresh = support_helpers.sandbox, support_helpers.fresh


def test_a_ticket_by_id_and_the_people_and_organization_it_names(
    sandbox: tuple[str, httpx.Client],
) -> None:
    client = zendesk(sandbox[0])
    ticket = client.tickets(id=9023)
    assert (ticket.url, ticket.id, ticket.subject, ticket.status, ticket.priority) == (
        f"{VENDOR}/api/v2/tickets/9023.json", 9023, "Production outage: API unavailable",
        "open", "urgent",
    )  # fmt: skip
    assert (ticket.organization_id, ticket.tags, ticket.created) == (
        360000136, ["sla_breached"], datetime(2026, 10, 30, 8, tzinfo=UTC)
    )  # fmt: skip
    assert (ticket.requester.name, ticket.requester.email, ticket.submitter.id) == (
        "Opsgraph Integration", "integration@opsgraph.example", AGENT
    )  # fmt: skip
    assert (ticket.organization.name, ticket.assignee) == ("Wayne Health", None)


def test_show_many_answers_the_tickets_that_exist(sandbox: tuple[str, httpx.Client]) -> None:
    tickets = zendesk(sandbox[0]).tickets(ids=[9023, 9001, 424242])
    assert [(t.id, t.status) for t in tickets] == [(9001, "solved"), (9023, "open")]


def test_a_ticket_is_opened_updated_and_commented_on(fresh: tuple[str, httpx.Client]) -> None:
    client = zendesk(fresh[0])
    opened = client.tickets.create(
        Ticket(
            subject="Seats",
            description="We need ten more seats.",
            priority="high",
            organization_id=ACME,
            tags=["sales"],
        )  # fmt: skip
    ).ticket
    assert (opened.id, opened.status, opened.priority, opened.description, opened.tags) == (
        9024, "new", "high", "We need ten more seats.", ["sales"]
    )  # fmt: skip
    opened.status = "pending"
    opened.tags = ["sales", "seats"]
    opened.comment = Comment(body="Quote sent.", public=False)
    audit = client.tickets.update(opened).audit
    assert [(e["type"], e.get("field_name"), e.get("value")) for e in audit.events] == [
        ("Comment", None, None), ("Change", "status", "pending"),
        ("Change", "tags", ["sales", "seats"]),
    ]  # fmt: skip
    again = client.tickets(id=9024)
    assert (again.status, again.tags, again.organization_id) == (
        "pending", ["sales", "seats"], ACME
    )  # fmt: skip
    comments = client.tickets.comments(9024)
    assert [(c.body, c.public, c.author_id) for c in comments] == [
        ("We need ten more seats.", True, AGENT), ("Quote sent.", False, AGENT)
    ]  # fmt: skip


def test_a_seeded_tickets_description_is_its_first_comment(
    sandbox: tuple[str, httpx.Client],
) -> None:
    comments = zendesk(sandbox[0]).tickets.comments(9023)
    assert [(c.body, c.public, c.author_id, c.created) for c in comments] == [
        ("Production outage: API unavailable", True, AGENT, datetime(2026, 10, 30, 8, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("query", "kwargs", "ids"),
    [
        (None, {"status": ["new", "open"]}, [9009, 9012, 9014, 9022, 9023]),
        (None, {"created_between": [datetime(2026, 10, 25, tzinfo=UTC),
                                    datetime(2026, 10, 29, tzinfo=UTC)]},
         [9002, 9008, 9013, 9016]),
        (None, {"created_after": date(2026, 10, 28)}, [9006, 9023]),
        (None, {"updated_before": date(2026, 9, 29)}, [9010, 9017]),
        (None, {"priority_greater_than": "normal", "status_less_than": "solved"},
         [9004, 9008, 9012, 9018, 9023]),
        (None, {"status": "open", "minus": "tags:sla_breached"}, [9009, 9012, 9014]),
        ('"wrong tax"', {"organization": 360000068}, [9008, 9010]),
        (None, {"organization": 360000068, "sort_by": "created_at", "sort_order": "asc"},
         [9010, 9009, 9008]),
    ],
    ids=["quoted-values", "between-instants", "after-a-day", "before-a-day", "ordered",
         "negation", "phrase", "sorted"],
)  # fmt: skip
def test_ticket_searches(
    sandbox: tuple[str, httpx.Client], query: str | None, kwargs: dict[str, Any], ids: list[int]
) -> None:
    found = list(zendesk(sandbox[0]).search(query, type="ticket", **kwargs))
    assert all(isinstance(t, Ticket) for t in found)
    assert [t.id for t in found] == ids


def test_searches_for_users_and_organizations(sandbox: tuple[str, httpx.Client]) -> None:
    client = zendesk(sandbox[0])
    [org] = client.search("acme", type="organization")
    assert (type(org), org.id, org.name) == (Organization, ACME, "Acme Logistics")
    [user] = client.search('"Umbrella Media"', type="user")
    assert (type(user), user.id, user.organization_id) == (User, 3600000681, 360000068)
    mixed = [(type(r).__name__, r.id) for r in client.search("acme")]
    assert mixed == [("User", ACME_CONTACT), ("Organization", ACME)]


def test_users_and_organizations_by_id(sandbox: tuple[str, httpx.Client]) -> None:
    client = zendesk(sandbox[0])
    contact = client.users(id=ACME_CONTACT)
    assert (contact.name, contact.email, contact.role, contact.organization.name) == (
        "Acme Logistics Support", "support@acme-logistics.example", "end-user", "Acme Logistics"
    )  # fmt: skip
    org = client.organizations(id=ACME)
    assert (org.url, org.name, org.external_id) == (
        f"{VENDOR}/api/v2/organizations/{ACME}.json", "Acme Logistics", "cust_0001"
    )  # fmt: skip
    me = client.users.me()
    assert (me.id, me.role) == (AGENT, "admin")


def test_an_organizations_tickets(sandbox: tuple[str, httpx.Client]) -> None:
    tickets = zendesk(sandbox[0]).tickets.organizations(organization=360000068)
    assert [(t.id, t.status) for t in tickets] == [(9008, "pending"), (9009, "open"),
                                                   (9010, "solved")]  # fmt: skip


def test_the_incremental_ticket_export_pages_to_its_end(sandbox: tuple[str, httpx.Client]) -> None:
    exported = zendesk(sandbox[0]).tickets.incremental(start_time=0, per_page=5)
    assert [t.id for t in exported] == [9001, 9002, 9004, 9006, 9008, 9009, 9010, 9012, 9013,
                                        9014, 9016, 9017, 9018, 9021, 9022, 9023]  # fmt: skip


def test_sla_policies(sandbox: tuple[str, httpx.Client]) -> None:
    policies = zendesk(sandbox[0]).sla_policies()
    targets = [(p.title, p.filter["all"][0]["value"], [(m.priority, m.target)
                                                       for m in p.policy_metrics])
               for p in policies]  # fmt: skip
    assert targets == [
        ("Premium support", "support_premium", [("urgent", 240), ("high", 240), ("normal", 240)]),
        ("Priority support", "support_priority",
         [("urgent", 1440), ("high", 1440), ("normal", 1440)]),
        ("Standard support", "support_standard",
         [("urgent", 2880), ("high", 2880), ("normal", 2880)]),
    ]  # fmt: skip


def test_a_missing_record_is_zenpys_record_not_found(sandbox: tuple[str, httpx.Client]) -> None:
    client = zendesk(sandbox[0])
    for fetch in (lambda: client.tickets(id=424242), lambda: client.users(id=5)):
        with pytest.raises(RecordNotFoundException) as missing:
            fetch()
        assert json.loads(str(missing.value)) == {
            "error": "RecordNotFound", "description": "Not found"
        }  # fmt: skip


def test_bad_credentials_are_zenpys_api_exception(sandbox: tuple[str, httpx.Client]) -> None:
    with pytest.raises(APIException) as refused:
        zendesk(sandbox[0], token="not-the-token").tickets(id=9023)
    assert refused.value.response.status_code == 401
    assert json.loads(str(refused.value)) == {"error": "Couldn't authenticate you"}


def test_a_search_the_sandbox_cannot_run_is_an_api_exception(
    sandbox: tuple[str, httpx.Client],
) -> None:
    with pytest.raises(APIException) as refused:
        zendesk(sandbox[0]).search("type:ticket group:support")
    assert refused.value.response.status_code == 422
    assert json.loads(str(refused.value)) == {
        "error": "invalid", "description": "Invalid search: the sandbox does not search by group"
    }  # fmt: skip
