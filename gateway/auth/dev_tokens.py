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


def mint(secret: str, role: Role, valid_s: float = VALID_S) -> str:
    now = int(time.time())
    claims = {"sub": f"demo-{role.value}", "roles": [role.value], "iat": now}
    return jwt.encode(claims | {"exp": now + int(valid_s)}, secret, algorithm="HS256")


def write(path: Path, secret: str) -> dict[Role, str]:
    """``{"<role>": "<bearer token>"}`` for every role, written to ``path`` (owner-only)."""
    tokens = {role: mint(secret, role) for role in Role}
    path.write_text(json.dumps({role.value: token for role, token in tokens.items()}, indent=2))
    path.chmod(0o600)
    return tokens
