"""Zendesk's search language, over the stand-in's tickets, users and organizations.

A query is terms separated by spaces:

    word, "a phrase"          free text: a word matches a word or the start of one, a phrase
                              consecutive words (tickets: subject, description, comments;
                              users: name, email; organizations: name, details, notes); a
                              bare number also matches the ticket with that id
    field:value               equality; ``field:"two words"`` quotes a value; ``none`` matches
                              an empty property; a trailing ``*`` is a wildcard
    field<v field>v field<=v field>=v
                              on dates (``created``, ``updated``) and on ``status`` and
                              ``priority`` in Zendesk's order (new < open < pending < hold <
                              solved < closed; low < normal < high < urgent)
    -term                     excludes what the term matches
    type:ticket|user|organization
    order_by:field sort:asc|desc   as the ``sort_by`` and ``sort_order`` parameters

Dates are ``2026-10-01`` (a whole day, UTC), ``2026-10-01T12:00:00Z`` (an instant, any offset)
or relative to now: ``4hours``, ``1week``, ``2days`` (minutes, hours, days, weeks, months,
years); ``created>4hours`` is "created in the last four hours". Repeated ``field:value`` terms
on one field match any of their values; every other term must match.

What the stand-in cannot run is refused with Zendesk's 422 ``invalid``, never answered with no
hits: an unknown property, a comparison on a property that has no order, a value that is no
date, an unbalanced quote, ``type:group`` (the stand-in has no groups).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from connectors.sandbox.support import documents as d
from connectors.sandbox.support.errors import invalid_search

Doc = dict[str, Any]
Match = Callable[[Doc], bool]
Check = Callable[[str, Doc], bool]  # (result type, record) -> does it match
TYPES = ("ticket", "user", "organization")  # also the order of mixed results by relevance
# sort_by (and order_by:) -> the property: Zendesk's sort_by values and order_by: words
SORTS = {"created_at": "created_at", "created": "created_at", "updated_at": "updated_at",
         "updated": "updated_at", "priority": "priority", "status": "status",
         "ticket_type": "type"}  # fmt: skip
_RANKS = {"status": d.STATUSES, "priority": d.PRIORITIES[::-1]}
_TOKEN = re.compile(r'(-?)(?:([a-z_]+)(<=|>=|:|<|>))?(?:"([^"]*)"|([^\s"]+))', re.IGNORECASE)
_RELATIVE = re.compile(r"(\d+)(minute|hour|day|week|month|year)s?", re.IGNORECASE)
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
          "week": timedelta(weeks=1)}  # fmt: skip


@dataclass(frozen=True)
class Term:
    negated: bool
    field: str | None  # None: free text
    op: str
    value: str
    quoted: bool


class Records:
    """What references and comment searches resolve against, each loaded once and only when
    a term needs it: most searches (``type:ticket organization:<id>``) need none."""

    def __init__(
        self,
        users: Callable[[], list[Doc]],
        organizations: Callable[[], list[Doc]],
        comments: Callable[[], Mapping[int, list[str]]],  # ticket id -> comment bodies
    ) -> None:
        self._users, self._organizations, self._comments = users, organizations, comments

    @cached_property
    def users(self) -> list[Doc]:
        return self._users()

    @cached_property
    def organizations(self) -> list[Doc]:
        return self._organizations()

    @cached_property
    def comments(self) -> Mapping[int, list[str]]:
        return self._comments()


@dataclass(frozen=True)
class Plan:
    """A compiled query: the result types to look in and what a record of one must match."""

    kinds: tuple[str, ...]  # in TYPES order
    match: Check
    sort_by: str | None
    sort_order: str | None


def terms(query: str) -> list[Term]:
    found, at = [], 0
    while at < len(query):
        if query[at].isspace():
            at += 1
            continue
        m = _TOKEN.match(query, at)
        if m is None or (m.end() < len(query) and not query[m.end()].isspace()):
            raise invalid_search(f"cannot parse {query[at:]!r} (an unbalanced quote?)")
        negated, field, op, quoted, bare = m.groups()
        value = quoted if quoted is not None else bare
        if field is None and quoted is None and any(c in bare for c in ":<>"):
            raise invalid_search(f"cannot parse {bare!r}")
        found.append(Term(bool(negated), field and field.lower(), op or ":", value, bare is None))
        at = m.end()
    if not found:
        raise invalid_search("Please provide a valid search query")
    return found


def _words(text: Any) -> list[str]:
    return re.findall(r"\w+", str(text or "").lower())


def _wildcard(value: str) -> str:
    """``value`` without its trailing wildcard, the only one the stand-in takes."""
    if "*" in value.rstrip("*"):
        raise invalid_search(f"{value!r}: the sandbox takes a trailing wildcard only")
    return value.rstrip("*")


def _says(texts: list[Any], value: str) -> bool:
    """Zendesk's text match: each word of ``value`` starts a word of a text, in sequence."""
    wanted = _words(value)
    for text in texts:
        words = _words(text)
        for i in range(len(words) - len(wanted) + 1):
            if all(words[i + k].startswith(w) for k, w in enumerate(wanted)):
                return True
    return False


