"""What a resolver may use: the gateway's services, built once per process, and the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as StrawberryInfo

from gateway.services import Services
from resolvers.loaders import Loaders


@dataclass
class Context:
    services: Services
    request: Any = None
    response: Any = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services)


Info = StrawberryInfo[Context, None]
