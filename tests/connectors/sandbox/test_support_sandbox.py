"""The Zendesk stand-in over HTTP, without the connector: its wire shapes, the search
language, the parameters each endpoint applies or refuses, users, organizations, comments and
ticket writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.connectors import support_helpers
from tests.connectors.support_helpers import AUTH

AGENT, ACME, ACME_CONTACT = 1000001, 360000017, 3600000171


sandbox, fresh = support_helpers.sandbox, support_helpers.fresh


def _get(url: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}{path}", params=params, auth=AUTH)


def _found(url: str, query: str, **params: str) -> list[tuple[str, int]]:
    answer = _get(url, "/api/v2/search.json", query=query, **params)
    assert answer.status_code == 200, answer.text
    return [(r["result_type"], r["id"]) for r in answer.json()["results"]]


def _pick(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: doc[k] for k in keys}


def _tickets(url: str, query: str, **params: str) -> list[int]:
    return [id_ for kind, id_ in _found(url, query, **params) if kind == "ticket"]


# -- moved from tests/connectors/test_support.py, as they were ---------------------------------


def test_a_ticket_is_served_in_zendesk_shape(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    got = httpx.get(f"{url}/api/v2/tickets/9023.json", auth=AUTH).json()
    assert got == {
        "ticket": {
            "url": f"{url}/api/v2/tickets/9023.json",
            "id": 9023,
            "external_id": None,
            "via": {"channel": "web"},
            "created_at": "2026-10-30T08:00:00Z",
            "updated_at": "2026-10-30T17:00:00Z",
            "type": None,
            "subject": "Production outage: API unavailable",
            "raw_subject": "Production outage: API unavailable",
            "description": "Production outage: API unavailable",
            "priority": "urgent",
            "status": "open",
            "requester_id": 1000001,
            "submitter_id": 1000001,
            "assignee_id": None,
            "organization_id": 360000136,
            "group_id": None,
            "tags": ["sla_breached"],
            "custom_fields": [],
            "is_public": True,
        }
    }


def test_breach_events_are_served_in_the_metric_event_export(
    fresh: tuple[str, httpx.Client],
) -> None:
    url, _ = fresh
    start = int(datetime(2026, 10, 30, 11, tzinfo=UTC).timestamp())
    got = httpx.get(
        f"{url}/api/v2/incremental/ticket_metric_events.json",
        params={"start_time": start},
        auth=AUTH,
    ).json()
    assert got == {
        "ticket_metric_events": [
            {
                "id": "9023-breach",
                "ticket_id": 9023,
                "metric": "reply_time",
                "instance_id": 1,
                "type": "breach",
                "time": "2026-10-30T12:00:00Z",
                "deleted": False,
            }
        ],
        "next_page": None,
        "count": 1,
        "end_time": int(datetime(2026, 10, 30, 12, tzinfo=UTC).timestamp()),
    }


def test_wrong_token_gets_zendesk_401_body(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    response = httpx.get(f"{url}/api/v2/tickets.json", auth=("a@b.example/token", "nope"))
    assert response.status_code == 401
    assert response.json() == {"error": "Couldn't authenticate you"}


def test_show_many_refuses_more_than_100_ids(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    ids = ",".join(str(9000 + n) for n in range(101))
    response = httpx.get(f"{url}/api/v2/tickets/show_many.json", params={"ids": ids}, auth=AUTH)
    assert response.status_code == 400
    assert response.json() == {"error": "TooManyIds", "description": "Too many ids (maximum 100)"}


def test_cursor_pages_carry_meta_and_links(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    first = httpx.get(f"{url}/api/v2/tickets.json?page[size]=5", auth=AUTH).json()
    assert [t["id"] for t in first["tickets"]] == [9001, 9002, 9004, 9006, 9008]
    assert first["meta"]["has_more"] is True
    after = first["meta"]["after_cursor"]
    assert first["links"]["next"] == f"{url}/api/v2/tickets.json?page[size]=5&page[after]={after}"
    second = httpx.get(first["links"]["next"], auth=AUTH).json()
    assert [t["id"] for t in second["tickets"]] == [9009, 9010, 9012, 9013, 9014]
    too_big = httpx.get(f"{url}/api/v2/tickets.json?page[size]=101", auth=AUTH)
    assert too_big.status_code == 400
    assert too_big.json()["error"] == "InvalidPaginationParameter"


def test_idempotency_replay_and_conflict_on_the_wire(fresh: tuple[str, httpx.Client]) -> None:
    url, _ = fresh
    body = {"ticket": {"subject": "Hi", "comment": {"body": "Hello"}, "organization_id": 360000017}}
    headers = {"Idempotency-Key": "wire-key"}
    first = httpx.post(f"{url}/api/v2/tickets.json", json=body, headers=headers, auth=AUTH)
    again = httpx.post(f"{url}/api/v2/tickets.json", json=body, headers=headers, auth=AUTH)
    assert first.status_code == again.status_code == 201
    assert (first.headers["x-idempotency-lookup"], again.headers["x-idempotency-lookup"]) == (
        "miss",
        "hit",
    )
    assert again.json() == first.json()
    other = {"ticket": {**body["ticket"], "subject": "Different"}}
    clash = httpx.post(f"{url}/api/v2/tickets.json", json=other, headers=headers, auth=AUTH)
    assert clash.status_code == 400
    assert clash.json()["error"] == "IdempotentRequestError"


# -- the search language --------------------------------------------------------------------


def test_quoted_values_match_as_values(sandbox: tuple[str, httpx.Client]) -> None:
    """zenpy quotes each value of a list: ``status:"new" status:"open"``."""
    url, _ = sandbox
    assert _tickets(url, 'type:ticket status:"new" status:"open"') == [
        9009, 9012, 9014, 9022, 9023
    ]  # fmt: skip
    assert _tickets(url, "type:ticket status:new status:open") == [9009, 9012, 9014, 9022, 9023]


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("created>=2026-10-25 created<2026-10-29", [9002, 9008, 9013, 9016]),
        ("created>2026-10-28", [9006, 9023]),
        ("created:2026-10-29", [9006]),
        ("created<=2026-09-27", [9010, 9017]),
        ("created>2026-10-30T07:59:59Z", [9023]),
        ("created>2026-10-30T09:59:59+02:00", [9023]),
        ("updated<2026-09-28T00:00:00Z", [9017]),
    ],
    ids=["day-range", "after-a-day", "on-a-day", "up-to-a-day", "after-an-instant",
         "with-an-offset", "updated-before"],
)  # fmt: skip
def test_dates_bound_the_search(
    sandbox: tuple[str, httpx.Client], query: str, ids: list[int]
) -> None:
    assert _tickets(sandbox[0], f"type:ticket {query}") == ids


def test_relative_dates_count_back_from_now(fresh: tuple[str, httpx.Client]) -> None:
    url, _ = fresh
    body = {"ticket": {"subject": "Just now", "comment": {"body": "New"}, "organization_id": ACME}}
    made = httpx.post(f"{url}/api/v2/tickets.json", json=body, auth=AUTH).json()["ticket"]
    assert _tickets(url, "type:ticket created>1hour") == [made["id"]]
    assert _tickets(url, "type:ticket created>30minutes organization:360000017") == [made["id"]]
    assert made["id"] not in _tickets(url, "type:ticket created<2days")
    assert len(_tickets(url, "type:ticket created<2days")) == 16


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("priority>=high status<solved", [9004, 9008, 9012, 9018, 9023]),
        ("priority<normal status:pending", [9017]),
        ("-status:solved -organization:360000068", [9004, 9012, 9014, 9017, 9018, 9022, 9023]),
        ("-status:solved -organization:360000068 -tags:sla_breached",
         [9004, 9012, 9014, 9017, 9018, 9022]),
        ('subject:"wrong tax"', [9002, 9004, 9008, 9010, 9014, 9017, 9022]),
        ('subject:"shows tax"', []),
        ("subject:API", [9016, 9023]),
        ("subject:Webh*", [9012]),
        ('organization:"Umbrella Media"', [9008, 9009, 9010]),
        ("requester:me status:new", [9022]),
        ("assignee:none organization:360000102", [9016, 9017, 9018]),
        ("via:web tags:sla_breached", [9023]),
    ],
    ids=["ordered-priority-and-status", "below-normal", "negation", "negated-tag",
         "quoted-phrase", "phrase-in-order-only", "word", "wildcard", "organization-by-name",
         "requester-me", "none", "via-and-tags"],
)  # fmt: skip
def test_ticket_properties_compare_as_zendesk_does(
    sandbox: tuple[str, httpx.Client], query: str, ids: list[int]
) -> None:
    assert _tickets(sandbox[0], f"type:ticket {query}") == ids


def test_search_finds_tickets_users_and_organizations(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    assert _found(url, '"production outage"') == [("ticket", 9023)]
    assert _found(url, "9023") == [("ticket", 9023)]
    assert _found(url, "acme") == [("user", ACME_CONTACT), ("organization", ACME)]
    assert _found(url, "type:organization acme") == [("organization", ACME)]
    assert _found(url, "acme", **{"filter[type]": "user"}) == [("user", ACME_CONTACT)]
    assert _found(url, 'type:user organization:"Umbrella Media"') == [("user", 3600000681)]
    assert _found(url, "type:user role:admin") == [("user", AGENT)]
    assert _found(url, "type:user email:support@hooli-logistics.example") == [("user", 3600000851)]
    assert _found(url, "type:ticket type:organization name:acme") == [("organization", ACME)]


@pytest.mark.parametrize(
    ("query", "params", "ids"),
    [
        ("organization:360000068", {"sort_by": "created_at", "sort_order": "asc"},
         [9010, 9009, 9008]),
        ("organization:360000085", {"sort_by": "priority", "sort_order": "asc"},
         [9014, 9012, 9013]),
        ("organization:360000102", {"sort_by": "priority"}, [9016, 9018, 9017]),
        ("organization:360000102 order_by:updated sort:asc", {}, [9017, 9018, 9016]),
        ("organization:360000102", {"sort_order": "desc"}, [9018, 9017, 9016]),
    ],
    ids=["created-asc", "priority-asc", "priority-desc-by-default", "order-by-keyword",
         "relevance-desc"],
)  # fmt: skip
def test_results_are_sorted_as_asked(
    sandbox: tuple[str, httpx.Client], query: str, params: dict[str, str], ids: list[int]
) -> None:
    assert _tickets(sandbox[0], f"type:ticket {query}", **params) == ids


@pytest.mark.parametrize(
    ("query", "params", "description"),
    [
        ("type:ticket group:support", {}, "the sandbox does not search by group"),
        ("type:ticket subject>abc", {}, "subject>abc: subject has no order"),
        ("type:ticket created>yesterday", {}, "'yesterday' is not a date"),
        ("type:ticket priority>important", {}, "priority>important: 'important' is not a priority"),
        ('type:ticket subject:"unbalanced', {},
         "cannot parse 'subject:\"unbalanced' (an unbalanced quote?)"),
        ("type:group", {}, "type:group: the sandbox holds tickets, users and organizations"),
        ("subject:*outage", {}, "'*outage': the sandbox takes a trailing wildcard only"),
        ("", {}, "Please provide a valid search query"),
        ("type:ticket", {"sort_by": "commented"},
         "sort_by 'commented': one of created, created_at, priority, status, ticket_type, "
         "updated, updated_at"),
    ],
    ids=["unknown-property", "order-on-text", "no-date", "no-priority", "unbalanced-quote",
         "groups", "leading-wildcard", "empty", "sort-by"],
)  # fmt: skip
def test_what_the_search_cannot_run_is_zendesks_422_not_zero_hits(
    sandbox: tuple[str, httpx.Client], query: str, params: dict[str, str], description: str
) -> None:
    answer = _get(sandbox[0], "/api/v2/search.json", query=query, **params)
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "invalid", "description": f"Invalid search: {description}"},
    )


# -- parameters: applied, or refused ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/v2/tickets.json", {"sort_by": "updated_at"}, "sort_by"),
        ("/api/v2/tickets/9023.json", {"include": "groups"}, "include"),
        ("/api/v2/tickets/show_many.json", {"ids": "9001", "external_ids": "x"}, "external_ids"),
        ("/api/v2/organizations/360000017/tickets.json", {"sort": "-updated_at"}, "sort"),
        ("/api/v2/tickets/9023/comments.json", {"sort_order": "desc"}, "sort_order"),
        ("/api/v2/incremental/tickets/cursor.json",
         {"start_time": "0", "exclude_deleted": "true"}, "exclude_deleted"),
        ("/api/v2/incremental/ticket_metric_events.json", {"start_time": "0", "per_page": "9"},
         "per_page"),
        ("/api/v2/search.json", {"query": "type:ticket", "include": "tickets(users)"}, "include"),
        ("/api/v2/search.json", {"query": "acme", "filter[type]": "group"}, "filter[type]"),
        ("/api/v2/users/1000001.json", {"include": "identities"}, "include"),
    ],
    ids=["list-sort", "unserved-sideload", "show-many-external", "org-tickets-sort",
         "comments-order", "export-exclude-deleted", "metric-events-page", "search-sideload",
         "search-groups", "user-identities"],
)  # fmt: skip
def test_a_parameter_the_sandbox_does_not_apply_is_refused(
    sandbox: tuple[str, httpx.Client], path: str, params: dict[str, str], name: str
) -> None:
    answer = _get(sandbox[0], path, **params)
    assert answer.status_code == 400
    assert answer.json()["error"]["title"] == "Invalid attribute"
    assert answer.json()["error"]["message"].startswith(
        f"You passed an invalid value for the {name} attribute."
    )


def test_sideloads_are_served_and_unknown_names_ignored(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    got = _get(url, "/api/v2/tickets/9023.json", include="users,organizations").json()
    assert [(u["id"], u["name"], u["url"]) for u in got["users"]] == [
        (AGENT, "Opsgraph Integration", f"{url}/api/v2/users/{AGENT}.json")
    ]
    assert [(o["id"], o["name"]) for o in got["organizations"]] == [(360000136, "Wayne Health")]
    path = "/api/v2/organizations/360000068/tickets.json"
    plain = _get(url, path, **{"page[size]": "100"}).json()
    named = _get(url, path, **{"page[size]": "100", "include": "None"}).json()
    assert (named["tickets"], named["meta"]) == (plain["tickets"], plain["meta"])


def test_lists_page_by_offset_without_a_cursor(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    got = _get(url, "/api/v2/tickets.json", per_page="5", page="2").json()
    assert [t["id"] for t in got["tickets"]] == [9009, 9010, 9012, 9013, 9014]
    assert (got["next_page"], got["previous_page"], got["count"]) == (
        f"{url}/api/v2/tickets.json?per_page=5&page=3",
        f"{url}/api/v2/tickets.json?per_page=5&page=1",
        16,
    )


@pytest.mark.parametrize(
    "params",
    [{"page[after]": "djE6OTAwMQ", "page[before]": "djE6OTAyMw"},
     {"page[size]": "5", "per_page": "5"}],
    ids=["after-and-before", "cursor-and-offset"],
)  # fmt: skip
def test_paging_both_ways_at_once_is_refused(
    sandbox: tuple[str, httpx.Client], params: dict[str, str]
) -> None:
    answer = _get(sandbox[0], "/api/v2/tickets.json", **params)
    assert (answer.status_code, answer.json()["error"]) == (400, "InvalidPaginationParameter")


def test_the_ticket_export_pages_by_cursor_alone(sandbox: tuple[str, httpx.Client]) -> None:
    url, _ = sandbox
    first = _get(url, "/api/v2/incremental/tickets/cursor.json", start_time="0", per_page="10")
    body = first.json()
    assert [t["id"] for t in body["tickets"]] == [9001, 9002, 9004, 9006, 9008, 9009, 9010,
                                                  9012, 9013, 9014]  # fmt: skip
    cursor = body["after_cursor"]
    assert body["after_url"] == (
        f"{url}/api/v2/incremental/tickets/cursor.json?per_page=10&cursor={cursor}"
    )
    rest = httpx.get(body["after_url"], auth=AUTH).json()
    assert ([t["id"] for t in rest["tickets"]], rest["end_of_stream"]) == (
        [9016, 9017, 9018, 9021, 9022, 9023], True
    )  # fmt: skip
    both = _get(url, "/api/v2/incremental/tickets/cursor.json", start_time="0", cursor=cursor)
    assert (both.status_code, both.json()) == (
        400, {"error": "InvalidValue", "description": "give start_time (unix seconds) or cursor"}
    )  # fmt: skip


# -- users and organizations ----------------------------------------------------------------


def test_users_are_the_token_user_and_a_contact_per_organization(
    sandbox: tuple[str, httpx.Client],
) -> None:
    url, _ = sandbox
    org = _get(url, f"/api/v2/organizations/{ACME}.json").json()["organization"]
    assert (org["url"], org["id"], org["name"], org["external_id"]) == (
        f"{url}/api/v2/organizations/{ACME}.json", ACME, "Acme Logistics", "cust_0001"
    )  # fmt: skip
    contact = _get(url, f"/api/v2/users/{ACME_CONTACT}.json").json()["user"]
    assert _pick(
        contact,
        "url",
        "id",
        "name",
        "email",
        "role",
        "organization_id",
        "ticket_restriction",
        "created_at",
    ) == {
        "url": f"{url}/api/v2/users/{ACME_CONTACT}.json",
        "id": ACME_CONTACT,
        "name": "Acme Logistics Support",
        "email": "support@acme-logistics.example",
        "role": "end-user",
        "organization_id": ACME,
        "ticket_restriction": "requested",
        "created_at": org["created_at"],
    }
    me = _get(url, "/api/v2/users/me.json").json()["user"]
    assert (me["id"], me["email"], me["role"]) == (AGENT, "integration@opsgraph.example", "admin")
    assert _get(url, f"/api/v2/users/{AGENT}.json").json()["user"] == me
    many = _get(url, "/api/v2/users/show_many.json", ids=f"{ACME_CONTACT},{AGENT},5").json()
    assert [u["id"] for u in many["users"]] == [AGENT, ACME_CONTACT]


@pytest.mark.parametrize(
    "path", ["/api/v2/users/5.json", "/api/v2/organizations/5.json", "/api/v2/tickets/5.json",
             "/api/v2/tickets/5/comments.json"],
)  # fmt: skip
def test_a_missing_record_is_record_not_found(sandbox: tuple[str, httpx.Client], path: str) -> None:
    answer = _get(sandbox[0], path)
    assert (answer.status_code, answer.json()) == (
        404, {"error": "RecordNotFound", "description": "Not found"}
    )  # fmt: skip


# -- comments and ticket writes -------------------------------------------------------------


def test_comments_start_with_the_description_and_page_by_cursor(
    fresh: tuple[str, httpx.Client],
) -> None:
    url, _ = fresh
    seeded = _get(url, "/api/v2/tickets/9023/comments.json").json()
    [first] = seeded["comments"]
    assert {k: v for k, v in first.items() if k != "id"} == {
        "type": "Comment",
        "author_id": AGENT,
        "body": "Production outage: API unavailable",
        "html_body": '<div class="zd-comment" dir="auto"><p dir="auto">Production outage: API '
        "unavailable</p></div>",
        "plain_body": "Production outage: API unavailable",
        "public": True,
        "attachments": [],
        "audit_id": None,
        "via": {"channel": "web"},
        "metadata": {"system": {}, "custom": {}},
        "created_at": "2026-10-30T08:00:00Z",
    }
    note = {"comment": {"body": "Credit approved", "public": False}, "metadata": {"k": "v"}}
    put = httpx.put(f"{url}/api/v2/tickets/9023.json", json={"ticket": note}, auth=AUTH).json()
    page = _get(url, "/api/v2/tickets/9023/comments.json", **{"page[size]": "1"}).json()
    assert ([c["id"] for c in page["comments"]], page["meta"]["has_more"]) == ([first["id"]], True)
    [added] = httpx.get(page["links"]["next"], auth=AUTH).json()["comments"]
    assert (added["id"], added["audit_id"], added["body"], added["public"]) == (
        put["audit"]["events"][0]["id"], put["audit"]["id"], "Credit approved", False
    )  # fmt: skip
    assert added["metadata"]["custom"] == {"k": "v"}


def test_an_update_changes_status_priority_tags_and_records_each_change(
    fresh: tuple[str, httpx.Client],
) -> None:
    url, _ = fresh
    update = {"id": 9022, "status": "open", "priority": "high", "additional_tags": ["billing"],
              "subject": "Tax is wrong", "type": "problem"}  # fmt: skip
    put = httpx.put(f"{url}/api/v2/tickets/9022.json", json={"ticket": update}, auth=AUTH).json()
    ticket = _get(url, "/api/v2/tickets/9022.json").json()["ticket"]
    assert ticket == put["ticket"]
    assert _pick(ticket, "subject", "type", "priority", "status", "tags") == {
        "subject": "Tax is wrong", "type": "problem", "priority": "high", "status": "open",
        "tags": ["billing"],
    }  # fmt: skip
    assert [
        (e["type"], e["field_name"], e["value"], e["previous_value"])
        for e in put["audit"]["events"]
    ] == [  # fmt: skip
        ("Change", "subject", "Tax is wrong", "Invoice shows wrong tax"),
        ("Change", "priority", "high", "low"),
        ("Change", "status", "open", "new"),
        ("Change", "type", "problem", None),
        ("Change", "tags", ["billing"], []),
    ]
    replaced = {"tags": ["vip", "billing"], "remove_tags": ["billing"]}
    httpx.put(f"{url}/api/v2/tickets/9022.json", json={"ticket": replaced}, auth=AUTH)
    assert _get(url, "/api/v2/tickets/9022.json").json()["ticket"]["tags"] == ["vip"]


@pytest.mark.parametrize(
    ("ticket", "field", "description"),
    [
        ({"collaborator_ids": [AGENT]}, "collaborator_ids",
         "collaborator_ids: the sandbox does not apply it"),
        ({"comment": {"body": "x", "uploads": ["t"]}}, "comment",
         "Comment: the sandbox does not apply uploads"),
        ({"status": "done"}, "status", "Status: is not valid"),
        ({"assignee_id": ACME_CONTACT}, "assignee_id", "Assignee: is not an agent"),
        ({"requester_id": 5}, "requester_id", "Requester: is invalid"),
        ({"id": 9001}, "id", "Id: does not match the ticket updated"),
    ],
    ids=["unapplied-property", "unapplied-comment-part", "status", "assignee", "requester", "id"],
)  # fmt: skip
def test_an_update_the_sandbox_cannot_apply_is_refused_whole(
    fresh: tuple[str, httpx.Client], ticket: dict[str, Any], field: str, description: str
) -> None:
    url, _ = fresh
    before = _get(url, "/api/v2/tickets/9022.json").json()
    answer = httpx.put(
        f"{url}/api/v2/tickets/9022.json",
        json={"ticket": {"priority": "urgent", **ticket}},
        auth=AUTH,
    )
    assert (answer.status_code, answer.json()) == (422, {
        "error": "RecordInvalid", "description": "Record validation errors",
        "details": {field: [{"description": description, "error": "InvalidValue"}]},
    })  # fmt: skip
    assert _get(url, "/api/v2/tickets/9022.json").json() == before


def test_a_closed_ticket_takes_no_update(fresh: tuple[str, httpx.Client]) -> None:
    url, _ = fresh
    closed = {"ticket": {"status": "closed"}}
    assert httpx.put(f"{url}/api/v2/tickets/9001.json", json=closed, auth=AUTH).status_code == 200
    again = httpx.put(
        f"{url}/api/v2/tickets/9001.json", json={"ticket": {"tags": ["x"]}}, auth=AUTH
    )
    assert (again.status_code, again.json()["details"]) == (
        422, {"status": [{"description": "Status: closed prevents ticket update",
                          "error": "InvalidValue"}]},
    )  # fmt: skip


def test_a_description_opens_a_ticket_for_a_requester(fresh: tuple[str, httpx.Client]) -> None:
    """As zenpy's ``Ticket(description=...)`` sends it; the requester's organization is the
    ticket's when none is given."""
    url, _ = fresh
    ticket = {"subject": "Seats", "description": "We need ten more seats.",
              "requester_id": ACME_CONTACT, "tags": ["sales"]}  # fmt: skip
    made = httpx.post(f"{url}/api/v2/tickets.json", json={"ticket": ticket}, auth=AUTH)
    assert made.status_code == 201
    doc = made.json()["ticket"]
    shown = ("id", "subject", "description", "requester_id", "submitter_id", "organization_id",
             "tags", "status", "priority")  # fmt: skip
    assert _pick(doc, *shown) == {
        "id": 9024, "subject": "Seats", "description": "We need ten more seats.",
        "requester_id": ACME_CONTACT, "submitter_id": AGENT, "organization_id": ACME,
        "tags": ["sales"], "status": "new", "priority": "normal",
    }  # fmt: skip
    [first] = _get(url, "/api/v2/tickets/9024/comments.json").json()["comments"]
    assert (first["author_id"], first["body"], first["audit_id"]) == (
        ACME_CONTACT, "We need ten more seats.", made.json()["audit"]["id"]
    )  # fmt: skip