def _equals(value: str) -> Callable[[Any], bool]:
    """Case-insensitive equality, a prefix with a trailing ``*``; ``none`` is empty."""
    low = _wildcard(value).lower()
    if low == "none":
        return lambda v: v in (None, "", [])
    if value.endswith("*"):
        return lambda v: any(str(x).lower().startswith(low) for x in _many(v))
    return lambda v: any(str(x).lower() == low for x in _many(v))


def _many(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _span(value: str, now: datetime) -> tuple[datetime, datetime]:
    """The instants a date value covers, [start, end): a day is 24 hours, an instant or a
    time relative to ``now`` one second."""
    relative = _RELATIVE.fullmatch(value)
    if relative:
        n, unit = int(relative[1]), relative[2].lower()
        if unit in _UNITS:
            start = now - n * _UNITS[unit]
        else:
            months = n * (12 if unit == "year" else 1)
            year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
            start = now.replace(year=year, month=month + 1, day=min(now.day, 28))
        return start, start + timedelta(seconds=1)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_search(f"{value!r} is not a date") from None
    if len(value) == 10:
        day = when.replace(tzinfo=UTC)
        return day, day + timedelta(days=1)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when, when + timedelta(seconds=1)


def _dated(key: str, op: str, value: str, now: datetime) -> Match:
    start, end = _span(value, now)
    tests: dict[str, Callable[[datetime], bool]] = {
        ":": lambda t: start <= t < end, ">": lambda t: t >= end, ">=": lambda t: t >= start,
        "<": lambda t: t < start, "<=": lambda t: t < end,
    }  # fmt: skip
    test = tests[op]
    return lambda doc: test(datetime.fromisoformat(doc[key]))


def _ranked(key: str, op: str, value: str) -> Match:
    order = _RANKS[key]
    if op == ":":
        equal = _equals(value)
        return lambda doc: equal(doc.get(key))
    if value.lower() not in order:
        raise invalid_search(f"{key}{op}{value}: {value!r} is not a {key}")
    at = order.index(value.lower())
    tests: dict[str, Callable[[int], bool]] = {
        "<": lambda r: r < at, "<=": lambda r: r <= at, ">": lambda r: r > at,
        ">=": lambda r: r >= at,
    }  # fmt: skip
    test = tests[op]
    return lambda doc: doc.get(key) in order and test(order.index(doc[key]))


def _negated(check: Check) -> Check:
    return lambda kind, doc: not check(kind, doc)


def _any(checks: list[Check]) -> Check:
    return lambda kind, doc: any(check(kind, doc) for check in checks)


class _Fields:
    """The property keywords of each result type, compiled against ``records``."""

    def __init__(self, records: Records, now: datetime) -> None:
        self.records = records
        self.by_type: dict[str, dict[str, Callable[[Term], Match]]] = {
            "ticket": {
                "status": lambda t: _ranked("status", t.op, t.value),
                "priority": lambda t: _ranked("priority", t.op, t.value),
                "ticket_type": lambda t: self._equal(t, "type"),
                "organization": lambda t: self._ref(t, "organization"),
                "organization_id": lambda t: self._ref(t, "organization_id"),
                "requester": lambda t: self._ref(t, "requester"),
                "submitter": lambda t: self._ref(t, "submitter"),
                "assignee": lambda t: self._ref(t, "assignee"),
                "tags": lambda t: self._equal(t, "tags"),
                "via": lambda t: self._equal(t, "via", lambda doc: doc["via"]["channel"]),
                "external_id": lambda t: self._equal(t, "external_id"),
                "subject": lambda t: self._text(t, "subject"),
                "description": lambda t: self._text(t, "description"),
                "comment": lambda t: self._text(t, "comments", self._comments),
            },
            "user": {
                "name": lambda t: self._text(t, "name"),
                "email": lambda t: self._equal(t, "email"),
                "role": lambda t: self._equal(t, "role"),
                "organization": lambda t: self._ref(t, "organization"),
                "tags": lambda t: self._equal(t, "tags"),
                "external_id": lambda t: self._equal(t, "external_id"),
            },
            "organization": {
                "name": lambda t: self._text(t, "name"),
                "details": lambda t: self._text(t, "details"),
                "notes": lambda t: self._text(t, "notes"),
                "tags": lambda t: self._equal(t, "tags"),
                "external_id": lambda t: self._equal(t, "external_id"),
            },
        }
        # Properties that name another record: (the key that holds its id, ids a value names).
        org, person = self._org_ids, self._person_ids
        self.refs: dict[str, tuple[str, Callable[[str], set[int | None]]]] = {
            "organization": ("organization_id", org), "organization_id": ("organization_id", org),
            "requester": ("requester_id", person), "submitter": ("submitter_id", person),
            "assignee": ("assignee_id", person),
        }  # fmt: skip
        for fields in self.by_type.values():
            fields["created"] = lambda t: _dated("created_at", t.op, t.value, now)
            fields["updated"] = lambda t: _dated("updated_at", t.op, t.value, now)

    def known(self, field: str) -> bool:
        return any(field in fields for fields in self.by_type.values())

    def compile(self, term: Term) -> Check:
        field = str(term.field)
        matches = {kind: f[field](term) for kind, f in self.by_type.items() if field in f}
        check: Check = lambda kind, doc: kind in matches and matches[kind](doc)  # noqa: E731
        return _negated(check) if term.negated else check

    def compile_any(self, terms: list[Term]) -> Check:
        """Equality terms on one field, any of which may match: for a property that names a
        record, one lookup in the ids they name together."""
        field = str(terms[0].field)
        if field not in self.refs:
            return _any([self.compile(term) for term in terms])
        key, ids_of = self.refs[field]
        ids: set[int | None] = set()
        for term in terms:
            self._only_equality(term)
            ids |= ids_of(term.value)
        kinds = {kind for kind, fields in self.by_type.items() if field in fields}
        return lambda kind, doc: kind in kinds and doc.get(key) in ids

    def _comments(self, doc: Doc) -> list[str]:
        return list(self.records.comments.get(doc["id"], []))

    @staticmethod
    def _only_equality(term: Term) -> None:
        if term.op != ":":
            raise invalid_search(f"{term.field}{term.op}{term.value}: {term.field} has no order")

    def _equal(self, term: Term, key: str, get: Callable[[Doc], Any] | None = None) -> Match:
        self._only_equality(term)
        equal = _equals(term.value)
        return lambda doc: equal(get(doc) if get else doc.get(key))

    def _text(self, term: Term, key: str, get: Callable[[Doc], list[str]] | None = None) -> Match:
        self._only_equality(term)
        value = _wildcard(term.value)
        return lambda doc: _says(get(doc) if get else [doc[key]], value)

    def _ref(self, term: Term, field: str) -> Match:
        self._only_equality(term)
        key, ids_of = self.refs[field]
        ids = ids_of(term.value)
        return lambda doc: doc.get(key) in ids

    def _org_ids(self, value: str) -> set[int | None]:
        """The organizations a value names: an id, a name, or ``none``."""
        if value.isdigit():
            return {int(value)}
        if value.lower() == "none":
            return {None}
        name = _wildcard(value)
        return {o["id"] for o in self.records.organizations if _says([o["name"]], name)}

    def _person_ids(self, value: str) -> set[int | None]:
        """The users a value names: an id, an email, a name, ``me`` (the token's user) or
        ``none``."""
        value = value.lower()
        if value == "me":
            return {d.AGENT_ID}
        if value.isdigit():
            return {int(value)}
        if value == "none":
            return {None}
        name = _wildcard(value)
        return {u["id"] for u in self.records.users
                if u["email"].lower() == value or _says([u["name"]], name)}  # fmt: skip


def _free_text(term: Term, records: Records) -> Check:
    def texts(kind: str, doc: Doc) -> list[Any]:
        if kind == "ticket":
            return [doc["subject"], doc["description"], *records.comments.get(doc["id"], [])]
        if kind == "user":
            return [doc["name"], doc["email"]]
        return [doc["name"], doc["details"], doc["notes"]]

    value = _wildcard(term.value)
    is_id = value.isdigit() and not term.quoted

    def check(kind: str, doc: Doc) -> bool:
        if is_id and kind == "ticket" and doc["id"] == int(value):
            return True
        return _says(texts(kind, doc), value)

    return _negated(check) if term.negated else check


def plan(query: str, records: Records, sort: tuple[str | None, str | None],
         only: str | None, now: datetime) -> Plan:  # fmt: skip
    """``query`` compiled: the types it looks in (of type ``only`` when given, as
    ``filter[type]``), what a record must match, and ``sort`` (sort_by, sort_order) unless
    the query says ``order_by:`` or ``sort:``."""
    fields = _Fields(records, now)
    sort_by, sort_order = sort
    kinds: set[str] = set(TYPES) if only is None else {only}
    typed: set[str] = set()
    equal: dict[str, list[Term]] = {}  # field:value terms, any of which may match
    checks: list[Check] = []  # every one of which must match
    for term in terms(query):
        if term.field == "type":
            if term.op != ":" or term.value.lower() not in TYPES:
                raise invalid_search(
                    f"type{term.op}{term.value}: the sandbox holds tickets, users and organizations"
                )
            if term.negated:
                kinds.discard(term.value.lower())
            else:
                typed.add(term.value.lower())
        elif term.field == "order_by" and not term.negated:
            sort_by = term.value
        elif term.field == "sort" and not term.negated:
            sort_order = term.value
        elif term.field is None:
            checks.append(_free_text(term, records))
        elif not fields.known(term.field):
            raise invalid_search(f"the sandbox does not search by {term.field}")
        elif term.op == ":" and not term.negated:
            equal.setdefault(term.field, []).append(term)
        else:
            checks.append(fields.compile(term))
    kinds &= typed or kinds
    checks += [fields.compile_any(group) for group in equal.values()]
    ordered([], sort_by, sort_order)  # refuses a sort it cannot do before anything is read
    return Plan(
        tuple(k for k in TYPES if k in kinds),
        lambda kind, doc: all(check(kind, doc) for check in checks),
        sort_by,
        sort_order,
    )


def ordered(found: list[tuple[str, Doc]], sort_by: str | None,
            sort_order: str | None) -> list[tuple[str, Doc]]:  # fmt: skip
    """By ``sort_by`` (default order desc), records without that property last; without it
    by type and id, the stand-in's relevance."""
    if sort_order not in (None, "asc", "desc"):
        raise invalid_search(f"sort_order {sort_order!r}: asc or desc")
    by_id = sorted(found, key=lambda f: (TYPES.index(f[0]), int(f[1]["id"])))
    if sort_by is None:
        return by_id[::-1] if sort_order == "desc" else by_id
    if sort_by not in SORTS:
        raise invalid_search(f"sort_by {sort_by!r}: one of {', '.join(sorted(SORTS))}")
    key = SORTS[sort_by]

    def value(doc: Doc) -> Any:
        raw = doc.get(key)
        return _RANKS[key].index(raw) if key in _RANKS and raw in _RANKS[key] else raw

    have = [f for f in by_id if value(f[1]) is not None]
    lack = [f for f in by_id if value(f[1]) is None]
    return sorted(have, key=lambda f: value(f[1]), reverse=sort_order != "asc") + lack
