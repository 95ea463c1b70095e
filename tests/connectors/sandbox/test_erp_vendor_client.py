"""The ERP sandbox driven by a NetSuite client we did not write: the ``netsuite`` package's
``NetSuiteRestApi`` and ``NetSuiteRestlet``, signing with token-based authentication (authlib's
OAuth 1.0a), over real HTTP. The calls are a real integration's: SuiteQL paged by limit and
offset, an invoice and a customer read, a credit memo posted (the connector's write) and
retried with its idempotency key, patched and deleted, a posting voided through the void
RESTlet, and a bad signature refused."""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from connectors.sandbox import erp as sandbox_app
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.erp.api import LOGIN_FAILED
from tests.connectors.conftest import running_sandbox
from tests.connectors.erp_helpers import RECORDS

with warnings.catch_warnings():
    # authlib, which the client signs with, warns on import that it falls back to httpx for
    # lack of httpx2 (opsgraph runs on httpx). Importing its warnings module puts an "always"
    # filter for its own warnings first, so it is imported before this filter goes in.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from netsuite import Config, NetSuiteRestApi, NetSuiteRestlet, TokenAuth
    from netsuite.exceptions import NetsuiteAPIRequestError

pytestmark = [
    # netsuite 0.12 hands httpx its JSON body as ``data=<str>`` (it pins httpx<0.28); httpx
    # 0.28 deprecates that for ``content=`` and still sends the same bytes.
    pytest.mark.filterwarnings(
        "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
    ),
    # netsuite registers its HMAC-SHA256 signer with authlib through oauthlib's
    # ``sign_hmac_sha256``, which oauthlib 3.3 deprecates; the signature is the same.
    pytest.mark.filterwarnings(
        "ignore:use sign_hmac_sha256_with_client instead of sign_hmac_sha256:DeprecationWarning"
    ),
]

CONFIG = SandboxConfig()  # the TBA credentials a sandbox accepts unless told otherwise
MEMO = {
    "entity": {"id": "1003"},
    "subsidiary": {"id": "3"},
    "currency": {"id": "20"},
    "tranDate": "2026-11-02",
    "externalId": "cr_0042",
    "memo": "SLA credit for case 9023",
    "item": {"items": [{"amount": 1600, "tax1Amt": 160, "description": "SLA credit"}]},
}


class SandboxRestApi(NetSuiteRestApi):  # type: ignore[misc]  # netsuite has no type hints
    """The vendor's client unchanged but for where it sends requests: the sandbox's base URL
    where it would build ``https://<account>.suitetalk.api.netsuite.com``. It signs the URL
    it sends to, so the signature covers what the sandbox receives."""

    def __init__(self, config: Config, base_url: str) -> None:
        super().__init__(config)
        self._base_url = base_url

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}/services/rest{subpath}"


class SandboxRestlet(NetSuiteRestlet):  # type: ignore[misc]  # netsuite has no type hints
    """The vendor's RESTlet client, sending to the sandbox where it would build
    ``https://<account>.restlets.api.netsuite.com``."""

    def __init__(self, config: Config, base_url: str) -> None:
        super().__init__(config)
        self._base_url = base_url

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}/app/site/hosting/restlet.nl{subpath}"


def _config(**changes: str) -> Config:
    credentials = {
        "consumer_key": CONFIG.tba_consumer_key,
        "consumer_secret": CONFIG.tba_consumer_secret,
        "token_id": CONFIG.tba_token_id,
        "token_secret": CONFIG.tba_token_secret,
    }
    return Config(account=CONFIG.tba_account, auth=TokenAuth(**{**credentials, **changes}))


def client(url: str, **changes: str) -> SandboxRestApi:
    return SandboxRestApi(_config(**changes), url)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(sandbox_app.create_app, RECORDS, CONFIG) as running:
        yield running


@pytest.fixture
async def fresh() -> AsyncIterator[tuple[str, SandboxRestApi]]:
    """A sandbox of its own, for tests that write, and the client on it."""
    with running_sandbox(sandbox_app.create_app, RECORDS, CONFIG) as (url, _):
        yield url, client(url)


