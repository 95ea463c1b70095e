"""The abuse limits of the GraphQL stage (``gateway.limits``), each checked as soon as what
it needs is known, before the work it guards:

- ``LimitedParsing``: parsing stops at the first token over ``max_tokens``
  (``TOKEN_LIMIT``), as graphql-core's ``max_tokens`` does, before the rest is read;
- ``OperationLimits``, once the document is parsed and before it is validated: its shape
  (``gateway.limits.document``) and its static cost estimate (``gateway.limits.cost``);
  before it runs, the principal's cost budget for the window (``RATE_LIMITED``, 429).

Both checks are pure functions of the document and its variables, so what they said of a
document that passed is remembered (``Checked``): a client sending the same operation with
the same variables again (a dashboard polling, a write retried under its key) is not walked
again.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping

from graphql import DocumentNode, GraphQLSchema, GraphQLSyntaxError
from strawberry.extensions import ParserCache, SchemaExtension

from gateway.auth.principal import Principal
from gateway.limits.cost import estimate
from gateway.limits.document import check_document
from gateway.limits.errors import CostLimit, RateLimited, TokenLimit
from gateway.limits.windows import Windows, holder, rates
from gateway.settings import LimitSettings


class LimitedParsing(ParserCache):
    """Strawberry's parser cache, with the token limit."""

    def __init__(self, max_tokens: int, maxsize: int = 256) -> None:
        super().__init__(maxsize=maxsize)
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        options = {**context.parse_options, "max_tokens": self.max_tokens}
        try:
            context.graphql_document = self.cached_parse_document(context.query, **options)
        except GraphQLSyntaxError as error:
            # graphql-core's words for its token limit (language/parser.py).
            if error.message.endswith(f" more than {self.max_tokens} tokens. Parsing aborted."):
                raise TokenLimit(
                    f"The document has more than {self.max_tokens} tokens, the limit."
                ) from None
            raise
        yield


class Checked:
    """The estimated costs of the ``size`` documents that passed the shape and cost limits
    last, by their text and variables. Variables longer than ``MAX_KEY`` as JSON are not
    remembered (a key that size would cost more to keep than the walk it saves)."""

    MAX_KEY = 4096

    def __init__(self, limits: LimitSettings, size: int = 256) -> None:
        self.limits = limits
        self.size = size
        self._costs: OrderedDict[tuple[str, str], int] = OrderedDict()

    def cost(
        self,
        schema: GraphQLSchema,
        query: str | None,
        document: DocumentNode,
        variables: Mapping[str, object] | None,
    ) -> int:
        """The document's estimated cost; raises the first limit it exceeds."""
        key = self._key(query, variables)
        if key is not None and (known := self._costs.get(key)) is not None:
            self._costs.move_to_end(key)
            return known
        check_document(document, variables, self.limits)
        cost = estimate(schema, document, variables, self.limits.default_list_size)
        if cost > self.limits.max_cost:
            raise CostLimit(
                f"The operation's estimated cost is {cost}; the limit is {self.limits.max_cost}."
            )
        if key is not None:
            self._costs[key] = cost
            while len(self._costs) > self.size:
                self._costs.popitem(last=False)
        return cost

    def _key(
        self, query: str | None, variables: Mapping[str, object] | None
    ) -> tuple[str, str] | None:
        if query is None:
            return None
        try:
            given = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        return (query, given) if len(given) <= self.MAX_KEY else None


class OperationLimits(SchemaExtension):
    def __init__(self, limits: LimitSettings, windows: Windows | None, checked: Checked) -> None:
        self.limits = limits
        self.windows = windows
        self.checked = checked
        self.cost = 0

    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        document = context.graphql_document
        if document is None:
            return
        schema = context.schema._schema
        self.cost = self.checked.cost(schema, context.query, document, context.variables)

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if hasattr(context, "cost"):  # what an answer served again costs (gateway.data.responses)
            context.cost = self.cost
        await spend(self.windows, self.limits, getattr(context, "principal", None), self.cost)
        yield


async def spend(
    windows: Windows | None, limits: LimitSettings, principal: Principal | None, cost: int
) -> None:
    """Spends ``cost`` of ``principal``'s budget for the window; raises ``RateLimited`` when
    it is spent."""
    if windows is None or principal is None or cost <= 0:
        return
    wait = await windows.spend(rates(limits.cost_budget), holder(principal), cost)
    if wait is not None:
        raise RateLimited(
            f"The cost budget is spent: the limit is {limits.cost_budget}", retry_after=wait
        )
