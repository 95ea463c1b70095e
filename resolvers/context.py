"""What a resolver may use: the gateway's services, built once per process, and the request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from strawberry.types import Info as StrawberryInfo

from gateway.auth.principal import Principal
from gateway.data.services import Services
from resolvers.loaders import Loaders

T = TypeVar("T")


@dataclass
class Context:
    services: Services
    # Who is asking. None only for schema execution outside a request (tests, benchmarks),
    # which is then refused like a principal with no scopes.
    principal: Principal | None = None
    request: Any = None
    response: Any = None
    # A WebSocket's ``connection_init`` payload (strawberry sets it), and how many
    # subscriptions run on it now.
    connection_params: Any = None
    subscriptions: int = 0
    # The operation's estimated cost, once its limits are checked (gateway.extensions).
    cost: int = 0
    loaders: Loaders = field(init=False)
    _once: dict[str, asyncio.Future[Any]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services, self.principal)

    def authenticated(self, principal: Principal) -> None:
        """A WebSocket names its principal after its context is made (``connection_init``)."""
        self.principal = principal
        self.loaders = Loaders(self.services, principal)

    def afresh(self) -> None:
        """Forget what the loaders read: a subscription's next message is read anew (its
        context lives as long as its connection). An operation already under way on the
        connection reads on with whichever loaders it asks for next."""
        self.loaders = Loaders(self.services, self.principal)

    async def once(self, key: str, make: Callable[[], Awaitable[T]]) -> T:
        """``make()``'s answer, worked out once per request however many fields (or
        aliases of one field) ask for it."""
        shared = self._once.get(key)
        if shared is None:
            shared = self._once[key] = asyncio.ensure_future(make())
        return cast(T, await asyncio.shield(shared))


Info = StrawberryInfo[Context, None]
