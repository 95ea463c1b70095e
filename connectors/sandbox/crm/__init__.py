"""A Salesforce org stand-in: REST API v61.0 over Accounts and the Users who own them.

    GET   /services/data/v61.0/limits                          DailyApiRequests left
    GET   /services/data/v61.0/query?q=<SOQL>                  first batch + nextRecordsUrl
    GET   /services/data/v61.0/query/<locator>-<offset>        the next batch
    GET   /services/data/v61.0/sobjects/Account/updated/?start=&end=   ids changed in between
    GET   /services/data/v61.0/sobjects/{Account|User}/<Id>    one record, every field
    PATCH /services/data/v61.0/sobjects/Account/<Id>           update: 204
    PATCH /services/data/v61.0/sobjects/Account/Opsgraph_Id__c/<value>
                                                               upsert: 201 / 200 / 300
    POST  /services/data/v61.0/composite/batch                 up to 25 GET subrequests

Errors are Salesforce's JSON array ``[{"message", "errorCode"}]``, a path or method no route
takes included; the SOQL subset is in ``query``. Each request spends one of the org's daily
API requests; when none are left the answer is 403 REQUEST_LIMIT_EXCEEDED. Plus the
``/_sandbox`` admin routes (``connectors.sandbox.admin``).

No webhooks (``config.webhook_url`` is ignored): Outbound Messages are unsigned SOAP and
Change Data Capture needs a streaming client, so the gateway polls ``updated`` instead.

The modules, as in every sandbox: ``api`` (routes and handlers), ``documents`` (Account and
User documents, their schema and dates), ``query`` (SOQL and its cursors), ``errors``
(Salesforce's error bodies).
"""

from __future__ import annotations

from connectors.sandbox import routing
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.crm import errors
from connectors.sandbox.crm.api import DAILY_API_LIMIT, SalesforceApi
from connectors.sandbox.faults import SandboxMiddleware

__all__ = ["SalesforceApi", "create_app"]


def create_app(
    config: SandboxConfig, *, daily_api_limit: int = DAILY_API_LIMIT
) -> SandboxMiddleware:
    return routing.app(SalesforceApi(config, daily_api_limit), errors.fault)
