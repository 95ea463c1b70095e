"""Who may call a sandbox: one guard shape for every system's credential check.

A ``Guard`` reads the credential a request presents (``presented``: a function of the
request, ``None`` when there is none), compares it with the sandbox's secret in constant
time, and otherwise raises the vendor's own 401 (``refuse``, given what was presented, so
that Stripe can echo the key masked). Where it is presented is the vendor's::

    Stripe       Authorization: Bearer <key>, or Basic with the key as user name
    NetSuite     Authorization: Bearer <token>
                 or OAuth realm="<account>", oauth_...="..." (token-based authentication,
                 OAuth 1.0a: a signature to recompute, not a secret to compare, ``OAuth1``)
    Salesforce   Authorization: Bearer <session id>
    Zendesk      Authorization: Basic {email}/token:{api token}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, quote, unquote

from starlette.requests import Request
from starlette.responses import Response

from connectors.sandbox.errors import VendorError
from connectors.sandbox.types import Endpoint


def _authorization(request: Request) -> tuple[str, str]:
    """The scheme (lowercase, as schemes are case-insensitive) and its credentials."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower(), value.strip()


def bearer(request: Request) -> str | None:
    scheme, value = _authorization(request)
    return value if scheme == "bearer" else None


def basic(request: Request) -> tuple[str, str] | None:
    """The user name and password of Basic auth, if that is what the request carries."""
    scheme, value = _authorization(request)
    if scheme != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


