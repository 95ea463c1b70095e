"""The executor's field values: a value graphql-core schedules and then cancels before it ever
ran leaves no coroutine behind that Python would report as "never awaited"."""

from __future__ import annotations

import asyncio
import inspect
from enum import Enum

import pytest
from graphql import GraphQLError
from strawberry.schema.schema_converter import CustomGraphQLEnumType

from connectors.models import SystemName
from gateway.schema import _Resolving, build_schema


async def _resolver() -> str:
    await asyncio.sleep(0)
    return "resolved"


async def _completion(value: _Resolving | asyncio.Future[str] | object) -> str:
    return f"completed {await value}"  # type: ignore[misc]


def _value() -> tuple[_Resolving, object]:
    resolving = _resolver()
    return _Resolving(_completion(resolving), resolving), resolving


async def test_a_value_resolves_through_its_completion() -> None:
    value, _ = _value()
    assert await value == "completed resolved"
    value, _ = _value()
    assert await asyncio.ensure_future(value) == "completed resolved"


async def test_a_value_cancelled_before_it_ran_closes_the_resolver_it_was_handed() -> None:
    value, resolving = _value()
    task = asyncio.ensure_future(value)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inspect.getcoroutinestate(resolving) == inspect.CORO_CLOSED  # type: ignore[arg-type]


async def test_a_value_cancelled_while_it_runs_cancels_its_resolver() -> None:
    started = asyncio.Event()

    async def hanging() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    resolving = hanging()
    task = asyncio.ensure_future(_Resolving(_completion(resolving), resolving))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inspect.getcoroutinestate(resolving) == inspect.CORO_CLOSED


def test_a_value_dropped_unscheduled_closes_both_coroutines() -> None:
    resolving = _resolver()
    completing = _completion(resolving)
    _Resolving(completing, resolving).close()
    assert inspect.getcoroutinestate(completing) == inspect.CORO_CLOSED
    assert inspect.getcoroutinestate(resolving) == inspect.CORO_CLOSED


def test_every_enum_member_is_answered_by_the_name_strawberry_gives_it() -> None:
    types = build_schema()._schema.type_map.values()
    enums = [t for t in types if isinstance(t, CustomGraphQLEnumType)]
    assert {"SystemName", "ExceptionSeverity", "WorkflowRunStatus"} <= {e.name for e in enums}
    for enum in enums:
        members: list[Enum] = list(enum.wrapped_cls)
        for member in members:
            strawberrys = CustomGraphQLEnumType.coerce_output_value(enum, member)
            assert enum.serialize(member) == strawberrys, (enum.name, member)
    (system,) = (e for e in enums if e.name == "SystemName")
    assert system.serialize(SystemName.BILLING) == "BILLING"
    assert system.serialize("billing") == "BILLING"  # a member's value, as graphql-core takes it
    with pytest.raises(GraphQLError, match="cannot represent value: 'nope'"):
        system.serialize("nope")
