"""A Salesforce org stand-in: the REST API, every version from v31.0 to v61.0, over Accounts,
the Tasks logged on them and the Users who own both (under ``/services/data/vXX.X``)::

    GET    /services/data/                                  the versions served (no session)
    GET    /limits                                          DailyApiRequests left
    GET    /query?q=<SOQL>                                  first batch + nextRecordsUrl
    GET    /query/<locator>-<offset>                        the next batch
    GET    /sobjects                                        the sObjects, described briefly
    GET    /sobjects/<sObject>                              one's basic information
    GET    /sobjects/<sObject>/describe                     its fields, as Salesforce says them
    POST   /sobjects/{Account|Task}                         create: 201 {"id", ...}
    GET    /sobjects/<sObject>/<Id>[?fields=...]            one record, every field or those
    PATCH  /sobjects/{Account|Task}/<Id>                    update: 204
    DELETE /sobjects/{Account|Task}/<Id>                    delete: 204
    GET    /sobjects/<sObject>/<external id field>/<value>  read by external id: 200 / 300
    PATCH  /sobjects/<sObject>/<external id field>/<value>[?updateOnly=true]
                                                            upsert: 201 / 200 (204 before
                                                            v46.0) / 300
    DELETE /sobjects/<sObject>/<external id field>/<value>  delete by external id: 204 / 300
    GET    /sobjects/<sObject>/updated/?start=&end=         ids changed in between
    POST   /composite                                       up to 25 subrequests, referring
                                                            to each other, all or none
    POST   /composite/batch                                 up to 25 independent subrequests

The external id fields are an Account's ``Opsgraph_Id__c`` and a Task's ``Opsgraph_Ref__c``;
a Task's ``WhatId`` must name an Account of the org. Errors are Salesforce's JSON array
``[{"message", "errorCode"}]``, a path or method no route takes and an API version not
served included; the SOQL subset is in ``query``. Each request spends one of the org's
daily API requests, and says so in ``Sforce-Limit-Info``; when none are left the answer is
403 REQUEST_LIMIT_EXCEEDED. Plus the ``/_sandbox`` admin routes (``connectors.sandbox.admin``).

No webhooks (``config.webhook_url`` is ignored): Outbound Messages are unsigned SOAP and
Change Data Capture needs a streaming client, so the gateway polls ``updated`` instead.

The modules, as in every sandbox: ``api`` (routes and handlers), ``documents`` (the
records as Salesforce answers them, versions, ids and dates), ``query`` (SOQL and its
cursors), ``errors`` (Salesforce's error bodies); and three of its own: ``schema`` (the
sObjects' fields as describe phrases them, and the checks a write passes), ``resources``
(a request as a handler sees it, and the paths that find the handler, for HTTP and
composite alike) and ``composite`` (Composite and Composite Batch).
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
