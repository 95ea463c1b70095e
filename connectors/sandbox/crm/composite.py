"""Salesforce's two ways of sending several requests in one: Composite and Composite Batch.

    POST /composite        {"allOrNone"?, "collateSubrequests"?, "compositeRequest": [
                              {"method", "url", "referenceId", "body"?, "httpHeaders"?}]}
                           -> {"compositeResponse": [{"body", "httpHeaders",
                                                      "httpStatusCode", "referenceId"}]}
    POST /composite/batch  {"batchRequests": [{"method", "url", "richInput"?}],
                            "haltOnError"?}
                           -> {"hasErrors", "results": [{"statusCode", "result"}]}

A composite subrequest may use an earlier one's answer: ``@{ref.id}``,
``@{ref.records[0].Id}`` in its url or body. With ``allOrNone`` the subrequests run in one
transaction: the first to fail rolls every write back, and every other answers
PROCESSING_HALTED; without it, only those that refer to a failed one are not run. A
batch's subrequests are independent; with ``haltOnError`` the first failure stops the
rest (412 BATCH_PROCESSING_HALTED). ``collateSubrequests`` lets Salesforce reorder
unrelated subrequests to run them in bulk, which changes no answer: it is checked and
needs nothing more.

The request is checked whole before any subrequest runs, as Salesforce does: a malformed
one is a 400 and nothing runs. What a subrequest does is ``run(subrequest)``: the API's
own handlers, the same as over HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.crm.errors import SalesforceError, json_parser
from connectors.sandbox.crm.resources import Answer

MAX_SUBREQUESTS = 25
_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
# The one request header the sandbox's resources apply; Salesforce refuses Accept,
# Authorization and Content-Type in a subrequest (they are the composite request's).
_SUBREQUEST_HEADERS = ("sforce-query-options",)
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_ROLLED_BACK = (
    "The transaction was rolled back since another operation in the same transaction failed."
)


@dataclass(frozen=True)
class Subrequest:
    method: str
    url: str  # from /services/data/
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case


Run = Callable[[Subrequest], Answer]


def _halted(code: str, message: str, status: int = 400) -> Answer:
    return Answer(status, [{"errorCode": code, "message": message}])


def _object(value: Any, what: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise json_parser(f"Expected a JSON object for {what}")
    for key in value:
        if key not in allowed:
            raise json_parser(f'Unrecognized field "{key}"')
    return value


def _required(value: dict[str, Any], key: str) -> Any:
    if value.get(key) is None:
        raise json_parser(f"'{key}' is a required field.")
    return value[key]


def _boolean(value: dict[str, Any], key: str) -> bool:
    found = value.get(key, False)
    if not isinstance(found, bool):
        raise json_parser(f"Cannot deserialize value of type boolean from {key}: {found!r}")
    return found


def _subrequests(value: Any, key: str) -> list[Any]:
    found = value.get(key)
    if not isinstance(found, list) or not found:
        raise json_parser(f"{key} must list the subrequests")
    return found


def _method(value: dict[str, Any]) -> str:
    method = _required(value, "method")
    if method not in _METHODS:
        raise json_parser(f"Invalid HTTP method: {method}")
    return str(method)


def _url(value: dict[str, Any]) -> str:
    url = _required(value, "url")
    if not isinstance(url, str):
        raise json_parser("'url' must be a string")
    return url


class _Unresolved(Exception):
    def __init__(self, reference: re.Match[str]) -> None:
        name = reference[1]
        super().__init__(
            f"Invalid reference specified. No value for {name}{reference[2]} found in {name}."
        )


def _lookup(reference: re.Match[str], answers: Mapping[str, Any]) -> Any:
    if reference[1] not in answers:
        raise _Unresolved(reference)
    value = answers[reference[1]]
    for key, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", reference[2]):
        if key and isinstance(value, dict):
            value = value.get(key)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            value = None
        if value is None:
            raise _Unresolved(reference)
    if isinstance(value, dict | list):
        raise _Unresolved(reference)
    return value


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _interpolate(text: str, answers: Mapping[str, Any]) -> str:
    return _REFERENCE.sub(lambda m: _text(_lookup(m, answers)), text)


def _resolve(value: Any, answers: Mapping[str, Any]) -> Any:
    """``value`` with its references replaced: a string that is one reference becomes the
    value it names, of that value's type; a reference inside a longer string, its text."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        return _lookup(whole, answers) if whole else _interpolate(value, answers)
    if isinstance(value, list):
        return [_resolve(v, answers) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, answers) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class _Planned:
    reference: str
    method: str
    url: str
    body: Any
    headers: dict[str, str]


