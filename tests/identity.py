"""Real JWTs for the tests: an RSA key of this test run's, published as a JWKS file, and
tokens signed with it for any role, legal entities or claims a test chooses."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth.scopes import Role

ISSUER = "https://idp.opsgraph.test"
AUDIENCE = "opsgraph"
KID = "test-key-1"


class Identity:
    def __init__(self, folder: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_file = folder / "jwks.json"
        self.publish(self.key, KID)

    def publish(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        """Make ``key`` (under ``kid``) the identity provider's only signing key."""
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        public |= {"kid": kid, "use": "sig", "alg": "RS256"}
        self.jwks_file.write_text(json.dumps({"keys": [public]}))

    def settings(self) -> dict[str, str]:
        """The ``auth`` settings that trust this identity provider."""
        return {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(self.jwks_file)}

    def variables(self) -> dict[str, str]:
        """The same, as ``OPSGRAPH_AUTH__*`` variables for a gateway process."""
        return {f"OPSGRAPH_AUTH__{k.upper()}": v for k, v in self.settings().items()}

    def token(
        self,
        *roles: Role,
        entities: list[str] | None = None,
        subject: str = "test-user",
        # A day: tests keep tokens minted at import as module constants, and the whole
        # suite outlasts ten minutes; a test of expiry says so itself.
        expires_in: float = 86400,
        key: rsa.RSAPrivateKey | None = None,
        kid: str = KID,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + int(expires_in),
            "roles": [r.value for r in roles],
        }
        if entities is not None:
            body["legal_entities"] = entities
        body |= claims
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid})

    def headers(self, *roles: Role, **kw: Any) -> dict[str, str]:
        """The Authorization header of a principal with ``roles`` (a viewer by default)."""
        return {"Authorization": f"Bearer {self.token(*(roles or (Role.VIEWER,)), **kw)}"}


@cache
def identity() -> Identity:
    folder = Path(tempfile.mkdtemp(prefix="opsgraph-idp-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Identity(folder)
