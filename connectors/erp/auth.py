"""How the ERP connector proves who it is to NetSuite, chosen by ``ConnectorConfig.options``:

- ``auth=oauth2`` (the default): ``secret`` is an OAuth 2.0 access token, sent as a bearer.
- ``auth=tba``: token-based authentication, NetSuite's OAuth 1.0a profile. Every request is
  signed with HMAC-SHA256 under the integration's consumer secret and the token's secret
  (options ``account``, ``consumer_key``, ``consumer_secret``, ``token_id``,
  ``token_secret``); ``realm`` is the account id as NetSuite spells it there, upper case
  with an underscore (``1234567_SB1``).

The signature follows RFC 5849 section 3.4: the base string is the method, the base URI
(scheme and host in lower case, no default port, no query) and the normalized parameters
(the ``oauth_*`` ones but ``oauth_signature``, every query parameter and any form-encoded
body parameter, each percent-encoded, sorted by name then value), each percent-encoded and
joined by ``&``. NetSuite's REST bodies are JSON, which is not signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from urllib.parse import parse_qsl, quote

import httpx

from connectors.http import BearerToken
from connectors.models import ConnectorConfig

TBA_OPTIONS = ("account", "consumer_key", "consumer_secret", "token_id", "token_secret")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORM = "application/x-www-form-urlencoded"


def percent(value: str) -> str:
    """RFC 3986 percent-encoding: everything but ``A-Z a-z 0-9 - . _ ~``."""
    return quote(value, safe="")


def base_uri(url: httpx.URL) -> str:
    port = "" if url.port in (None, _DEFAULT_PORTS.get(url.scheme)) else f":{url.port}"
    path = url.raw_path.split(b"?", 1)[0].decode("ascii") or "/"
    return f"{url.scheme.lower()}://{url.raw_host.decode('ascii').lower()}{port}{path}"


def request_parameters(request: httpx.Request) -> list[tuple[str, str]]:
    """The query's parameters, and a form-encoded body's: what the signature covers
    besides the ``oauth_*`` parameters."""
    found = parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)
    if request.headers.get("Content-Type", "").split(";")[0].strip() == _FORM:
        found += parse_qsl(request.content.decode("utf-8"), keep_blank_values=True)
    return found


def base_string(method: str, url: httpx.URL, parameters: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((percent(name), percent(value)) for name, value in parameters)
    normalized = "&".join(f"{name}={value}" for name, value in encoded)
    return "&".join((method.upper(), percent(base_uri(url)), percent(normalized)))


def signature(base: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent(consumer_secret)}&{percent(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _nonce() -> str:
    return secrets.token_urlsafe(24)


class TokenAuth(httpx.Auth):
    """Signs each request with NetSuite token-based authentication (OAuth 1.0a,
    HMAC-SHA256). ``clock`` and ``nonce`` are injectable so that a signature can be
    checked against a known one."""

    requires_request_body = True  # a form-encoded body is part of the signature

    def __init__(
        self,
        *,
        account: str,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = _nonce,
    ) -> None:
        self._realm = account
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._token_id = token_id
        self._token_secret = token_secret
        self._clock = clock
        self._nonce = nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.authorization(request)
        yield request

    def authorization(self, request: httpx.Request) -> str:
        oauth = {
            "oauth_consumer_key": self._consumer_key,
            "oauth_token": self._token_id,
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(int(self._clock())),
            "oauth_nonce": self._nonce(),
            "oauth_version": "1.0",
        }
        parameters = [*oauth.items(), *request_parameters(request)]
        base = base_string(request.method, request.url, parameters)
        oauth["oauth_signature"] = signature(base, self._consumer_secret, self._token_secret)
        fields = {"realm": self._realm, **oauth}
        return "OAuth " + ", ".join(f'{name}="{percent(v)}"' for name, v in fields.items())


def from_config(config: ConnectorConfig) -> httpx.Auth:
    """The auth ``config.options["auth"]`` names; ValueError says what is missing."""
    scheme = config.options.get("auth", "oauth2")
    if scheme == "oauth2":
        return BearerToken(config.secret)
    if scheme != "tba":
        raise ValueError(f"erp auth must be oauth2 or tba, not {scheme!r}")
    missing = [name for name in TBA_OPTIONS if not config.options.get(name)]
    if missing:
        raise ValueError(f"erp auth=tba needs the options {', '.join(missing)}")
    options: Mapping[str, str] = config.options
    return TokenAuth(
        account=options["account"],
        consumer_key=options["consumer_key"],
        consumer_secret=options["consumer_secret"],
        token_id=options["token_id"],
        token_secret=options["token_secret"],
    )
