"""NetSuite token-based authentication (OAuth 1.0a, HMAC-SHA256): the signature base string
against RFC 5849's published example, and every signature against oauthlib's, an
implementation we did not write."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote

import httpx
import pytest
from oauthlib import oauth1
from oauthlib.oauth1.rfc5849 import signature as reference

from connectors.erp import ErpConnector, auth
from connectors.models import ConnectorConfig, ObjectKind

# NetSuite's own example credentials ("The Signature for Web Services and RESTlets").
TBA = {
    "auth": "tba",
    "account": "123456_SB1",
    "consumer_key": "ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4",
    "consumer_secret": "d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9e8b5",
    "token_id": "2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc",
    "token_secret": "c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295",
}
SUITEQL = "https://123456-sb1.suitetalk.api.netsuite.com/services/rest/query/v1/suiteql"
CLIENT = oauth1.Client(
    TBA["consumer_key"],
    TBA["consumer_secret"],
    TBA["token_id"],
    TBA["token_secret"],
    signature_method=oauth1.SIGNATURE_HMAC_SHA256,
    realm=TBA["account"],
    nonce="fjaLirsIcCGVZWzBX0pg",
    timestamp="1508242306",
)


def signer(nonce: str = "fjaLirsIcCGVZWzBX0pg", timestamp: int = 1508242306) -> auth.TokenAuth:
    return auth.TokenAuth(
        account=TBA["account"],
        consumer_key=TBA["consumer_key"],
        consumer_secret=TBA["consumer_secret"],
        token_id=TBA["token_id"],
        token_secret=TBA["token_secret"],
        clock=lambda: timestamp,
        nonce=lambda: nonce,
    )


def header_params(header: str) -> dict[str, str]:
    assert header.startswith("OAuth ")
    pairs = (item.strip().split("=", 1) for item in header.removeprefix("OAuth ").split(","))
    return {name: unquote(value.strip('"')) for name, value in pairs}


def oauthlib_signature(request: httpx.Request, header: str) -> str:
    """What oauthlib computes for ``request`` signed with the parameters in ``header``."""
    body = request.content.decode() if request.content else None
    form = request.headers.get("Content-Type") == "application/x-www-form-urlencoded"
    params = reference.collect_parameters(
        uri_query=request.url.query.decode(),
        body=body if form else None,
        headers={"Authorization": header},
        exclude_oauth_signature=True,
        with_realm=False,
    )
    base = reference.signature_base_string(
        request.method,
        reference.base_string_uri(str(request.url)),
        reference.normalize_parameters(params),
    )
    return reference.sign_hmac_sha256_with_client(base, CLIENT)


def test_the_base_string_is_rfc_5849s_example() -> None:
    """RFC 5849 section 3.4.1.1: query and form-body parameters, repeated names, empty
    values and already-encoded characters, sorted by name then value."""
    request = httpx.Request(
        "POST",
        "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
        content=b"c2&a3=2+q",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    oauth = {
        "oauth_consumer_key": "9djdj82h48djs9d2",
        "oauth_token": "kkk9d7dh3k39sjv7",
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": "137131201",
        "oauth_nonce": "7d8f3e4a",
    }
    params = [*oauth.items(), *auth.request_parameters(request)]
    assert auth.base_string(request.method, request.url, params) == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D"
        "%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce"
        "%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26"
        "oauth_token%3Dkkk9d7dh3k39sjv7"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"{SUITEQL}?limit=1000&offset=0",
        "https://123456-SB1.suitetalk.api.netsuite.com:443/services/rest/record/v1/creditMemo",
        "http://127.0.0.1:8123/services/rest/record/v1/customer/1001?expand=true&q=a b~c",
    ],
    ids=["query", "default-port-and-host-case", "port-and-encoding"],
)
def test_the_signature_is_oauthlibs(url: str) -> None:
    request = httpx.Request("POST", url, json={"q": "SELECT id FROM customer"})
    header = signer().authorization(request)
    params = header_params(header)
    assert params["oauth_signature"] == oauthlib_signature(request, header)
    # The same header oauthlib's own client writes, parameter for parameter.
    _, signed, _ = CLIENT.sign(str(request.url), "POST")
    assert params == header_params(signed["Authorization"])


def test_a_form_body_is_signed_too() -> None:
    request = httpx.Request(
        "POST", SUITEQL, data={"b": "2", "a": "1 + 1"}, headers={"X-Other": "not signed"}
    )
    header = signer(nonce="n0nce", timestamp=1790000000).authorization(request)
    assert header_params(header)["oauth_signature"] == oauthlib_signature(request, header)


def test_the_header_carries_the_realm_and_every_oauth_parameter() -> None:
    header = signer().authorization(httpx.Request("GET", SUITEQL))
    assert list(header_params(header)) == [
        "realm",
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
        "oauth_version",
        "oauth_signature",
    ]
    assert header_params(header)["realm"] == "123456_SB1"
    assert header_params(header)["oauth_signature_method"] == "HMAC-SHA256"


async def test_the_connector_signs_every_request_it_sends() -> None:
    """``auth=tba``: each request on the wire (SuiteQL with its paging parameters) carries
    a fresh nonce and a signature oauthlib agrees with."""
    seen: list[dict[str, str]] = []

    def netsuite(request: httpx.Request) -> httpx.Response:
        header = request.headers["Authorization"]
        params = header_params(header)
        assert params["oauth_signature"] == oauthlib_signature(request, header)
        assert dict(parse_qsl(request.url.query.decode())) == {"limit": "1", "offset": "0"}
        assert json.loads(request.content) == {"q": "SELECT id FROM customer"}
        seen.append(params)
        return httpx.Response(200, json={"items": [], "hasMore": False})

    config = ConnectorConfig(base_url=SUITEQL.split("/services")[0], secret="", options=TBA)
    connector = ErpConnector(config, transport=httpx.MockTransport(netsuite))
    try:
        assert (await connector.health()).healthy is True
        assert (await connector.health()).healthy is True
    finally:
        await connector.aclose()
    assert len(seen) == 2 and seen[0]["oauth_nonce"] != seen[1]["oauth_nonce"]
    assert {p["oauth_token"] for p in seen} == {TBA["token_id"]}


def test_oauth2_is_the_default_and_tba_needs_every_credential() -> None:
    bearer = auth.from_config(ConnectorConfig(base_url=SUITEQL, secret="tok"))
    request = next(bearer.auth_flow(httpx.Request("GET", SUITEQL)))
    assert request.headers["Authorization"] == "Bearer tok"
    partial = {k: v for k, v in TBA.items() if k not in ("token_id", "token_secret")}
    with pytest.raises(ValueError, match="token_id, token_secret"):
        auth.from_config(ConnectorConfig(base_url=SUITEQL, secret="", options=partial))
    with pytest.raises(ValueError, match="oauth2 or tba"):
        auth.from_config(ConnectorConfig(base_url=SUITEQL, secret="", options={"auth": "basic"}))


async def test_a_tba_connector_reads_through_the_kit() -> None:
    def netsuite(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"].startswith('OAuth realm="123456_SB1"')
        row = {"id": "1001", "entityid": "C1", "companyname": "Acme", "currencyname": "USD"}
        return httpx.Response(200, json={"items": [row], "hasMore": False})

    config = ConnectorConfig(base_url="https://123456-sb1.example", secret="", options=TBA)
    connector = ErpConnector(config, transport=httpx.MockTransport(netsuite))
    try:
        [customer] = await connector.fetch_many(ObjectKind.CUSTOMER, ["1001"])
    finally:
        await connector.aclose()
    assert customer is not None and customer.id == "1001"
    assert connector.calls == 1
