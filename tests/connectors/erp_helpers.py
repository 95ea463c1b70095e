"""What the ERP test modules share: the seeded world, a connector on a sandbox, and a SuiteQL
request as NetSuite wants it sent."""

from __future__ import annotations

from datetime import date

import httpx

from connectors import erp
from connectors.models import ConnectorConfig, SystemName
from connectors.sandbox.seed import generate

RECORDS = generate(customers=8, seed=3, as_of=date(2026, 11, 1)).slice(SystemName.ERP)
SUITEQL = "/services/rest/query/v1/suiteql"
AUTH = {"Authorization": "Bearer sandbox-secret"}
QUERY_HEADERS = {**AUTH, "Prefer": "transient"}


def _connect(url: str, secret: str = "sandbox-secret") -> erp.ErpConnector:
    return erp.connect(ConnectorConfig(base_url=url, secret=secret))


def _suiteql(admin: httpx.Client, q: str, **params: int) -> httpx.Response:
    return admin.post(SUITEQL, params=params, headers=QUERY_HEADERS, json={"q": q})
