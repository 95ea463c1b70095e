"""A request no route takes, an unknown path or a known path with another method, is
answered in the vendor's own JSON, never with Starlette's text 404 or 405."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.models import SystemName
from connectors.sandbox import fleet
from connectors.sandbox.config import SandboxConfig

BEARER = {"Authorization": "Bearer sandbox-secret"}
ZENDESK = {
    "Authorization": "Basic " + base64.b64encode(b"me@x.example/token:sandbox-secret").decode()
}
STRIPE_404 = (
    "Unrecognized request URL ({}: {}). Please see https://stripe.com/docs or we can help at "
    "https://support.stripe.com/."
)


def netsuite(status: int, title: str, section: str, detail: str, code: str) -> dict[str, Any]:
    return {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#section-{section}",
        "title": title,
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
    }


CASES = [
    (SystemName.BILLING, BEARER, "GET", "/v2/nothing", 404,
     {"error": {"message": STRIPE_404.format("GET", "/v2/nothing"),
                "type": "invalid_request_error"}}),
    (SystemName.BILLING, BEARER, "DELETE", "/v1/customers", 404,
     {"error": {"message": STRIPE_404.format("DELETE", "/v1/customers"),
                "type": "invalid_request_error"}}),
    (SystemName.ERP, BEARER, "GET", "/services/rest/nothing", 404,
     netsuite(404, "Not Found", "15.5.5", "Unknown path /services/rest/nothing.",
              "NONEXISTENT_ID")),
    (SystemName.ERP, BEARER, "DELETE", "/services/rest/query/v1/suiteql", 405,
     netsuite(405, "Method Not Allowed", "15.5.6", "DELETE is not allowed here.",
              "INVALID_PARAMETER")),
    (SystemName.CRM, BEARER, "GET", "/services/data/v61.0/nothing", 404,
     [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]),
    (SystemName.CRM, BEARER, "DELETE", "/services/data/v61.0/composite/batch", 405,
     [{"message": "HTTP Method 'DELETE' not allowed", "errorCode": "METHOD_NOT_ALLOWED"}]),
    (SystemName.SUPPORT, ZENDESK, "GET", "/api/v2/nothing", 404,
     {"error": "InvalidEndpoint", "description": "Not found"}),
    (SystemName.SUPPORT, ZENDESK, "DELETE", "/api/v2/tickets", 405,
     {"error": "InvalidEndpoint", "description": "Not found"}),
]  # fmt: skip


@pytest.mark.parametrize(("system", "auth", "method", "path", "status", "body"), CASES)
def test_an_unrouted_request_gets_the_vendors_json(
    system: SystemName, auth: dict[str, str], method: str, path: str, status: int, body: Any
) -> None:
    with TestClient(fleet.APPS[system](SandboxConfig())) as client:
        answer = client.request(method, path, headers=auth)
    assert (answer.status_code, answer.json()) == (status, body)
    assert answer.headers["content-type"].startswith("application/")


def test_stripe_checks_the_key_before_it_answers_an_unrouted_request() -> None:
    with TestClient(fleet.APPS[SystemName.BILLING](SandboxConfig())) as client:
        answer = client.delete("/v1/customers", headers={"Authorization": "Bearer sk_test_wrong"})
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "Invalid API Key provided: sk_test_*****"
    assert answer.headers["www-authenticate"] == 'Basic realm="Stripe"'
