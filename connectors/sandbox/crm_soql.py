"""The CRM sandbox's schema (Account and User fields and their types), its errors in
Salesforce's words, and the SOQL subset it answers:

    SELECT f, ... FROM Account|User [WHERE f = v | f IN (v, ...) [AND ...]]
    [ORDER BY f [ASC|DESC]] [LIMIT n]

read by a small tokenizer. Anything else is MALFORMED_QUERY, an unknown field INVALID_FIELD
and a malformed id literal INVALID_QUERY_FILTER_OPERATOR, as Salesforce answers them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

API = "/services/data/v61.0"
ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
TYPES = {
    "Account": {"Id": "id", "Name": "string", "Opsgraph_Id__c": "string", "Segment__c": "string",
                "OwnerId": "id", "Owner.Name": "string", "Strategic__c": "boolean",
                "Renewal_Date__c": "date", "Health_Score__c": "double",
                "CreatedDate": "datetime", "LastModifiedDate": "datetime"},
    "User": {"Id": "id", "Name": "string", "IsActive": "boolean",
             "CreatedDate": "datetime", "LastModifiedDate": "datetime"},
}  # fmt: skip
WRITABLE = ("Name", "Opsgraph_Id__c", "Segment__c", "OwnerId", "Strategic__c",
            "Renewal_Date__c", "Health_Score__c")  # fmt: skip
NOT_NULL = ("Name", "OwnerId", "Strategic__c")


class SfError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> list[dict[str, str]]:
        return [{"message": self.message, "errorCode": self.code}]


CANNED = {
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    429: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
}


def error_body(status: int, message: str) -> tuple[bytes, str]:
    """Injected faults in Salesforce's words; a 403 or 429 is the API limit being spent."""
    fallback = ("SERVER_ERROR" if status >= 500 else "UNKNOWN_EXCEPTION", message)
    code, text = CANNED.get(status, fallback)
    return json.dumps(SfError(status, code, text).body()).encode(), "application/json"


def not_found(*, external_id_field: str | None = None) -> SfError:
    if external_id_field is None:
        return SfError(404, *CANNED[404])
    message = f"Provided external ID field does not exist or is not accessible: {external_id_field}"
    return SfError(404, "NOT_FOUND", message)


