"""The response cache (issue #14): a registered query's answer, served again as the bytes
execution gave, without executing, while everything it was built from is unchanged.

An answer is kept per operation (its text's SHA-256 and name), variables and principal (the
whole principal: what it may see and who it is, so no answer crosses from one asker to
another). It is kept only when

- the operation is a registered query (its text's SHA-256 is in the manifest) whose every
  root field is in ``ROOTS``, the fields whose resolvers read only through paths that record
  what they read (``connectors.inputs``);
- it has no error and no warning;
- every input came from a cache: an entity-cache entry, fresh, or a value opsgraph's own data
  keeps in memory (``gateway.data.remembered``). An execution that called a system of record
  or read the gateway's database is not kept: its answer says ``cached: false``, or holds
  what nothing here could tell has changed.

A hit is checked against its inputs before it is served: each entity-cache entry is still
the one served (the same ``fetched_at``: an event or a write removes it, a refresh replaces
it, in Redis for every replica at once), each remembered value is still kept (a write
forgets it on every replica), and the clock has not reached the earliest entry's freshness
or the end of the day an answer depends on (``connectors.inputs.today``). A webhook that
changes an invoice thus makes the next 360 execute again, with no TTL wait. Provenance stays
honest with no rewriting: the answer was built from cached entries, so it says
``cached: true`` and each ``fetchedAt`` is the entry's, exactly what executing again would
say. ``tests/gateway/test_responses.py`` proves the bytes equal over every dashboard query.

Requests for a key with no answer kept wait for the one already executing it (they would
compute the same thing): once it is done they are served what it kept, or the next of them
executes. So when an answer changes under load (an event, opsgraph's own data read again
every ``OPSGRAPH_OWNED_TTL_S``), a key is executed about twice, not once per request in
flight. A waiter waits no longer than its request's deadline.

``Cache-Control: no-cache`` on a request executes it (and keeps the new answer).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse

from connectors import deadline
from connectors.inputs import Inputs
from gateway.auth.principal import Principal
from gateway.data.cache import EntityCache
from gateway.persisted.manifest import sha256
from gateway.settings import ResponseCacheSettings
from gateway.telemetry.metrics import ANONYMOUS, Metrics

# Root fields whose resolvers (and their objects' fields) read only through the entity cache,
# the remembered data, the connectors or the database, all of which record into
# ``connectors.inputs``. ``systems`` (breakers, probed health) and every list the database
# pages are not here.
ROOTS = frozenset({"customer", "customerByExternalId", "entitlementCheck", "node", "__typename"})
# Variables longer than this (as JSON) make no key: an answer is not worth keeping for them.
MAX_VARIABLES = 4096
# An answer larger than this share of ``max_bytes`` is not kept.
LARGEST_SHARE = 64


class Outcome:
    """A lookup's outcome, the ``outcome`` label of ``opsgraph_response_cache_lookups``."""

    HIT = "hit"
    MISS = "miss"  # nothing kept
    CHANGED = "changed"  # kept, but an input changed or the clock passed it
    BYPASSED = "bypassed"  # the request said Cache-Control: no-cache


@dataclass(frozen=True, slots=True)
class Key:
    operation: str  # the text's SHA-256
    name: str  # the operation's name ("" for an anonymous one)
    variables: str  # canonical JSON
    principal: Principal | None


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    label: str  # the operation's metrics label
    cost: int  # what executing it costs against the principal's budget
    keys: tuple[str, ...]  # entity-cache keys it was built from...
    fetched: tuple[float, ...]  # ...and the fetched_at of each entry served
    checks: tuple[Callable[[], bool], ...]
    until: float  # unix seconds


