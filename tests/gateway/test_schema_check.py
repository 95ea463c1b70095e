"""Schema governance: ``schema.graphql`` is the running schema, and a snapshot that is not
is reported change by change, by the module and by ``opsgraph schema check``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.auth.principal import Principal, PrincipalKind
from gateway.auth.scopes import Role
from gateway.errors import ConfigurationError
from gateway.schema import build_schema
from gateway.schema_check import compare, running_sdl
from tests.world import cli_env

SNAPSHOT = Path(__file__).parents[2] / "schema.graphql"
RUNNING = running_sdl()


def edited(sdl: str, *edits: tuple[str, str]) -> str:
    """``sdl`` with each ``(old, new)`` replaced; ``old`` must occur exactly once."""
    for old, new in edits:
        assert sdl.count(old) == 1, f"the running schema has {sdl.count(old)} of {old!r}"
        sdl = sdl.replace(old, new)
    return sdl


# A snapshot from which the running schema has drifted in every way the check tells apart.
BROKEN = edited(
    RUNNING,
    # the running schema removed a field and added one (PageInfo.retired -> endCursor)
    ("  endCursor: String\n", "  retired: String\n"),
    # ... changed an argument's type
    ("customer(id: ID!)", "customer(id: String!)"),
    # ... removed an enum value, and added one
    ("enum CaseStatus {\n", "enum CaseStatus {\n  ARCHIVED\n"),
    ("  HOLD\n", ""),
    # ... lifted a deprecation
    ("  strategic: Boolean!\n", '  strategic: Boolean! @deprecated(reason: "use segment")\n'),
)
REPORT = [
    "BREAKING  VALUE_REMOVED_FROM_ENUM: Enum value CaseStatus.ARCHIVED was removed.",
    "BREAKING  FIELD_REMOVED: Field PageInfo.retired was removed.",
    "BREAKING  ARG_CHANGED_KIND: Argument Query.customer(id:) has changed type from String!"
    " to ID!.",
    "DANGEROUS VALUE_ADDED_TO_ENUM: Enum value CaseStatus.HOLD was added.",
    "SAFE      FIELD_ADDED: Field PageInfo.endCursor was added.",
    "OTHER     APPLIED_DIRECTIVES_CHANGED: Directives on Account.strategic changed from"
    ' @deprecated(reason: "use segment") to (none).',
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "schema", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )


def test_the_committed_snapshot_is_the_running_schema() -> None:
    changes = [str(change) for change in compare(SNAPSHOT.read_text(encoding="utf-8"), RUNNING)]
    assert changes == [], "schema.graphql is stale: run `opsgraph schema write`\n" + "\n".join(
        changes
    )


@dataclass
class _Asking:
    principal: Principal


def test_the_snapshot_is_what_the_subgraph_answers_to_service_sdl() -> None:
    router = _Asking(Principal.of("router", PrincipalKind.SERVICE, [Role.INTEGRATION_ADMIN]))
    result = build_schema().execute_sync("{ _service { sdl } }", context_value=router)
    assert result.errors is None
    assert result.data == {"_service": {"sdl": RUNNING.removesuffix("\n")}}
    assert '@key(fields: "id")' in RUNNING  # applied directives, which introspection lacks


def test_a_drifted_snapshot_is_reported_change_by_change() -> None:
    assert [str(change) for change in compare(BROKEN, RUNNING)] == REPORT


def test_removing_a_deprecated_field_is_breaking() -> None:
    deprecated = edited(
        RUNNING,
        (
            "  endCursor: String\n",
            '  endCursor: String\n  last: String @deprecated(reason: "use endCursor")\n',
        ),
    )
    assert [str(change) for change in compare(deprecated, RUNNING)] == [
        "BREAKING  FIELD_REMOVED: Field PageInfo.last was removed."
    ]


def test_a_difference_in_layout_alone_is_still_a_difference() -> None:
    spaced = edited(RUNNING, ("enum CaseStatus {\n", "enum CaseStatus {\n\n"))
    assert [str(change) for change in compare(spaced, RUNNING)] == [
        "OTHER     LAYOUT_CHANGED: The SDL differs in order or layout only."
    ]


def test_a_snapshot_that_does_not_parse_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as refused:
        compare(RUNNING.replace("type Query {", "type Query"), RUNNING)
    assert refused.value.message.startswith("the snapshot does not parse: Syntax Error:")


def test_check_lists_the_changes_and_exits_1_with_a_hint(tmp_path: Path) -> None:
    snapshot = tmp_path / "schema.graphql"
    snapshot.write_text(BROKEN, encoding="utf-8")
    done = _cli("check", "--snapshot", str(snapshot))
    assert done.returncode == 1
    assert done.stdout.splitlines() == REPORT
    assert done.stderr.splitlines() == [
        f"opsgraph: the running schema is not {snapshot}: if the changes above are meant, "
        f"run `opsgraph schema write` and commit {snapshot} with them"
    ]


def test_write_records_the_changes_and_check_then_passes(tmp_path: Path) -> None:
    snapshot = tmp_path / "schema.graphql"
    snapshot.write_text(BROKEN, encoding="utf-8")
    written = _cli("write", "--snapshot", str(snapshot))
    assert (written.returncode, written.stdout.splitlines()) == (0, [*REPORT, f"wrote {snapshot}"])
    assert snapshot.read_text(encoding="utf-8") == RUNNING
    checked = _cli("check", "--snapshot", str(snapshot))
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0,
        f"{snapshot} matches the running schema\n",
        "",
    )


def test_check_without_a_snapshot_says_how_to_make_one(tmp_path: Path) -> None:
    done = _cli("check", "--snapshot", str(tmp_path / "none.graphql"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"opsgraph: {tmp_path / 'none.graphql'} does not exist: run `opsgraph schema write`"
    ]
