"""Fuzzing over real HTTP: operations generated from the running schema by hypothesis-graphql,
valid ones and invalid ones, sent to a gateway on the seeded sandboxes. Whatever arrives, the
answer is not a 5xx, is JSON, every error in it has ``extensions.code`` (never ``INTERNAL``),
none shows a stack trace or a source path, and nothing is logged at ERROR.

Bounded for CI: ``EXAMPLES`` operations of each set (1,500; ``OPSGRAPH_FUZZ_EXAMPLES`` for a
longer run), drawn from the fixed ``SEED`` so that every run sends the same operations.
``pytest -s`` prints how many were sent and how they were answered.

The invalid set mixes hypothesis-graphql's negative mode (one schema violation each: a wrong
argument type, a missing required argument, an unknown enum value, null for non-null) with
our own mutations of valid operations: unknown names, junk tokens, deep nesting, variables of
any JSON shape and request bodies of any shape.

Restrictions, on purpose:
- federation's ``_Any`` (the representations ``_entities`` takes) is a scalar hypothesis-graphql
  cannot invent: ``scalars`` gives it representations, mostly of a seeded customer.
- ``ID`` and ``String`` arguments are drawn half from the seeded world's ids, external ids
  and features, and ``Int`` ones around the page sizes accepted (1..200), so that valid
  operations reach the resolvers and the systems of record instead of stopping at
  NOT_FOUND or BAD_USER_INPUT.
- Queries, and mutations sent as a principal that may not write (a viewer): each is refused
  whole (``FORBIDDEN``) before it runs. Writes the fuzzer chose would change
  the seeded world the other tests compare answers with. Every request is a POST.
- No lone surrogate (U+D800..U+DFFF) in generated text: the HTTP stage refuses a request
  that escapes one (``tests/gateway/test_request_errors.py``).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import graphql
import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, nodes, strategies

from connectors.sandbox.seed import PLANS
from gateway.auth.scopes import Role
from gateway.schema import build_schema
from tests.gateways import AUTH, Served
from tests.identity import identity
from tests.world import Sandboxes

EXAMPLES = int(os.environ.get("OPSGRAPH_FUZZ_EXAMPLES", "1500"))
SEED = 9_2026
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],  # every answer is checked after the run: nothing to shrink
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
SCHEMA = build_schema()._schema
# The viewer reads everything; a support agent is refused balances and postings.
PRINCIPALS = {
    "viewer": AUTH,
    "support_agent": identity().headers(Role.SUPPORT_AGENT, expires_in=86400),
}
# What no answer may show: a Python traceback or a path into the gateway's source.
LEAKS = ("Traceback", 'File "', '.py"', ".py:", "site-packages")


@dataclass(frozen=True)
class Case:
    kind: str
    body: object  # what is POSTed as JSON (not necessarily an object)
    principal: str
    must_fail: bool  # no server that follows the schema may run it without an error


@dataclass
class Tally:
    """What was sent and how it was answered."""

    name: str
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    executed: int = 0  # answers with a ``data`` entry: the operation ran
    violations: list[str] = field(default_factory=list)

    def record(self, case: Case, response: httpx.Response) -> None:
        self.kinds[case.kind] += 1
        self.statuses[response.status_code] += 1
        problems, answer = _problems(case, response)
        codes = [_code(error) or "(no code)" for error in answer.get("errors") or ()]
        self.codes.update(codes or ["(no error)"])
        self.executed += "data" in answer
        if problems:
            sent = json.dumps(case.body)[:500]
            self.violations.append(
                f"{'; '.join(problems)}\n  sent ({case.kind}, {case.principal}): {sent}\n"
                f"  answered {response.status_code}: {response.text[:500]}"
            )

    def __str__(self) -> str:
        def spread(counter: Counter[Any]) -> str:
            return ", ".join(f"{key} {count}" for key, count in counter.most_common())

        return (
            f"fuzz, {self.name}: {self.kinds.total()} operations ({spread(self.kinds)}); "
            f"{self.executed} answered with data\n  status codes: {spread(self.statuses)}\n"
            f"  error codes: {spread(self.codes)}"
        )

    def verdict(self) -> str:
        shown = "\n".join(self.violations[:10])
        return f"{self} \n{len(self.violations)} answers break the rules:\n{shown}"


def _problems(case: Case, response: httpx.Response) -> tuple[list[str], dict[str, Any]]:
    problems = []
    if response.status_code >= 500:
        problems.append(f"status {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    # A leak is what the answer shows and the request did not send (an echoed value).
    leaked = [m for m in LEAKS if m in _texts(answer) and m not in _texts(case.body)]
    if leaked:
        problems.append(f"the answer shows {', '.join(leaked)}")
    if isinstance(answer, str):
        return [*problems, "the answer is not JSON"], {}
    if not isinstance(answer, dict):
        return [*problems, "the answer is not a JSON object"], {}
    errors = answer.get("errors") or []
    if any(_code(error) is None for error in errors):
        problems.append("an error without extensions.code")
    if "INTERNAL" in map(_code, errors):
        problems.append("an INTERNAL error (an unexpected exception)")
    if case.must_fail and not errors:
        problems.append("an invalid operation ran without an error")
    return problems, answer


def _texts(value: object) -> str:
    """Every string in a JSON value, unescaped, one per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_texts(part) for item in value.items() for part in item)
    if isinstance(value, list):
        return "\n".join(_texts(item) for item in value)
    return ""


