"""``opsgraph reconcile``: a run from the command line, its table, and its exit code as a
close checklist's gate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.world import Sandboxes, migrated_database, opsgraph, sandbox_variables, sandboxes


@pytest.fixture(scope="module")
def boxes() -> Iterator[Sandboxes]:
    with sandboxes() as running:
        yield running


def test_reconcile_prints_what_it_found_and_gates_on_severity(
    boxes: Sandboxes, tmp_path: Path
) -> None:
    env = sandbox_variables(boxes) | {
        "OPSGRAPH_DATABASE_URL": migrated_database(tmp_path / "opsgraph.db", boxes.world),
        "COLUMNS": "200",
    }
    gated = opsgraph(
        "reconcile", "--period", "2026-09", "--to", "2026-11", "--fail-on", "medium", **env
    )
    assert gated.returncode == 1, gated.stderr
    lines = gated.stdout.splitlines()
    assert "5 open exceptions (the first 50, by rank)" in lines[0]
    for kind in ("missing_in_target", "duplicate_in_target", "amount_mismatch",
                 "tax_mismatch", "period_mismatch"):  # fmt: skip
        assert sum(kind in line for line in lines) == 1, gated.stdout
    assert "18 source and" in gated.stderr and "5 new, 0 reopened, 0 auto-resolved" in gated.stderr

    again = opsgraph(
        "reconcile", "--period", "2026-09", "--to", "2026-11", "--fail-on", "never", **env
    )
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 reopened, 0 auto-resolved" in again.stderr

    bad = opsgraph("reconcile", "--period", "2026-13", **env)
    assert bad.returncode == 2
    assert "'2026-13' is not an accounting period: write YYYY-MM (2026-11)" in bad.stderr
