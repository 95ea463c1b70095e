"""Field plans: an operation whose field collection cannot vary keeps it from one request to
the next; one whose collection depends on its variables is collected per request."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    ExecutionResult,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    execute,
    parse,
)
from graphql.execution.collect_fields import FragmentDetails

from gateway.field_plans import fixed, plan_of
from gateway.schema import CodedExecutor, build_schema

TYPE_NAMES = """query Names($skip: Boolean!) {
  __schema { queryType { name @skip(if: $skip) kind } }
}"""
FIXED = (
    "{ __schema { queryType { name kind ...Fields } } } fragment Fields on __Type { description }"
)


def _parts(document: str) -> tuple[OperationDefinitionNode, dict[str, Any]]:
    parsed = parse(document, experimental_fragment_arguments=True)
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: FragmentDetails(d)
        for d in parsed.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    return operations[0], fragments


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (FIXED, True),
        ("{ a: __typename @include(if: true) b: __typename @skip(if: false) }", True),
        (TYPE_NAMES, False),
        ("query ($x: Boolean!) { ...F } fragment F on Query { __typename @include(if: $x) }",
         False),
        ("query ($x: Boolean!) { __typename @include(if: [$x]) }", False),
        ("{ ... @defer { __typename } }", False),
        ("{ ...F(a: 1) } fragment F($a: Int) on Query { __typename }", False),
    ],
)  # fmt: skip
def test_an_operation_is_planned_only_when_its_collection_cannot_vary(
    document: str, expected: bool
) -> None:
    assert fixed(*_parts(document)) is expected


async def test_a_planned_operation_answers_as_before_and_collects_once() -> None:
    schema = build_schema()._schema
    document = parse(FIXED)
    (operation,) = (d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    answered = execute(schema, document, executor_class=CodedExecutor)
    plan = plan_of(schema, operation, {})
    assert plan is not None
    # __schema's fields and queryType's (with the fragment's): two sets.
    first = dict(plan)
    assert len(first) == 2
    again = execute(schema, document, executor_class=CodedExecutor)
    # The second request found both in the plan: nothing was collected again.
    assert plan.keys() == first.keys() and all(plan[k] is v for k, v in first.items())
    for result in (answered, again):
        assert isinstance(result, ExecutionResult) and result.errors is None
        assert result.data == {
            "__schema": {"queryType": {"name": "Query", "kind": "OBJECT", "description": None}}
        }


async def test_a_skip_on_a_variable_is_applied_on_every_request() -> None:
    schema = build_schema()
    shown = await schema.execute(TYPE_NAMES, variable_values={"skip": False})
    skipped = await schema.execute(TYPE_NAMES, variable_values={"skip": True})
    shown_again = await schema.execute(TYPE_NAMES, variable_values={"skip": False})
    assert (
        shown.data
        == shown_again.data
        == {"__schema": {"queryType": {"name": "Query", "kind": "OBJECT"}}}
    )
    assert skipped.data == {"__schema": {"queryType": {"kind": "OBJECT"}}}
