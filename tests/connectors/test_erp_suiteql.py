"""The connector's SuiteQL against the ERP sandbox: a statement NetSuite refuses is an upstream
rejection in NetSuite's words. (The sandbox's SuiteQL on its own, the subset it parses and
what it answers, is tested in ``tests/connectors/sandbox/test_erp_sandbox.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.errors import UpstreamRejected
from connectors.sandbox import erp as sandbox
from tests.connectors.conftest import running_sandbox
from tests.connectors.erp_helpers import RECORDS, _connect


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(sandbox.create_app, RECORDS) as running:
        yield running


async def test_a_rejected_statement_is_an_upstream_rejection(sandbox_url: Any) -> None:
    connector = _connect(sandbox_url[0])
    try:
        with pytest.raises(UpstreamRejected) as err:
            await connector._suiteql("SELECT id FROM employee", 1, 0)
    finally:
        await connector.aclose()
    assert err.value.message == (
        "erp rejected the request: Bad Request: Invalid search query. Detailed unprocessed "
        "description follows. Search error occurred: Record 'employee' was not found. "
        "(INVALID_PARAMETER)"
    )
