"""The refusals of persisted operations::

    GatewayError
    └── PersistedQueryError         answered before anything runs, with ``status``
        ├── PersistedQueryNotFound      the hash is not known (yet): send the text     200
        ├── PersistedQueryNotSupported  persisted queries are off                      200
        ├── PersistedQueryMismatch      the hash is not the SHA-256 of the text sent   400
        ├── NotInPersistedList          safelist: no registered operation has the hash 400
        ├── NotInSafelist               safelist: the text is not a registered one     400
        └── PersistedQueryInvalid       ``persistedQuery`` is not version 1 with a hash 400

The first two keep Apollo's messages and status: clients (Apollo Link, Apollo iOS and
Kotlin) recognise them and retry with the text, or stop sending hashes.
"""

from __future__ import annotations

from connectors.errors import GatewayError


class PersistedQueryError(GatewayError):
    status = 400

    def headers(self) -> dict[str, str]:
        return {}


class PersistedQueryNotFound(PersistedQueryError):
    code = "PERSISTED_QUERY_NOT_FOUND"
    status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")

    def headers(self) -> dict[str, str]:
        # A GET answered "not found" must not be cached on the way: the next one may
        # find the query.
        return {"Cache-Control": "private, no-cache, must-revalidate"}


class PersistedQueryNotSupported(PersistedQueryError):
    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class PersistedQueryMismatch(PersistedQueryError):
    code = "PERSISTED_QUERY_HASH_MISMATCH"


class NotInPersistedList(PersistedQueryError):
    code = "PERSISTED_QUERY_NOT_IN_LIST"


class NotInSafelist(PersistedQueryError):
    code = "QUERY_NOT_IN_SAFELIST"


class PersistedQueryInvalid(PersistedQueryError):
    """``extensions.persistedQuery`` is not ``{"version": 1, "sha256Hash": "<64 hex>"}``."""

    code = "BAD_REQUEST"
