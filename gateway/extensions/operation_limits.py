"""The abuse limits of the GraphQL stage (``gateway.limits``), each checked as soon as what
it needs is known, before the work it guards:

- ``LimitedParsing``: parsing stops at the first token over ``max_tokens``
  (``TOKEN_LIMIT``), as graphql-core's ``max_tokens`` does, before the rest is read;
- ``OperationLimits``, once the document is parsed and before it is validated: its shape
  (``gateway.limits.document``) and its static cost estimate (``gateway.limits.cost``);
  before it runs, the principal's cost budget for the window (``RATE_LIMITED``, 429).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLSyntaxError
from strawberry.extensions import ParserCache, SchemaExtension

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


class OperationLimits(SchemaExtension):
    def __init__(self, limits: LimitSettings, windows: Windows | None = None) -> None:
        self.limits = limits
        self.windows = windows
        self.budget = rates(limits.cost_budget)
        self.cost = 0

    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        document = context.graphql_document
        if document is None:
            return
        check_document(document, context.variables, self.limits)
        schema = context.schema._schema
        self.cost = estimate(schema, document, context.variables, self.limits.default_list_size)
        if self.cost > self.limits.max_cost:
            raise CostLimit(
                f"The operation's estimated cost is {self.cost}; the limit is "
                f"{self.limits.max_cost}."
            )

    async def on_execute(self) -> AsyncIterator[None]:
        principal = getattr(self.execution_context.context, "principal", None)
        if self.windows is not None and principal is not None and self.cost > 0:
            wait = await self.windows.spend(self.budget, holder(principal), self.cost)
            if wait is not None:
                raise RateLimited(
                    f"The cost budget is spent: the limit is {self.limits.cost_budget}",
                    retry_after=wait,
                )
        yield
