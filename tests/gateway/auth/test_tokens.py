"""Bearer JWTs: what verifies, what does not and why, and keys that rotate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth.principal import Principal, PrincipalKind
from gateway.auth.scopes import ROLE_SCOPES, Role, Scope
from gateway.auth.tokens import TokenVerifier
from gateway.errors import ConfigurationError, Unauthenticated
from gateway.settings import AuthSettings, load_settings
from tests.identity import AUDIENCE, ISSUER, Identity, identity


def verifier(**overrides: object) -> TokenVerifier:
    return TokenVerifier(AuthSettings(**{**identity().settings(), **overrides}))  # type: ignore[arg-type]


async def test_a_valid_token_names_its_principal_with_its_roles_scopes() -> None:
    token = identity().token(Role.SUPPORT_LEAD, entities=["US01"], subject="ana")
    principal = await verifier().principal(token)
    assert principal == Principal(
        subject="ana",
        kind=PrincipalKind.USER,
        roles=frozenset({Role.SUPPORT_LEAD}),
        scopes=ROLE_SCOPES[Role.SUPPORT_LEAD],
        entities=frozenset({"US01"}),
    )
    assert principal.may(Scope.CREDITS_REQUEST) and not principal.may(Scope.FINANCE_READ)
    assert principal.sees("US01") and not principal.sees("DE01")


async def test_scopes_may_come_from_the_scope_claim_and_unknown_roles_are_ignored() -> None:
    token = identity().token(roles=["viewer", "someone_elses_role"], scope="cases:read nope")
    principal = await verifier().principal(token)
    assert principal.roles == {Role.VIEWER}
    assert principal.scopes == ROLE_SCOPES[Role.VIEWER] | {Scope.CASES_READ}
    assert principal.entities is None


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 120}, "the token has expired"),
        ({"nbf": int(time.time()) + 600}, "the token is not valid yet"),
        ({"iss": "https://evil.example"}, "the token was issued by someone else"),
        ({"aud": "another-api"}, "the token is meant for another audience"),
    ],
)
async def test_claims_that_do_not_hold_are_refused(claims: dict[str, object], message: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        await verifier().principal(identity().token(Role.VIEWER, **claims))
    assert refused.value.message == message


async def test_a_token_without_a_subject_is_refused() -> None:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "roles": ["viewer"]}
    token = jwt.encode(body, identity().key, algorithm="RS256", headers={"kid": "test-key-1"})
    with pytest.raises(Unauthenticated) as refused:
        await verifier().principal(token)
    assert refused.value.message == "the token has no 'sub' claim"


async def test_a_signature_by_another_key_under_a_known_kid_does_not_verify() -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthenticated) as refused:
        await verifier().principal(identity().token(Role.VIEWER, key=forger))
    assert refused.value.message == "the token's signature does not verify"


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
async def test_algorithms_we_did_not_enable_are_refused(algorithm: str) -> None:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}
    token = jwt.encode(body, "s" * 32 if algorithm == "HS256" else None, algorithm=algorithm)
    with pytest.raises(Unauthenticated) as refused:
        await verifier().principal(token)
    assert refused.value.message == f"tokens signed with {algorithm!r} are not accepted"


async def test_garbage_is_not_a_jwt() -> None:
    with pytest.raises(Unauthenticated) as refused:
        await verifier().principal("not.a.token")
    assert refused.value.message == "the bearer token is not a JWT"


async def test_a_rotated_key_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    provider = Identity(tmp_path)
    check = TokenVerifier(
        AuthSettings(
            issuer=ISSUER, audience=AUDIENCE, jwks_file=provider.jwks_file, jwks_refresh_s=0
        )
    )
    assert (await check.principal(provider.token(Role.VIEWER))).subject == "test-user"
    # The provider rotates to an ES256 key under a new id and retires the old one.
    rotated = ec.generate_private_key(ec.SECP256R1())
    public = jwt.algorithms.ECAlgorithm.to_jwk(rotated.public_key(), as_dict=True)
    provider.jwks_file.write_text(json.dumps({"keys": [public | {"kid": "k2", "alg": "ES256"}]}))
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "after", "exp": now + 60}
    token = jwt.encode(body, rotated, algorithm="ES256", headers={"kid": "k2"})
    assert (await check.principal(token)).subject == "after"
    with pytest.raises(Unauthenticated) as retired:  # the old key is gone from the set
        await check.principal(provider.token(Role.VIEWER))
    assert retired.value.message == "the token is signed with a key we do not know"


def test_the_production_profile_refuses_hs256_and_unanchored_keys() -> None:
    with pytest.raises(ConfigurationError) as hs256:
        load_settings(auth={"hs256_secret": "x" * 32})
    assert str(hs256.value.message).startswith("OPSGRAPH_AUTH__HS256_SECRET is for the development")
    with pytest.raises(ConfigurationError) as unanchored:
        load_settings(auth={"jwks_file": "/tmp/jwks.json"})
    assert unanchored.value.message == (
        "OPSGRAPH_AUTH__ISSUER and OPSGRAPH_AUTH__AUDIENCE are required to verify tokens in "
        "the production profile"
    )
    assert load_settings(profile="development", auth={"hs256_secret": "x" * 32}).auth.hs256_secret
