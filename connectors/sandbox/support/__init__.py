"""A Zendesk Support stand-in speaking the Support API's wire shapes (``/api/v2``).

Serves organizations and tickets (cursor pagination ``page[size]``/``page[after]``, at most
100 a page; ``show_many`` with at most 100 ids), ticket creation with ``Idempotency-Key``
(a replay answers the stored response with ``x-idempotency-lookup: hit``; the same key with
another payload is a 400 ``IdempotentRequestError``), ticket updates with comments and
audits, search (``type:ticket``, ``organization:``, ``status:``; repeated terms on one field
match any of them; offset pages, 1,000 results at most), the cursor-based incremental ticket
export, the incremental ticket metric event export, SLA policies and the ticket count.
Basic auth ``{email}/token:{api_token}``; any email with the right token is accepted.

Not like Zendesk: search sorts by id and indexes new tickets at once; ticket metric events
are only ``activate`` (on creation) and the seeded ``breach`` events, whose ids are kept as
seeded; breached tickets carry the ``sla_breached`` tag that a Zendesk automation would add.
Ticket events are delivered to ``config.webhook_url`` as Zendesk event webhooks, signed with
HMAC-SHA256 over ``timestamp + body``. Errors are Zendesk's JSON, a path or method no route
takes included (404 ``InvalidEndpoint``). Plus the ``/_sandbox`` admin routes
(``connectors.sandbox.admin``).

The modules, as in every sandbox: ``api`` (routes and handlers), ``documents``
(organizations, tickets, audits, metric events, SLA policies, webhook events), ``query``
(pagination and search), ``errors`` (Zendesk's error bodies).
"""

from __future__ import annotations

from connectors.sandbox import routing
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.faults import SandboxMiddleware
from connectors.sandbox.support import errors
from connectors.sandbox.support.api import ZendeskApi

__all__ = ["ZendeskApi", "create_app"]


def create_app(config: SandboxConfig) -> SandboxMiddleware:
    return routing.app(ZendeskApi(config), errors.fault)