def ref(url: str, kind: str, id_: str, name: str) -> dict[str, Any]:
    href = f"{url}/services/rest/record/v1/{kind}/{id_}"
    return {"links": [{"rel": "self", "href": href}], "id": id_, "refName": name}


async def test_suiteql_pages_by_limit_and_offset(sandbox: Any) -> None:
    url, _ = sandbox
    api = client(url)
    q = "SELECT id, companyname FROM customer WHERE id > 1002 ORDER BY id"
    pages = [await api.suiteql(q, limit=2, offset=offset) for offset in (0, 2, 4)]
    at = f"{url}/services/rest/query/v1/suiteql?limit=2&offset="
    links = {"first": at + "0", "next": at + "2", "last": at + "4", "self": at + "0"}
    assert {link["rel"]: link["href"] for link in pages[0]["links"]} == links
    assert pages[0] == {
        "links": pages[0]["links"],
        "count": 2,
        "hasMore": True,
        "items": [
            {"links": [], "id": "1003", "companyname": "Initech Labs"},
            {"links": [], "id": "1004", "companyname": "Umbrella Media"},
        ],
        "offset": 0,
        "totalResults": 6,
    }
    assert [(p["offset"], p["hasMore"], [r["id"] for r in p["items"]]) for p in pages[1:]] == [
        (2, True, ["1005", "1006"]),
        (4, False, ["1007", "1008"]),
    ]


async def test_an_invoice_and_a_customer_read_as_the_client_sees_them(sandbox: Any) -> None:
    url, _ = sandbox
    api = client(url)
    invoice = await api.get("/record/v1/invoice/5030")
    customer = await api.get("/record/v1/customer/1002")
    assert invoice == {
        "links": [{"rel": "self", "href": f"{url}/services/rest/record/v1/invoice/5030"}],
        "id": "5030",
        "externalId": "in_Hnc0G7P8ChKs9Q",
        "entity": ref(url, "customer", "1008", "Wayne Health"),
        "tranDate": "2026-10-01",
        "subsidiary": ref(url, "subsidiary", "4", "Opsgraph Gulf W.L.L."),
        "currency": ref(url, "currency", "22", "KWD"),
        "subtotal": 16.0,  # the client reads JSON numbers as floats
        "taxTotal": 0.0,
        "total": 16.0,
        "status": {"id": "paidInFull", "refName": "Paid In Full"},
        "memo": "OPS-0008-002",
        "lastModifiedDate": invoice["lastModifiedDate"],
    }
    assert customer == {
        "links": [{"rel": "self", "href": f"{url}/services/rest/record/v1/customer/1002"}],
        "id": "1002",
        "entityId": "Globex Retail",
        "companyName": "Globex Retail",
        "externalId": "cust_0002",
        "email": "billing@globex2.example",
        "currency": ref(url, "currency", "4", "EUR"),
        "subsidiary": ref(url, "subsidiary", "2", "Opsgraph B.V."),
        "lastModifiedDate": customer["lastModifiedDate"],
        "balance": 490.75,
    }


