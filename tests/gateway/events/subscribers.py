"""Subscription clients for the tests: the reference JS clients in ``tests/js``, and the
mutation that starts a credit's status changes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from gateway.auth.scopes import Role
from tests.identity import identity

JS = Path(__file__).resolve().parents[2] / "js"

REQUEST = """mutation($input: RequestCreditInput!, $key: String!) {
  requestCredit(input: $input, idempotencyKey: $key) {
    credit { id status } workflowRun { id status } userErrors { code }
  }
}"""


class Subscriber:
    """``tests/js/subscribe.mjs``: one subscription through graphql-ws (``sse``: through
    graphql-sse), its lines read."""

    def __init__(
        self,
        url: str,
        token: str,
        query: str,
        variables: dict[str, Any],
        count: int,
        *,
        sse: bool = False,
    ):
        endpoint = f"{url}/graphql" if sse else url.replace("http://", "ws://") + "/graphql"
        self.process = subprocess.Popen(
            ["node", "subscribe.mjs", endpoint, token, query, json.dumps(variables), str(count)],
            cwd=JS,
            stdout=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        self.process.kill()
        output, _ = self.process.communicate()
        self._lines = [json.loads(line) for line in output.splitlines() if line.strip()]

    def seen(self) -> list[dict[str, Any]]:
        """What a stopped subscriber had printed."""
        return self._lines

    def lines(self, timeout_s: float = 20) -> list[dict[str, Any]]:
        try:
            output, _ = self.process.communicate(timeout=timeout_s)
        finally:
            self.process.kill()
        return [json.loads(line) for line in output.splitlines() if line.strip()]


def request_credit(url: str, customer: str, case_id: str, amount: str, key: str) -> Any:
    """``requestCredit`` by a support lead for ``amount`` EUR: the answer's body."""
    variables = {
        "input": {"customerId": customer, "caseId": case_id,
                  "amount": {"amount": amount, "currency": "EUR"}, "reason": "SLA breached"},
        "key": key,
    }  # fmt: skip
    lead = identity().headers(Role.SUPPORT_LEAD, subject="lead-sub")
    body = {"query": REQUEST, "variables": variables}
    return httpx.post(f"{url}/graphql", json=body, headers=lead, timeout=30).json()
