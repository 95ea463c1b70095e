"""Development tokens for the demo: one HS256 bearer token per role, signed with the demo's
development secret (the production profile refuses HS256), written where the demo's user
can find them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt

from gateway.auth.scopes import Role

VALID_S = 7 * 86400


def subject(role: Role) -> str:
    """Whom a development token of ``role`` speaks for."""
    return f"demo-{role.value}"


def mint(
    secret: str,
    role: Role,
    valid_s: float = VALID_S,
    *,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """A token for ``role``, with the issuer and audience the verifier asks for, if any."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject(role), "roles": [role.value], "iat": now}
    claims["exp"] = now + int(valid_s)
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


def write(
    path: Path, secret: str, *, issuer: str | None = None, audience: str | None = None
) -> dict[Role, str]:
    """``{"<role>": "<bearer token>"}`` for every role, written to ``path`` (owner-only)."""
    tokens = {role: mint(secret, role, issuer=issuer, audience=audience) for role in Role}
    path.write_text(json.dumps({role.value: token for role, token in tokens.items()}, indent=2))
    path.chmod(0o600)
    return tokens