def _valid(kind: str, value: Any) -> bool:
    if kind in ("string", "id"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    try:
        return isinstance(value, str) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def check_fields(body: Any, *, upsert: bool) -> dict[str, Any]:
    """An Account write body checked against the schema, numbers as Salesforce keeps them."""
    if not isinstance(body, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "Expected a JSON object of field values")
    for key, value in body.items():
        if key not in WRITABLE:
            message = f"No such column '{key}' on sobject of type Account"
            raise SfError(400, "INVALID_FIELD", message)
        if upsert and key == "Opsgraph_Id__c":
            message = "The upsert's external ID belongs in the URL, not the body"
            raise SfError(400, "INVALID_FIELD", message)
        if (value is not None or key in NOT_NULL) and not _valid(TYPES["Account"][key], value):
            message = f"Cannot deserialize {key} from {json.dumps(value)}"
            raise SfError(400, "JSON_PARSER_ERROR", message)
    if body.get("Health_Score__c") is not None:
        return {**body, "Health_Score__c": float(body["Health_Score__c"])}
    return body


def ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def sf_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def attributes(sobject: str, id_: str) -> dict[str, str]:
    return {"type": sobject, "url": f"{API}/sobjects/{sobject}/{id_}"}


# -- SOQL -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))"
    r"|(?P<date>\d{4}-\d\d-\d\d)|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)|(?P<punct>[(),=]))"
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass
class Soql:
    sobject: str
    fields: list[str]
    where: list[tuple[str, list[Any]]]
    order: tuple[str, bool] | None  # field, descending
    limit: int | None


def _malformed(message: str) -> SfError:
    return SfError(400, "MALFORMED_QUERY", message)


def _tokens(soql: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, soql.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise _malformed(f"unexpected token: {text[pos:].split()[0]!r}")
        out.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return out


def _field(sobject: str, name: str) -> str:
    for known in TYPES[sobject]:
        if known.lower() == name.lower():
            return known
    raise SfError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'")


def _unescape(match: re.Match[str]) -> str:
    if match.group(1) not in _ESCAPES:
        raise _malformed(f"invalid escape sequence: \\{match.group(1)}")
    return _ESCAPES[match.group(1)]


def _literal(sobject: str, field: str, token: tuple[str, str]) -> Any:
    kind, text = token
    want = TYPES[sobject][field]
    if kind == "word" and text.lower() in ("null", "true", "false"):
        if text.lower() == "null":
            return None
        if want == "boolean":
            return text.lower() == "true"
    elif kind == "string" and want in ("id", "string"):
        value = re.sub(r"\\(.)", _unescape, text[1:-1])
        if want == "id" and not ID.fullmatch(value):
            raise SfError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
        return value
    elif (kind, want) in (("date", "date"), ("number", "double"), ("datetime", "datetime")):
        return text if kind == "date" else float(text) if kind == "number" else ms(utc(text))
    elif kind in ("word", "punct", "end"):
        raise _malformed(f"unexpected token: {text!r}")
    quoted = " and should not be enclosed in quotes" if kind == "string" else ""
    raise SfError(
        400,
        "INVALID_FIELD",
        f"value of filter criterion for field '{field}' must be of type {want}{quoted}",
    )


def parse_soql(soql: str) -> Soql:
    tokens, pos = _tokens(soql), 0

    def token() -> tuple[str, str]:
        nonlocal pos
        pos += 1
        return tokens[pos - 1] if pos <= len(tokens) else ("end", "<EOF>")

    def take(kind: str, text: str | None = None) -> str:
        got_kind, got = token()
        if got_kind != kind or (text and got.upper() != text):
            raise _malformed(f"unexpected token: {got!r}")
        return got

    def accept(text: str) -> bool:
        nonlocal pos
        if pos < len(tokens) and tokens[pos][0] in ("word", "punct"):
            if tokens[pos][1].upper() == text:
                pos += 1
                return True
        return False

    take("word", "SELECT")
    names = [take("word")]
    while accept(","):
        names.append(take("word"))
    take("word", "FROM")
    named = take("word")
    sobject = next((s for s in TYPES if s.lower() == named.lower()), None)
    if sobject is None:
        raise SfError(400, "INVALID_TYPE", f"sObject type '{named}' is not supported.")
    query = Soql(sobject, [_field(sobject, n) for n in names], [], None, None)
    if accept("WHERE"):
        while True:
            field = _field(sobject, take("word"))
            if accept("="):
                values = [_literal(sobject, field, token())]
            elif accept("IN"):
                take("punct", "(")
                values = [_literal(sobject, field, token())]
                while accept(","):
                    values.append(_literal(sobject, field, token()))
                take("punct", ")")
            else:
                raise _malformed(f"unexpected token: {token()[1]!r}")
            query.where.append((field, values))
            if not accept("AND"):
                break
    if accept("ORDER"):
        take("word", "BY")
        field = _field(sobject, take("word"))
        descending = accept("DESC")
        query.order = (field, descending or (accept("ASC") and False))
    if accept("LIMIT"):
        count = take("number")
        if not count.isdigit():
            raise _malformed(f"unexpected token: {count!r}")
        query.limit = int(count)
    if pos < len(tokens):
        raise _malformed(f"unexpected token: {token()[1]!r}")
    return query


def soql_equal(kind: str, value: Any, literal: Any) -> bool:
    # SOQL compares text case-insensitively; record ids are compared as given.
    if kind == "string" and isinstance(value, str) and isinstance(literal, str):
        return value.casefold() == literal.casefold()
    return bool(value == literal)