async def test_a_credit_memo_retried_with_its_key_is_posted_once(fresh: Any) -> None:
    url, api = fresh
    key = {"X-NetSuite-Idempotency-Key": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}
    # ``request`` rather than ``post``: ``post`` answers None for a 204, dropping Location.
    first = await api.request("POST", "/record/v1/creditMemo", json=MEMO, headers=key)
    again = await api.request("POST", "/record/v1/creditMemo", json=MEMO, headers=key)
    location = f"{url}/services/rest/record/v1/creditMemo/9001"
    assert [(r.status_code, r.headers["location"]) for r in (first, again)] == [
        (204, location),
        (204, location),
    ]
    memos = await api.suiteql("SELECT id, foreigntotal FROM transaction WHERE recordtype = "
                              "'creditmemo'")  # fmt: skip
    assert memos["items"] == [{"links": [], "id": "9001", "foreigntotal": "1760"}]
    written = await api.get("/record/v1/creditMemo/9001", params={"expandSubResources": "true"})
    assert written == {
        "links": [{"rel": "self", "href": location}],
        "id": "9001",
        "externalId": "cr_0042",
        "entity": ref(url, "customer", "1003", "Initech Labs"),
        "tranDate": "2026-11-02",
        "subsidiary": ref(url, "subsidiary", "3", "Opsgraph K.K."),
        "currency": ref(url, "currency", "20", "JPY"),
        "subtotal": 1600,
        "taxTotal": 160,
        "total": 1760,
        "status": {"id": "open", "refName": "Open"},
        "memo": "SLA credit for case 9023",
        "lastModifiedDate": written["lastModifiedDate"],
        "item": {
            "links": [],
            "count": 1,
            "hasMore": False,
            "items": [
                {
                    "links": [],
                    "line": 1,
                    "amount": 1600,
                    "tax1Amt": 160,
                    "description": "SLA credit",
                },
            ],  # fmt: skip
            "offset": 0,
            "totalResults": 1,
        },
    }


async def test_a_credit_memo_is_patched_then_deleted(fresh: Any) -> None:
    url, api = fresh
    posted = await api.request("POST", "/record/v1/creditMemo", json=MEMO)
    path = posted.headers["location"].removeprefix(f"{url}/services/rest")
    assert await api.patch(path, json={"memo": "SLA credit, case 9023 (revised)"}) is None
    patched = await api.get(path, params={"fields": "memo,total"})
    assert await api.delete(path) is None
    with pytest.raises(NetsuiteAPIRequestError) as gone:
        await api.get(path)
    assert patched == {
        "links": [{"rel": "self", "href": posted.headers["location"]}],
        "memo": "SLA credit, case 9023 (revised)",
        "total": 1760,
    }
    assert gone.value.status_code == 404
    balance = await api.suiteql("SELECT balance FROM customer WHERE id = '1003'")
    assert balance["items"] == [{"links": [], "balance": "61600"}]  # as before the memo


async def test_a_posting_voided_through_the_restlet_client_is_voided_once(fresh: Any) -> None:
    url, api = fresh
    restlet = SandboxRestlet(_config(), url)
    void = {"type": "invoice", "id": "5131", "reason": "Duplicate of 5009"}
    key = {"X-NetSuite-Idempotency-Key": "0b6d7c4e-13f5-4f0e-9c55-6f1f3c2d9e10"}
    script = "customscript_opsgraph_void"
    first = await restlet.post(script, deploy=1, json=void, headers=key)
    again = await restlet.post(script, deploy=1, json=void, headers=key)
    with pytest.raises(NetsuiteAPIRequestError) as refused:
        await restlet.post(script, deploy=1, json=void)  # no key: a second void
    assert first == again == {"id": "5131", "voided": True}
    assert refused.value.status_code == 400
    assert json.loads(refused.value.response_text)["o:errorDetails"] == [
        {"detail": "Transaction 5131 is voided already.", "o:errorCode": "USER_ERROR"}
    ]
    rows = await api.suiteql("SELECT id, status, foreigntotal FROM transaction "
                             "WHERE externalid = 'in_YhcH9muZ11Kl3r' ORDER BY id")  # fmt: skip
    assert rows["items"] == [
        {"links": [], "id": "5009", "status": "paidInFull", "foreigntotal": "61600"},
        {"links": [], "id": "5131", "status": "voided", "foreigntotal": "0"},
    ]


async def test_a_bad_signature_is_the_clients_401(sandbox: Any) -> None:
    url, _ = sandbox
    wrong = client(url, token_secret="not-the-token-secret")
    with pytest.raises(NetsuiteAPIRequestError) as refused:
        await wrong.suiteql("SELECT id FROM customer")
    assert refused.value.status_code == 401
    assert json.loads(refused.value.response_text) == {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
        "title": "Unauthorized",
        "status": 401,
        "o:errorDetails": [{"detail": LOGIN_FAILED, "o:errorCode": "INVALID_LOGIN"}],
    }