@dataclass(frozen=True)
class Guard:
    secret: str
    presented: Callable[[Request], str | None]
    refuse: Callable[[str | None], VendorError]

    def check(self, request: Request) -> None:
        given = self.presented(request)
        if given is None or not hmac.compare_digest(given.encode(), self.secret.encode()):
            raise self.refuse(given)

    def protect(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            self.check(request)
            return await endpoint(request)

        return guarded


# -- OAuth 1.0a (RFC 5849) ---------------------------------------------------------------------
#
# A signature recomputed, not a secret compared: HMAC over the method, the base string URI
# (section 3.4.1.2) and the request's parameters (section 3.4.1.3: the OAuth ones but the
# signature, the query's, and a form-encoded body's; any other body is not signed, though an
# ``oauth_body_hash`` may vouch for it), keyed with the consumer's and the token's secrets.
# A nonce used again with its timestamp, or a timestamp too far off, is refused (section 3.3).

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORM = "application/x-www-form-urlencoded"
_DIGESTS = {"HMAC-SHA256": hashlib.sha256, "HMAC-SHA1": hashlib.sha1}
_REQUIRED = ("oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_timestamp",
             "oauth_nonce", "oauth_signature")  # fmt: skip
_KNOWN = frozenset({"realm", "oauth_version", "oauth_body_hash", *_REQUIRED})
_PARAMETER = re.compile(r'\s*([A-Za-z0-9_]+)="([^"]*)"\s*(?:,|$)')


class OAuth1Failure(StrEnum):
    """Why a signed request was refused. The sandbox logs it, as a vendor's login audit
    trail shows it; the client hears only the vendor's 401."""

    MALFORMED = "the Authorization header is not a list of OAuth parameters"
    MISSING = "a required OAuth parameter is missing"
    UNEXPECTED = "an OAuth parameter the server does not apply"
    REALM = "the realm is not the account's"
    VERSION = "oauth_version is not 1.0"
    METHOD = "the signature method is not accepted"
    CONSUMER = "the consumer key is unknown"
    TOKEN = "the token is unknown"
    TIMESTAMP = "the timestamp is too far from the server's clock"
    NONCE = "the nonce is too short"
    BODY_HASH = "oauth_body_hash is not the body's"
    SIGNATURE = "the signature does not match"
    REPLAY = "the nonce was already used with this timestamp"


class OAuth1Refused(ValueError):
    def __init__(self, failure: OAuth1Failure) -> None:
        super().__init__(failure.value)
        self.failure = failure


@dataclass(frozen=True)
class OAuth1Credentials:
    """What the server shares with one client for one of its access tokens."""

    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str


def is_oauth1(request: Request) -> bool:
    """Whether the request is signed with OAuth 1.0a (rather than carrying another scheme)."""
    return _authorization(request)[0] == "oauth"


def oauth1_parameters(header: str) -> dict[str, str]:
    """The parameters of an ``OAuth`` Authorization header (section 3.5.1), the ``oauth_*``
    ones percent-decoded; a repeated or unparsable one is ``MALFORMED``."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise OAuth1Refused(OAuth1Failure.MALFORMED)
    found: dict[str, str] = {}
    pos, rest = 0, rest.strip()
    while pos < len(rest):
        match = _PARAMETER.match(rest, pos)
        if match is None or match[1] in found:
            raise OAuth1Refused(OAuth1Failure.MALFORMED)
        name, value = match[1], match[2]
        found[name] = unquote(value) if name.startswith("oauth_") else value
        pos = match.end()
    return found


def _percent(value: str) -> str:
    return quote(value, safe="")


def base_string_uri(request: Request) -> str:
    """Scheme and host in lower case, the port only when it is not the scheme's default,
    and the path as it was sent (section 3.4.1.2)."""
    url = request.url
    scheme = url.scheme.lower()
    port = "" if url.port in (None, _DEFAULT_PORTS.get(scheme)) else f":{url.port}"
    raw: bytes = request.scope.get("raw_path") or url.path.encode()
    path = raw.split(b"?", 1)[0].decode("latin-1") or "/"
    return f"{scheme}://{(url.hostname or '').lower()}{port}{path}"


class OAuth1:
    """Checks requests signed with OAuth 1.0a in the Authorization header: for one
    ``realm``, with the ``credentials`` the server knows, by one of ``methods``, within
    ``window_s`` of the server's ``clock``. A refusal is ``refuse(failure)``: the vendor's
    401."""

    def __init__(
        self,
        *,
        realm: str,
        credentials: Iterable[OAuth1Credentials],
        refuse: Callable[[str | None], VendorError],
        methods: Collection[str] = ("HMAC-SHA256",),
        window_s: int = 300,
        min_nonce: int = 6,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.realm = realm
        self._credentials = {(c.consumer_key, c.token): c for c in credentials}
        self._consumers = {key for key, _ in self._credentials}
        self.refuse = refuse
        self.methods = methods
        self.window_s = window_s
        self.min_nonce = min_nonce
        self.clock = clock
        # Nonces in use: a set to look up, and the same in arrival order to forget them once
        # their timestamps are out of the window whatever they were.
        self._seen: set[tuple[str, ...]] = set()
        self._arrivals: deque[tuple[float, tuple[str, ...]]] = deque()

    async def check(self, request: Request) -> None:
        body = await request.body()  # Starlette keeps it for the endpoint
        try:
            self.verify(
                request.method,
                base_string_uri(request),
                request.scope["query_string"].decode("latin-1"),
                request.headers.get("authorization", ""),
                request.headers.get("content-type", ""),
                body,
            )
        except OAuth1Refused as refused:
            log.info("OAuth 1.0a request refused: %s", refused)
            raise self.refuse(refused.failure) from None

    def verify(
        self, method: str, uri: str, query: str, authorization: str, content_type: str, body: bytes
    ) -> None:
        """Accept the request, remembering its nonce, or raise ``OAuth1Refused``."""
        given = oauth1_parameters(authorization)
        if any(name not in given for name in _REQUIRED):
            raise OAuth1Refused(OAuth1Failure.MISSING)
        if any(name not in _KNOWN for name in given):
            raise OAuth1Refused(OAuth1Failure.UNEXPECTED)
        if given.get("realm") != self.realm:
            raise OAuth1Refused(OAuth1Failure.REALM)
        if given.get("oauth_version", "1.0") != "1.0":
            raise OAuth1Refused(OAuth1Failure.VERSION)
        method_name = given["oauth_signature_method"]
        if method_name not in self.methods or method_name not in _DIGESTS:
            raise OAuth1Refused(OAuth1Failure.METHOD)
        consumer, token = given["oauth_consumer_key"], given["oauth_token"]
        if consumer not in self._consumers:
            raise OAuth1Refused(OAuth1Failure.CONSUMER)
        credentials = self._credentials.get((consumer, token))
        if credentials is None:
            raise OAuth1Refused(OAuth1Failure.TOKEN)
        now = self.clock()
        stamp = given["oauth_timestamp"]
        if not stamp.isdigit() or abs(now - int(stamp)) > self.window_s:
            raise OAuth1Refused(OAuth1Failure.TIMESTAMP)
        if len(given["oauth_nonce"]) < self.min_nonce:
            raise OAuth1Refused(OAuth1Failure.NONCE)
        form = content_type.split(";")[0].strip().lower() == _FORM
        if "oauth_body_hash" in given:
            vouched = base64.b64encode(hashlib.sha1(body).digest()).decode()
            if form or not hmac.compare_digest(vouched, given["oauth_body_hash"]):
                raise OAuth1Refused(OAuth1Failure.BODY_HASH)
        signed = [(n, v) for n, v in given.items() if n not in ("realm", "oauth_signature")]
        signed += parse_qsl(query, keep_blank_values=True)
        if form:
            signed += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        pairs = sorted((_percent(name), _percent(value)) for name, value in signed)
        normalized = "&".join(f"{name}={value}" for name, value in pairs)
        text = "&".join(_percent(part) for part in (method.upper(), uri, normalized))
        key = f"{_percent(credentials.consumer_secret)}&{_percent(credentials.token_secret)}"
        digest = hmac.new(key.encode(), text.encode(), _DIGESTS[method_name]).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), given["oauth_signature"]):
            raise OAuth1Refused(OAuth1Failure.SIGNATURE)
        self._remember((consumer, token, stamp, given["oauth_nonce"]), now)

    def _remember(self, use: tuple[str, ...], now: float) -> None:
        if use in self._seen:
            raise OAuth1Refused(OAuth1Failure.REPLAY)
        # Any timestamp accepted was within window_s of its arrival: twice that later, the
        # same timestamp is refused anyway, so its nonce need not be kept.
        while self._arrivals and self._arrivals[0][0] < now - 2 * self.window_s:
            self._seen.discard(self._arrivals.popleft()[1])
        self._seen.add(use)
        self._arrivals.append((now, use))