def _code(error: object) -> str | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return code if isinstance(code, str) and code else None


class ErrorLog(logging.Handler):
    """What is logged at ERROR, or with an exception, while it is installed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.lines.append(f"{record.name} {record.levelname}: {record.getMessage()[:300]}")


@contextmanager
def error_log() -> Iterator[ErrorLog]:
    """On the root logger (``opsgraph.*``, strawberry) and on uvicorn's, which does not
    propagate (``uvicorn.error``). Install it after the server starts: uvicorn's logging
    configuration drops the handlers of its loggers."""
    handler = ErrorLog()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


# --- what is generated --------------------------------------------------------------------

# No lone surrogates: see the module's docstring.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
JUNK = [
    "{", "}", "(", ")", "[", "]", ":", "$", "@", "...", "!", "=", "|", "&", '"', '"""', "#",
    "\\", "\x00", "\ufeff", "\u2028", "query", "mutation", "subscription", "fragment", "on",
    "null", "true", "1e999", "-0", "9" * 40, "0x1F", "__typename", "__schema { types { name } }",
    "@skip(if: true)", "@include(if: $v)", "@deprecated", "$v", "... on Customer { id }",
]  # fmt: skip
# Deep nesting of each kind a document has, invalid at any depth: past graphql-core's
# parser limit it does not parse, below it the innermost part is wrong.
DEEP: dict[str, Callable[[int], str]] = {
    # ``name`` is a leaf: any selection under it is wrong.
    "selections": lambda n: "{ systems " + "{ name " * (n + 1) + "}" * (n + 1) + " }",
    "inline fragments": lambda n: "{ " + "... on Query { " * n + "nope" + " }" * n + " }",
    "list values": lambda n: "{ customer(id: " + "[" * n + '"x"' + "]" * n + ") { id } }",
    "object values": lambda n: "{ customer(id: " + "{a: " * n + "1" + "}" * n + ") { id } }",
    "fragment spreads": lambda n: (
        "{ ...F0 } "
        + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(n))
        + f" fragment F{n} on Query {{ nope }}"
    ),
    "directives": lambda n: "{ systems { name" + " @skip(if: false)" * (n + 1) + " } }",
}
# Operations that take variables, for variables of any JSON shape.
WITH_VARIABLES = (
    "query($id: ID!) { customer(id: $id) { id name } }",
    "query($s: SystemName!, $x: String!) { customerByExternalId(system: $s, externalId: $x)"
    " { id } }",
    "query($first: Int!, $after: String, $filter: CustomerFilter) { customers(first: $first,"
    " after: $after, filter: $filter) { totalCount edges { cursor node { id } } } }",
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { id name } } }",
    "query($id: ID!, $feature: String!) { entitlementCheck(customerId: $id, feature: $feature)"
    " { allowed reason } }",
    "query($id: ID!, $first: Int!, $status: [CaseStatus!]) { customer(id: $id)"
    " { cases(first: $first, status: $status) { totalCount } } }",
)


