"""A Zendesk Support stand-in speaking the Support API's wire shapes (``/api/v2``).

Serves organizations, users and tickets (by id, ``show_many`` with at most 100 ids, and lists
paged by cursor, ``page[size]``/``page[after]``/``page[before]`` at most 100 a page, or by
offset, ``page``/``per_page``), the ``users`` and ``organizations`` sideloads, ticket comments
(the description first) and audits, ticket creation with ``Idempotency-Key`` (a replay answers
the stored response with ``x-idempotency-lookup: hit``; the same key with another payload is a
400 ``IdempotentRequestError``), ticket updates (status, priority, type, subject, tags and
``additional_tags``/``remove_tags``, people, organization, a comment, audit metadata; none to a
closed ticket, 422 ``RecordInvalid``; an ``Idempotency-Key`` is ignored, as Zendesk honours it
on creation alone), Zendesk's search language over tickets, users and organizations
(``search``: offset pages, 1,000 results at most), the cursor-based incremental ticket export,
the incremental ticket metric event export, SLA policies and the ticket count.
Basic auth ``{email}/token:{api_token}``; any email with the right token is accepted and is the
token's user (``documents.AGENT_ID``, an admin). Each organization has one end-user, its
support contact.

A query parameter or ticket property the stand-in would not apply is refused in Zendesk's
words, never ignored; so is a search it cannot run (422 ``invalid``), rather than answered
with no hits.

Not like Zendesk: search ranks by type and id and indexes new records at once; dates in
search are UTC days; seeded tickets have their description as a comment but no audits; ticket
metric events are only ``activate`` (on creation) and the seeded ``breach`` events, whose ids
are kept as seeded; breached tickets carry the ``sla_breached`` tag that a Zendesk automation
would add; there are no groups, attachments or custom fields. Ticket events are delivered to
``config.webhook_url`` as Zendesk event webhooks, signed with HMAC-SHA256 over
``timestamp + body``. Errors are Zendesk's JSON, a path or method no route takes included (404
``InvalidEndpoint``). Plus the ``/_sandbox`` admin routes (``connectors.sandbox.admin``).

The modules, as in every sandbox: ``api`` (routes and handlers), ``documents``
(organizations, users, tickets, comments, audits, metric events, SLA policies, webhook
events), ``query`` (the parameters each endpoint takes, pagination, sideloads), ``errors``
(Zendesk's error bodies); and ``search`` (the search language) and ``writes`` (ticket creates
and updates over the store).
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
