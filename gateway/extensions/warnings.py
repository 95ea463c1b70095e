"""Non-fatal notes on an answer, in the response's ``extensions.warnings``.

Today: ``STALE_DATA``, one per stale object served because its system failed or did not
answer before the request's deadline, with the system, the reason code and when the data
was fetched, so that a dashboard can say "billing is degraded, data from 14:02". They are
not ``errors[]`` entries on purpose: a client that treats any error as a failure (Apollo
Client's default error policy) would throw the whole answer away.

Beside them, ``extensions.idempotency``: one entry per mutation answered from its
idempotency key's stored answer (``{"path", "key", "replayed": true}``), nothing done
again.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from gateway import request_scope


class Warnings(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        request = request_scope.current()
        if request is None:
            return {}
        results: dict[str, Any] = {}
        if request.warnings:
            results["warnings"] = list(request.warnings.values())
        if request.replays:
            results["idempotency"] = request.replays
        return results
