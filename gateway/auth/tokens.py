"""Bearer JWTs from the identity provider, verified with PyJWT: signature (RS256/ES256 with a
key from the JWKS; HS256 only in the development profile), issuer, audience, expiry and
not-before, with a small leeway. The JWKS (a URL or a file) is read when a token names a
key id it does not hold, at most every ``jwks_refresh_s``: keys rotate without a restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt

from gateway.auth.principal import Principal, PrincipalKind
from gateway.auth.scopes import Role, Scope
from gateway.errors import Unauthenticated
from gateway.settings import AuthSettings

ASYMMETRIC = ("RS256", "ES256")


class KeySet:
    """The identity provider's signing keys by key id, read again when a token names a key
    id it does not hold (rotation), never more often than ``refresh_s``."""

    def __init__(self, url: str | None, file: Path | None, refresh_s: float) -> None:
        self._url, self._file, self._refresh_s = url, file, refresh_s
        self._keys: dict[str | None, Any] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and time.monotonic() - self._read_at >= self._refresh_s:
                self._keys = await self._read()
                self._read_at = time.monotonic()
        if kid is None and len(self._keys) == 1:  # a set of one needs no key id
            return next(iter(self._keys.values()))
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthenticated("the token is signed with a key we do not know") from None

    async def _read(self) -> dict[str | None, Any]:
        try:
            if self._file is not None:
                document = json.loads(await asyncio.to_thread(self._file.read_text))
            else:
                assert self._url is not None
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.get(self._url)
                    response.raise_for_status()
                    document = response.json()
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as exc:
            # Keep serving the keys we have; a token needing a new one is refused.
            if self._keys:
                return self._keys
            raise Unauthenticated(
                "the identity provider's keys cannot be read", internal=repr(exc)
            ) from None
        return {k.key_id: k.key for k in keys}


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        url = None if settings.jwks_url is None else str(settings.jwks_url)
        self._keys = (
            KeySet(url, settings.jwks_file, settings.jwks_refresh_s)
            if url or settings.jwks_file
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._keys is not None or bool(self._settings.hs256_secret)

    async def principal(self, token: str) -> Principal:
        """The principal ``token`` speaks for; ``Unauthenticated`` saying why not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm in ASYMMETRIC and self._keys is not None:
            key = await self._keys.key(header.get("kid"))
        elif algorithm == "HS256" and self._settings.hs256_secret:
            key = self._settings.hs256_secret
        else:
            raise Unauthenticated(f"tokens signed with {algorithm!r} are not accepted")
        settings = self._settings
        required = (
            ["exp", "sub"] + ["iss"] * bool(settings.issuer) + ["aud"] * bool(settings.audience)
        )
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=settings.issuer,
                audience=settings.audience,
                leeway=settings.leeway_s,
                options={"require": required, "verify_aud": settings.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token was issued by someone else") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is meant for another audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise Unauthenticated("the token's signature does not verify") from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        roles = _known(Role, claims.get(self._settings.roles_claim))
        scope_claim = claims.get("scope")
        scopes = _known(Scope, scope_claim.split() if isinstance(scope_claim, str) else None)
        entities = claims.get(self._settings.entities_claim)
        if entities is not None and not (
            isinstance(entities, list) and all(isinstance(e, str) for e in entities)
        ):
            raise Unauthenticated(f"the token's {self._settings.entities_claim!r} is not a list")
        return Principal.of(str(claims["sub"]), PrincipalKind.USER, roles, scopes, entities)


E = TypeVar("E", Role, Scope)


def _known(vocabulary: type[E], values: object) -> list[E]:
    """The values of a claim that name a role (or scope) opsgraph knows; others are
    ignored, as an identity provider's other applications' roles are."""
    if not isinstance(values, list):
        return []
    known = {v.value for v in vocabulary}
    return [vocabulary(v) for v in values if isinstance(v, str) and v in known]