def vocabulary(boxes: Sandboxes) -> list[str]:
    """The seeded world's customer ids, external ids, names and plan features."""
    customers = boxes.world.customers
    known = {c.id for c in customers} | {c.name.split()[0] for c in customers}
    known |= {x for c in customers for x in c.external_ids.values()}
    known |= {feature for _, features, *_ in PLANS.values() for feature in features}
    return sorted(known)


def _strings(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(known), TEXT)


def _representations(known: list[str]) -> st.SearchStrategy[dict[str, str]]:
    """Mostly a customer's, by a seeded id or any; one in four does not fit (another
    typename, none, a key ``Customer`` does not take)."""
    customer = st.fixed_dictionaries({"__typename": st.just("Customer"), "id": _strings(known)})
    misfit = st.fixed_dictionaries(
        {"__typename": st.sampled_from(["Invoice", "", "Customer"])},
        optional={"id": _strings(known), "name": TEXT},
    )
    return st.integers(0, 3).flatmap(lambda n: misfit if n == 0 else customer)


def _object(fields: dict[str, str]) -> graphql.ValueNode:
    return nodes.Object(
        [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=nodes.String(v))
            for k, v in fields.items()
        ]
    )


def scalars(known: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    strings = _strings(known)
    return {
        "ID": strings.map(nodes.String),
        "String": strings.map(nodes.String),
        # Page sizes around the accepted 1..200; the 32-bit edges are the negative mode's.
        "Int": st.integers(-1, 220).map(nodes.Int),
        "_Any": _representations(known).map(_object),
        # Only in answers today; drawn all the same, should an argument take one.
        "Date": st.dates().map(nodes.String),
        "DateTime": st.datetimes().map(lambda d: nodes.String(d.isoformat())),
    }


def _json(known: list[str]) -> st.SearchStrategy[object]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), TEXT, st.sampled_from(known),
        st.sampled_from(["ERP", "CRM", "OPEN", "Customer"]), _representations(known),
    )  # fmt: skip
    keys = st.one_of(st.sampled_from(["__typename", "id", "nameContains"]), TEXT)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


@st.composite
def _unknown_name(draw: st.DrawFn, documents: st.SearchStrategy[str]) -> str:
    """A valid document with one name (field, argument, type, enum value, keyword) made
    unknown."""
    document = draw(documents)
    lexer = graphql.language.Lexer(graphql.Source(document))
    names = []
    while (token := lexer.advance()).kind != graphql.language.TokenKind.EOF:
        if token.kind == graphql.language.TokenKind.NAME:
            names.append(token)
    token = draw(st.sampled_from(names))
    return f"{document[: token.start]}fuzz_{token.value}{document[token.end :]}"


@st.composite
def _junk(draw: st.DrawFn, documents: st.SearchStrategy[str]) -> str:
    """A valid document with a few tokens inserted and a few characters cut."""
    document = draw(documents)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(document)))
        if draw(st.booleans()):
            document = document[:at] + draw(st.sampled_from(JUNK) | TEXT) + document[at:]
        else:
            document = document[:at] + document[at + draw(st.integers(1, 12)) :]
    return document


def _cases(
    kind: str,
    bodies: st.SearchStrategy[object],
    *,
    must_fail: bool,
    principals: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Case]:
    if principals is None:
        principals = st.sampled_from(sorted(PRINCIPALS))
    return st.builds(Case, st.just(kind), bodies, principals, st.just(must_fail))


