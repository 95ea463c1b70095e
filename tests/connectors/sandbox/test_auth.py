"""The one guard every sandbox checks its credential with: what a request presents, compared
with the secret, and the vendor's own refusal given what was presented."""

from __future__ import annotations

import base64

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from connectors.sandbox.auth import Guard, basic, bearer
from connectors.sandbox.errors import VendorError


def request(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def encoded(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), (None, None)],
)
def test_bearer_reads_the_token(authorization: str | None, token: str | None) -> None:
    assert bearer(request(authorization)) == token


@pytest.mark.parametrize(
    ("authorization", "credentials"),
    [
        (encoded("me/token:abc"), ("me/token", "abc")),
        (encoded("sk_test_1:"), ("sk_test_1", "")),
        ("Basic abc", None),  # not base64: its padding is wrong
        ("Bearer abc", None),
    ],
)
def test_basic_reads_user_and_password(
    authorization: str, credentials: tuple[str, str] | None
) -> None:
    assert basic(request(authorization)) == credentials


def refusal(given: str | None) -> VendorError:
    return VendorError(401, {"refused": given}, "no")


GUARD = Guard("s3cret", bearer, refusal)


def test_the_secret_passes() -> None:
    GUARD.check(request("Bearer s3cret"))


@pytest.mark.parametrize(
    ("authorization", "presented"), [("Bearer wrong", "wrong"), ("Basic x", None), (None, None)]
)
def test_anything_else_is_the_vendors_refusal_of_what_was_presented(
    authorization: str | None, presented: str | None
) -> None:
    with pytest.raises(VendorError) as refused:
        GUARD.check(request(authorization))
    assert (refused.value.status, refused.value.document) == (401, {"refused": presented})


async def test_a_protected_endpoint_runs_only_for_the_secret() -> None:
    calls: list[str] = []

    async def endpoint(request: Request) -> Response:
        calls.append(request.url.path)
        return PlainTextResponse("ok")

    protected = GUARD.protect(endpoint)
    assert (await protected(request("Bearer s3cret"))).body == b"ok"
    with pytest.raises(VendorError):
        await protected(request("Bearer s3cre"))
    assert calls == ["/"]