class Turn:
    """A request's turn to execute a key no answer is kept for: ``done`` lets the next
    request waiting for the key go on."""

    __slots__ = ("_release",)

    def __init__(self, release: Callable[[], None] | None) -> None:
        self._release = release

    def done(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class Responses:
    def __init__(
        self, settings: ResponseCacheSettings, cache: EntityCache, metrics: Metrics
    ) -> None:
        self.enabled = settings.enabled
        self.max_entries = settings.max_entries
        self.max_bytes = settings.max_bytes
        self.cache = cache
        self.metrics = metrics
        self._answers: OrderedDict[Key, Answer] = OrderedDict()
        self._bytes = 0
        # Keys a request is executing now, done when it has kept what it could.
        self._running: dict[Key, asyncio.Future[None]] = {}

    def key(
        self,
        query: str | None,
        name: str | None,
        variables: Mapping[str, object] | None,
        principal: Principal | None,
    ) -> Key | None:
        """The key a request's answer is kept under, or None when it cannot be kept: not a
        registered query of ``ROOTS``' fields, or variables too long."""
        if not self.enabled or query is None:
            return None
        operation = sha256(query)
        if operation not in self.metrics.registered:
            return None
        named = _cacheable(query, name)
        if named is None:
            return None
        try:
            given = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
        except ValueError:
            return None
        if len(given) > MAX_VARIABLES:
            return None
        return Key(operation, named, given, principal)

    async def get(self, key: Key) -> Answer | Turn:
        """The answer kept for ``key`` if all it was built from is unchanged (else it is
        dropped), once a request executing ``key`` has finished; counted by outcome. Else
        the caller's turn to execute it, to be ended (``Turn.done``) once it has kept what
        it could, or failed."""
        outcome: str | None = None
        while True:
            answer = self._answers.get(key)
            if answer is not None and await self._holds(answer):
                self._answers.move_to_end(key)
                self._count(key, Outcome.HIT)
                return answer
            if answer is not None:
                self._drop(key)
            outcome = outcome or (Outcome.MISS if answer is None else Outcome.CHANGED)
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = asyncio.get_running_loop().create_future()
                self._count(key, outcome)
                return Turn(functools.partial(self._executed, key, running))
            try:
                async with asyncio.timeout(deadline.remaining()):
                    await asyncio.shield(running)
            except TimeoutError:
                # Out of time to wait: executed now, the deadline answers for what is slow.
                self._count(key, outcome)
                return Turn(None)

    def _executed(self, key: Key, running: asyncio.Future[None]) -> None:
        if self._running.get(key) is running:
            del self._running[key]
        if not running.done():
            running.set_result(None)

    def bypassed(self, key: Key) -> None:
        self._count(key, Outcome.BYPASSED)

    def keep(self, key: Key, body: bytes, label: str, cost: int, inputs: Inputs) -> bool:
        """Keeps ``body`` as ``key``'s answer when every input came from a cache (the
        caller has checked it has no error or warning)."""
        if inputs.spoiled is not None or len(body) > self.max_bytes // LARGEST_SHARE:
            return False
        self._drop(key)
        keys = tuple(inputs.entries)
        self._answers[key] = Answer(
            body,
            label,
            cost,
            keys,
            tuple(inputs.entries[k] for k in keys),
            tuple(inputs.checks),
            inputs.until,
        )
        self._bytes += len(body)
        while len(self._answers) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._answers)))
        self._gauge()
        return True

    def clear(self) -> None:
        self._answers.clear()
        self._bytes = 0
        self._gauge()

    async def _holds(self, answer: Answer) -> bool:
        if time.time() >= answer.until:
            return False
        if not all(still() for still in answer.checks):
            return False
        if not answer.keys:
            return True
        entries = await self.cache.get_many(answer.keys)
        return all(
            entry is not None and entry.fetched_at == fetched
            for entry, fetched in zip(entries, answer.fetched, strict=True)
        )

    def _drop(self, key: Key) -> None:
        answer = self._answers.pop(key, None)
        if answer is not None:
            self._bytes -= len(answer.body)
            self._gauge()

    def _gauge(self) -> None:
        self.metrics.response_cache_size(len(self._answers), self._bytes)

    def _count(self, key: Key, outcome: str) -> None:
        self.metrics.response_cache_lookup(key.name or ANONYMOUS, outcome)


@functools.lru_cache(maxsize=1024)
def _cacheable(query: str, name: str | None) -> str | None:
    """The name of the operation ``name`` (or the one) of ``query`` if it is a query of
    ``ROOTS``' fields alone, else None; worked out once per registered operation."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return None
    roots = operations[0].selection_set.selections
    if not all(isinstance(s, FieldNode) and s.name.value in ROOTS for s in roots):
        return None
    return "" if operations[0].name is None else operations[0].name.value