def _plan(value: Any) -> _Planned:
    sub = _object(value, "a subrequest", ("method", "url", "referenceId", "body", "httpHeaders"))
    reference = _required(sub, "referenceId")
    headers = sub.get("httpHeaders") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise json_parser("httpHeaders must map header names to strings")
    for name in headers:
        if name.lower() not in _SUBREQUEST_HEADERS:
            raise SalesforceError(
                400, "INVALID_INPUT", f"Header not allowed in a subrequest: {name}"
            )
    lowered = {name.lower(): v for name, v in headers.items()}
    return _Planned(str(reference), _method(sub), _url(sub), sub.get("body"), lowered)


class _Failed(Exception):
    """A subrequest of an all-or-none request failed: roll everything back."""


def composite(body: Any, run: Run, atomic: Callable[[], AbstractContextManager[None]]) -> Answer:
    """Answer a Composite request: ``run`` each subrequest, all inside ``atomic()`` (a
    transaction that an exception rolls back) when the request is all or none."""
    request = _object(body, "the request", ("allOrNone", "collateSubrequests", "compositeRequest"))
    all_or_none = _boolean(request, "allOrNone")
    _boolean(request, "collateSubrequests")
    subrequests = _subrequests(request, "compositeRequest")
    if len(subrequests) > MAX_SUBREQUESTS:
        message = f"The request can’t contain more than {MAX_SUBREQUESTS} operations."
        answer = _halted("LIMIT_EXCEEDED", message)
        return Answer(200, {"compositeResponse": [_result(None, answer)]})
    plans = [_plan(s) for s in subrequests]
    references = [p.reference for p in plans]
    if len(set(references)) != len(references):
        raise SalesforceError(
            400, "INVALID_INPUT", "Duplicate ReferenceId provided in the request."
        )
    answers: dict[str, Any] = {}  # referenceId -> the body of a subrequest that succeeded

    def one(plan: _Planned) -> Answer:
        try:
            url, sub_body = _interpolate(plan.url, answers), _resolve(plan.body, answers)
        except _Unresolved as exc:
            return _halted("PROCESSING_HALTED", str(exc))
        answer = run(Subrequest(plan.method, url, sub_body, plan.headers))
        if answer.status < 300:
            answers[plan.reference] = answer.body
        return answer

    done: list[Answer] = []
    if not all_or_none:
        done = [one(plan) for plan in plans]
    else:
        try:
            with atomic():
                for plan in plans:
                    done.append(one(plan))
                    if done[-1].status >= 300:  # 300: an upsert that matched several
                        raise _Failed
        except _Failed:
            halted = _halted("PROCESSING_HALTED", _ROLLED_BACK)
            done = [done[-1] if i == len(done) - 1 else halted for i in range(len(plans))]
    return Answer(
        200,
        {"compositeResponse": [_result(p.reference, a) for p, a in zip(plans, done, strict=True)]},
    )


def _result(reference: str | None, answer: Answer) -> dict[str, Any]:
    return {"body": answer.body, "httpHeaders": dict(answer.headers),
            "httpStatusCode": answer.status, "referenceId": reference}  # fmt: skip


def batch(body: Any, run: Run) -> Answer:
    """Answer a Composite Batch request: ``run`` each subrequest in turn."""
    request = _object(body, "the request", ("batchRequests", "haltOnError"))
    subrequests = _subrequests(request, "batchRequests")
    if len(subrequests) > MAX_SUBREQUESTS:
        message = f"A batch holds at most {MAX_SUBREQUESTS} subrequests"
        raise SalesforceError(400, "INVALID_BATCH_REQUEST", message)
    halt = _boolean(request, "haltOnError")
    planned = []
    for value in subrequests:
        given = _object(value, "a subrequest", ("method", "url", "richInput"))
        # A batch subrequest's url starts at the version: "v61.0/sobjects/Account/001..."
        url = "/services/data/" + _url(given).removeprefix("/services/data/").removeprefix("/")
        planned.append(Subrequest(_method(given), url, given.get("richInput")))
    results, halted = [], False
    for subrequest in planned:
        answer = (
            _halted("BATCH_PROCESSING_HALTED", "Batch processing halted per request", 412)
            if halted
            else run(subrequest)
        )
        halted = halted or (halt and answer.status >= 400)
        results.append({"statusCode": answer.status, "result": answer.body})
    has_errors = any(r["statusCode"] >= 400 for r in results)
    return Answer(200, {"hasErrors": has_errors, "results": results})