def _query(document: str) -> dict[str, object]:
    return {"query": document}


def valid(known: list[str]) -> st.SearchStrategy[Case]:
    documents = strategies.queries(SCHEMA, custom_scalars=scalars(known))
    writes = strategies.mutations(SCHEMA, custom_scalars=scalars(known))
    return st.one_of(
        _cases("valid", documents.map(_query), must_fail=False),
        # A viewer may write nothing: each mutation is refused whole.
        _cases("valid mutation", writes.map(_query), must_fail=True, principals=st.just("viewer")),
    )


def invalid(known: list[str]) -> st.SearchStrategy[Case]:
    documents = strategies.queries(SCHEMA, custom_scalars=scalars(known))
    violations = strategies.queries(SCHEMA, custom_scalars=scalars(known), mode=Mode.NEGATIVE)
    deep = st.builds(
        lambda shape, depth: DEEP[shape](depth), st.sampled_from(sorted(DEEP)),
        st.integers(1, 3000),
    )  # fmt: skip
    variables = st.sampled_from(WITH_VARIABLES).flatmap(
        lambda document: st.fixed_dictionaries(
            {"query": st.just(document),
             "variables": st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                          _json(known), max_size=4)}
        )
    )  # fmt: skip
    bodies = st.one_of(
        _json(known),
        st.fixed_dictionaries(
            {},
            optional={"query": _json(known) | documents, "variables": _json(known),
                      "operationName": _json(known), "extensions": _json(known)},
        ),
    )  # fmt: skip
    return st.one_of(
        _cases("schema violation", violations.map(_query), must_fail=True),
        _cases("unknown name", _unknown_name(documents).map(_query), must_fail=True),
        _cases("junk tokens", _junk(documents).map(_query), must_fail=False),
        _cases("deep nesting", deep.map(_query), must_fail=True),
        _cases("variables", variables, must_fail=False),
        _cases("request body", bodies, must_fail=False),
    )


# --- the runs -----------------------------------------------------------------------------


def fuzz(url: str, operations: st.SearchStrategy[Case], tally: Tally) -> None:
    """Sends every operation drawn from ``operations`` to the gateway at ``url``."""
    with httpx.Client(base_url=url, timeout=30) as client:

        @FUZZ
        @seed(SEED)
        @given(operations)
        def send(case: Case) -> None:
            headers = {**PRINCIPALS[case.principal], "content-type": "application/json"}
            body = json.dumps(case.body).encode()
            tally.record(case, client.post("/graphql", content=body, headers=headers))

        send()


# Per-principal rate and cost budgets would answer most of a run with 429 (they have tests
# of their own); every other limit stays as it is.
UNLIMITED = {"rate_limit": "1000000/minute", "cost_budget": "1000000000/minute"}


def run(url: str, name: str, operations: st.SearchStrategy[Case]) -> Tally:
    """Fuzzes the gateway at ``url``; fails on any answer that breaks the rules, or anything
    logged at ERROR, and prints what was sent and how it was answered."""
    tally = Tally(name)
    with error_log() as log:
        fuzz(url, operations, tally)
    print(f"\n{tally}")
    assert not tally.violations and not log.lines, f"{tally.verdict()}\n" + "\n".join(log.lines)
    return tally


def test_valid_operations_are_answered_within_the_rules(boxes: Sandboxes, served: Served) -> None:
    tally = run(served(limits=UNLIMITED), "valid operations", valid(vocabulary(boxes)))
    # hypothesis-graphql and the gateway agree on what is valid (limits have codes of their own)
    assert tally.codes["GRAPHQL_PARSE_FAILED"] == tally.codes["GRAPHQL_VALIDATION_FAILED"] == 0
    assert tally.executed > 0, tally


def test_invalid_operations_are_refused_within_the_rules(boxes: Sandboxes, served: Served) -> None:
    run(served(limits=UNLIMITED), "invalid operations", invalid(vocabulary(boxes)))
