"""Stripe's request parameters and error bodies.

Stripe v1 takes form-encoded bodies and query strings with bracket notation
(``metadata[opsgraph_id]=x``, ``expand[0]=data.product``, ``expand[]=product``,
``items[0][price]=p``); ``parse`` turns them into nested dicts and lists. ``ApiError``
renders Stripe's error JSON: ``{"error": {"type", "message", "code"?, "param"?}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_DOCS = "https://stripe.com/docs/error-codes/"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = _DOCS + code.replace("_", "-")
        if param:
            self.body["param"] = param

    def payload(self) -> dict[str, Any]:
        return {"error": dict(sorted(self.body.items()))}


def error_body(status: int, message: str) -> tuple[bytes, str]:
    """Stripe's error JSON for faults the sandbox injects."""
    if status == 429:
        error = ApiError(status, f"Request rate limit exceeded: {message}", type="rate_limit_error")
    elif status >= 500:
        error = ApiError(status, f"An unknown error occurred: {message}", type="api_error")
    else:
        error = ApiError(status, message)
    return json.dumps(error.payload()).encode(), "application/json"


def no_such(object_name: str, id_: str, param: str = "id", status: int = 404) -> ApiError:
    return ApiError(status, f"No such {object_name}: '{id_}'", code="resource_missing", param=param)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def parse(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        path = [match.group(1), *_PART.findall(match.group(2))] if match else [key]
        node = root
        for depth, part in enumerate(path):
            if part == "":  # "expand[]": append
                part = str(len(node))
            if depth == len(path) - 1:
                node[part] = value
                break
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ApiError(400, f"Invalid hash: {path[0]}", param=path[0])
            node = child
    result: dict[str, Any] = _lists(root)
    return result


def accept(params: dict[str, Any], allowed: Iterable[str]) -> None:
    for name in params:
        if name not in allowed:
            raise ApiError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def need(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise ApiError(
            400, f"Missing required param: {name}.", code="parameter_missing", param=name
        )
    return params[name]


def integer(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Invalid integer: {value}", param=name) from None


def boolean(params: dict[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise ApiError(400, f"Invalid boolean: {value}", param=name)
    return bool(value == "true")


def strings(params: dict[str, Any], name: str) -> dict[str, str]:
    value = params.get(name) or {}
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid hash: {name}", param=name)
    return {str(k): str(v) for k, v in value.items()}


def expansions(params: dict[str, Any]) -> list[str]:
    value = params.get("expand") or []
    if not isinstance(value, list):
        raise ApiError(400, "Invalid array", param="expand")
    return [str(v) for v in value]


def mask(key: str) -> str:
    """How Stripe echoes a bad key: its mode prefix, stars, and the last four characters."""
    head = key[:8] if key[:8] in ("sk_test_", "sk_live_", "rk_test_", "rk_live_") else ""
    tail = key[-4:] if len(key) - len(head) > 8 else ""
    return head + "*" * max(4, len(key) - len(head) - len(tail)) + tail
