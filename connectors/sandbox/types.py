"""Type aliases the sandboxes share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from connectors.models import Record

Endpoint = Callable[[Request], Awaitable[Response]]
Seeder = Callable[[list[Record]], None]  # stores a slice of canonical records in wire shape
# Makes a sandbox's side of ``bulk.BenchWorld(invoices, seed)``: how many of each it holds.
Bulk = Callable[[int, int], dict[str, int]]
