"""NetSuite token-based authentication (OAuth 1.0a, HMAC-SHA256) in the ERP sandbox, over real
HTTP. Requests are signed by oauthlib, which neither the sandbox nor the connector shares code
with; each way of getting TBA wrong is NetSuite's one 401, refused for the reason the sandbox
logs (its login audit trail); and the connector with ``auth=tba`` passes the connector
contract against a sandbox whose bearer token it never sends."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from oauthlib import oauth1

from connectors import erp
from connectors.base import Connector
from connectors.commands import VoidPosting
from connectors.models import ConnectorConfig, ObjectKind, Posting, PostingState
from connectors.sandbox import erp as sandbox_app
from connectors.sandbox.auth import OAuth1Failure
from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.erp.api import LOGIN_FAILED, RECORD, SUITEQL
from tests.connectors import test_erp
from tests.connectors.conftest import running_sandbox
from tests.connectors.contract import SECRET, ConnectorContract, case_fixture
from tests.connectors.erp_helpers import RECORDS

CONFIG = SandboxConfig(
    secret="a-bearer-token-nobody-here-sends",
    tba_account="7654321_SB2",
    tba_consumer_key="ck-opsgraph-integration",
    tba_consumer_secret="cs-opsgraph-integration",
    tba_token_id="tk-opsgraph-finance",
    tba_token_secret=SECRET,  # the contract's: its connectors sign with it
)
REFUSED = {
    "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
    "title": "Unauthorized",
    "status": 401,
    "o:errorDetails": [{"detail": LOGIN_FAILED, "o:errorCode": "INVALID_LOGIN"}],
}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, httpx.Client]]:
    with running_sandbox(sandbox_app.create_app, RECORDS, CONFIG) as running:
        yield running


@pytest.fixture
def audit(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """What the sandbox logged of the signed requests it refused."""
    caplog.set_level(logging.INFO, logger="connectors.sandbox.auth")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "connectors.sandbox.auth"]


def refused(failure: OAuth1Failure) -> str:
    return f"OAuth 1.0a request refused: {failure}"


def signer(**changes: Any) -> oauth1.Client:
    """oauthlib's client with the sandbox's credentials, but for ``changes``."""
    fields: dict[str, Any] = {
        "client_key": CONFIG.tba_consumer_key,
        "client_secret": CONFIG.tba_consumer_secret,
        "resource_owner_key": CONFIG.tba_token_id,
        "resource_owner_secret": CONFIG.tba_token_secret,
        "signature_method": oauth1.SIGNATURE_HMAC_SHA256,
        "realm": CONFIG.tba_account,
    }
    return oauth1.Client(**{**fields, **changes})


def signed(
    url: str,
    method: str = "GET",
    body: str | None = None,
    content_type: str | None = None,
    by: oauth1.Client | None = None,
) -> tuple[str, dict[str, str], Any]:
    """The URL, headers and body oauthlib sends for the request."""
    headers = {"Content-Type": content_type} if content_type else {}
    uri, headers, body = (by or signer()).sign(url, method, body, headers)
    return uri, headers, body


def suiteql(q: str) -> str:
    return json.dumps({"q": q})


# -- accepted -------------------------------------------------------------------------------


def test_requests_signed_by_oauthlib_are_accepted(sandbox: Any) -> None:
    url, _ = sandbox
    uri, headers, _ = signed(f"{url}{RECORD}/customer/1002?fields=companyName")
    read = httpx.get(uri, headers=headers)
    statement = suiteql("SELECT id FROM customer WHERE id IN ('1001', '1002') ORDER BY id")
    uri, headers, body = signed(
        f"{url}{SUITEQL}?limit=1&offset=1", "POST", statement, "application/json"
    )
    query = httpx.post(uri, headers={**headers, "Prefer": "transient"}, content=body)
    assert read.json() == {
        "links": [{"rel": "self", "href": f"{url}{RECORD}/customer/1002"}],
        "companyName": "Globex Retail",
    }
    assert query.json()["items"] == [{"links": [], "id": "1002"}]
    assert "oauth_body_hash=" in headers["Authorization"]  # oauthlib vouches for a JSON body


def test_the_bearer_token_is_still_accepted_beside_tba(sandbox: Any) -> None:
    url, _ = sandbox
    bearer = {"Authorization": f"Bearer {CONFIG.secret}"}
    assert httpx.get(f"{url}{RECORD}/customer/1001", headers=bearer).status_code == 200


def test_a_form_body_is_signed_and_a_json_body_is_not(
    sandbox: Any, audit: Callable[[], list[str]]
) -> None:
    url, _ = sandbox
    form = "q=SELECT+id+FROM+customer"
    uri, headers, body = signed(f"{url}{SUITEQL}", "POST", form, FORM)
    as_signed = httpx.post(uri, headers={**headers, "Prefer": "transient"}, content=body)
    uri, headers, body = signed(f"{url}{SUITEQL}", "POST", form, FORM)
    tampered = httpx.post(uri, headers=headers, content=body.replace("customer", "currency"))
    # Signed without a body, as the connector signs: the JSON body is not covered.
    uri, headers, _ = signed(f"{url}{SUITEQL}", "POST")
    unsigned = httpx.post(
        uri, headers={**headers, "Prefer": "transient"}, json={"q": "SELECT id FROM currency"}
    )
    # Past the signature, the endpoint refuses a form body: it takes JSON.
    assert as_signed.json()["o:errorDetails"][0]["o:errorHeader"] == "Content-Type"
    assert (tampered.status_code, tampered.json()) == (401, REFUSED)
    assert unsigned.status_code == 200
    assert audit() == [refused(OAuth1Failure.SIGNATURE)]


def test_a_body_hash_vouches_for_a_json_body(sandbox: Any, audit: Callable[[], list[str]]) -> None:
    url, _ = sandbox
    uri, headers, _ = signed(f"{url}{SUITEQL}", "POST", suiteql("SELECT id FROM customer"),
                             "application/json")  # fmt: skip
    other = suiteql("SELECT id FROM subsidiary")
    response = httpx.post(uri, headers={**headers, "Prefer": "transient"}, content=other)
    assert (response.status_code, response.json()) == (401, REFUSED)
    assert audit() == [refused(OAuth1Failure.BODY_HASH)]


def test_a_nonce_may_come_again_only_with_another_timestamp(
    sandbox: Any, audit: Callable[[], list[str]]
) -> None:
    url, _ = sandbox
    now = int(time.time())
    first = signed(f"{url}{RECORD}/customer/1001", by=signer(nonce="n0nce-42", timestamp=str(now)))
    later = signed(
        f"{url}{RECORD}/customer/1001", by=signer(nonce="n0nce-42", timestamp=str(now + 1))
    )
    answers = [httpx.get(uri, headers=headers) for uri, headers, _ in (first, first, later)]
    assert [r.status_code for r in answers] == [200, 401, 200]
    assert answers[1].json() == REFUSED
    assert audit() == [refused(OAuth1Failure.REPLAY)]


# -- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        (lambda: {"resource_owner_secret": "not-the-token-secret"}, OAuth1Failure.SIGNATURE),
        (lambda: {"resource_owner_key": "tk-revoked"}, OAuth1Failure.TOKEN),
        (lambda: {"client_key": "ck-another-integration"}, OAuth1Failure.CONSUMER),
        (lambda: {"realm": "7654321"}, OAuth1Failure.REALM),
        (lambda: {"signature_method": oauth1.SIGNATURE_HMAC_SHA1}, OAuth1Failure.METHOD),
        (lambda: {"nonce": "n0nce"}, OAuth1Failure.NONCE),
        (lambda: {"timestamp": str(int(time.time()) - 400)}, OAuth1Failure.TIMESTAMP),
        (lambda: {"timestamp": str(int(time.time()) + 400)}, OAuth1Failure.TIMESTAMP),
        (
            lambda: {"resource_owner_key": None, "resource_owner_secret": None},
            OAuth1Failure.MISSING,
        ),
        (lambda: {"callback_uri": "https://opsgraph.example/cb"}, OAuth1Failure.UNEXPECTED),
    ],  # fmt: skip
    ids=[
        "signature",
        "token",
        "consumer",
        "realm",
        "hmac-sha1",
        "short-nonce",
        "stale",
        "future",
        "no-token",
        "callback",
    ],  # fmt: skip
)
def test_each_way_of_getting_tba_wrong_is_netsuites_401(
    sandbox: Any,
    audit: Callable[[], list[str]],
    changes: Callable[[], dict[str, Any]],
    failure: OAuth1Failure,
) -> None:
    url, _ = sandbox
    uri, headers, _ = signed(f"{url}{RECORD}/customer/1001", by=signer(**changes()))
    response = httpx.get(uri, headers=headers)
    assert (response.status_code, response.json()) == (401, REFUSED)
    assert audit() == [refused(failure)]


@pytest.mark.parametrize(
    ("edit", "failure"),
    [
        (lambda header: header + ', oauth_nonce="again-and-again"', OAuth1Failure.MALFORMED),
        (
            lambda header: header.replace('oauth_version="1.0"', 'oauth_version="2.0"'),
            OAuth1Failure.VERSION,
        ),
    ],  # fmt: skip
    ids=["repeated-parameter", "version"],
)
def test_a_header_edited_after_signing_is_refused(
    sandbox: Any,
    audit: Callable[[], list[str]],
    edit: Callable[[str], str],
    failure: OAuth1Failure,
) -> None:
    url, _ = sandbox
    uri, headers, _ = signed(f"{url}{RECORD}/customer/1001")
    response = httpx.get(uri, headers={"Authorization": edit(headers["Authorization"])})
    assert (response.status_code, response.json()) == (401, REFUSED)
    assert audit() == [refused(failure)]


# -- the connector, auth=tba ----------------------------------------------------------------


def connect_tba(config: ConnectorConfig) -> Connector:
    """``auth=tba`` with the sandbox's account, integration and token. The contract hands
    each connector its secret (the right one, or a wrong one to be refused): under TBA it is
    the token secret, and no bearer token is sent at all."""
    options = {
        "auth": "tba",
        "account": CONFIG.tba_account,
        "consumer_key": CONFIG.tba_consumer_key,
        "consumer_secret": CONFIG.tba_consumer_secret,
        "token_id": CONFIG.tba_token_id,
        "token_secret": config.secret,
    }
    return erp.connect(replace(config, secret="", options=options))


case = case_fixture(replace(test_erp.SPEC, connect=connect_tba))


class TestErpContractOverTba(ConnectorContract):
    pass


async def test_a_void_through_the_restlet_is_signed_like_every_request() -> None:
    """The RESTlet's query (``script``, ``deploy``) is part of what TBA signs."""
    with running_sandbox(sandbox_app.create_app, RECORDS, CONFIG) as (url, _):
        connector = connect_tba(ConnectorConfig(base_url=url, secret=SECRET))
        try:
            voided = await connector.write(VoidPosting(posting_id="5131", reason="Dup"), "k-1")
            [posting] = await connector.fetch_many(ObjectKind.POSTING, ["5131"])
        finally:
            await connector.aclose()
    assert voided.id == "5131"
    assert isinstance(posting, Posting)
    assert posting.status is PostingState.VOIDED
