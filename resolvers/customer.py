"""The customer 360: one customer assembled from the crosswalk and the four systems."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import strawberry

from connectors.models import Case, Invoice, ObjectKind, Subscription, SystemName
from gateway.crosswalk import CustomerIdentity
from gateway.entitlements import entitlements
from gateway.errors import BadUserInput, NotFound
from gateway.logs import quoted
from gateway.reads import Sourced
from resolvers.account import AccountType
from resolvers.billing import (
    CustomerSubscription,
    EntitlementType,
    InvoiceConnection,
    InvoiceEdge,
    InvoiceType,
    PageInfo,
)
from resolvers.context import Info
from resolvers.enums import SystemNameEnum
from resolvers.erp import BalanceType
from resolvers.health import CustomerHealth, assess
from resolvers.owned import CreditRequestType, ReconciliationExceptionType
from resolvers.plans import plans_for, values
from resolvers.provenance import ProvenanceType
from resolvers.selection import selects
from resolvers.support import CaseStatus, CaseType

MAX_PAGE = 200


@strawberry.type(name="ExternalId", description="This customer's id in one system of record.")
class ExternalIdType:
    system: SystemNameEnum  # type: ignore[valid-type]
    id: str


@strawberry.interface(description="An object with a globally unique id.")
class Node:
    id: strawberry.ID


@strawberry.federation.type(
    name="Customer",
    keys=["id"],
    description="One customer across every system. A field a system of record owns is "
    "nullable: when that system fails, the field is null and errors[] says why.",
)
class CustomerType(Node):
    id: strawberry.ID
    name: str
    external_ids: list[ExternalIdType]
    identity: strawberry.Private[CustomerIdentity]

    @classmethod
    def of(cls, identity: CustomerIdentity) -> CustomerType:
        return cls(
            id=strawberry.ID(identity.id),
            name=identity.name,
            external_ids=[
                ExternalIdType(system=system, id=external_id)
                for system, external_id in sorted(identity.external_ids.items())
            ],
            identity=identity,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> CustomerType | None:
        identity = await info.context.loaders.customer(str(id))
        return None if identity is None else cls.of(identity)

    def _id_in(self, system: SystemName) -> str | None:
        return self.identity.external_ids.get(system)

    async def _related(
        self, info: Info, system: SystemName, kind: ObjectKind
    ) -> Sourced[list[Any]] | None:
        """This customer's records of ``kind`` in ``system``; None when it has no id there."""
        parent = self._id_in(system)
        if parent is None:
            return None
        return await info.context.loaders.related(system, kind, parent)

    @strawberry.field(description="The crosswalk entry this view is assembled from.")
    def source(self) -> ProvenanceType:
        return ProvenanceType(
            system=SystemName.OPSGRAPH,
            external_id=self.identity.id,
            fetched_at=datetime.now(UTC),
            cached=False,
            stale=False,
        )

    @strawberry.field(description="The CRM account.")
    async def account(self, info: Info) -> AccountType | None:
        crm_id = self._id_in(SystemName.CRM)
        if crm_id is None:
            return None
        sourced = await info.context.loaders.record(SystemName.CRM, ObjectKind.ACCOUNT, crm_id)
        return None if sourced.value is None else AccountType.of(sourced)

    @strawberry.field(description="Subscriptions in the billing system.")
    async def subscriptions(self, info: Info) -> list[CustomerSubscription] | None:
        sourced = await self._related(info, SystemName.BILLING, ObjectKind.SUBSCRIPTION)
        if sourced is None:
            return []
        return [CustomerSubscription.of(s, sourced) for s in sourced.value]

    @strawberry.field(description="Features the customer may use now, from its plans.")
    async def entitlements(self, info: Info) -> list[EntitlementType] | None:
        sourced = await self._related(info, SystemName.BILLING, ObjectKind.SUBSCRIPTION)
        if sourced is None:
            return []
        subs: list[Subscription] = sourced.value
        plans = await plans_for(info, subs)
        source = ProvenanceType.of(sourced)
        return [EntitlementType.of(e, source) for e in entitlements(subs, values(plans))]

    @strawberry.field(description="Billing invoices, newest first, each with its ERP posting.")
    async def invoices(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: str | None = None,
    ) -> InvoiceConnection | None:
        if not 0 < first <= MAX_PAGE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
        erp_id = self._id_in(SystemName.ERP)
        if erp_id is not None and selects(info, "posting", "postings", "postingStatus"):
            # The ERP postings depend on the customer, not on the invoices: fetch them in
            # parallel with billing rather than after it.
            info.context.loaders.prime_related(SystemName.ERP, ObjectKind.POSTING, erp_id)
        sourced = await self._related(info, SystemName.BILLING, ObjectKind.INVOICE)
        if sourced is None:
            return InvoiceConnection(
                edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None), total_count=0
            )
        invoices: list[Invoice] = sorted(
            (i for i in sourced.value if status is None or i.status == status),
            key=lambda i: (i.issued_at, i.id),
            reverse=True,
        )
        start = 0
        if after is not None:
            ids = [i.id for i in invoices]
            if after not in ids:
                raise BadUserInput(f"unknown cursor {quoted(after)}")
            start = ids.index(after) + 1
        page = invoices[start : start + first]
        edges = [InvoiceEdge(cursor=i.id, node=InvoiceType.of(i, sourced, erp_id)) for i in page]
        return InvoiceConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=start + first < len(invoices),
                end_cursor=page[-1].id if page else None,
            ),
            total_count=len(invoices),
        )

    @strawberry.field(description="The receivable balance in the ERP.")
    async def balance(self, info: Info) -> BalanceType | None:
        erp_id = self._id_in(SystemName.ERP)
        if erp_id is None:
            return None
        sourced = await info.context.loaders.record(SystemName.ERP, ObjectKind.BALANCE, erp_id)
        return None if sourced.value is None else BalanceType.of(sourced)

    async def _cases(self, info: Info) -> list[Case]:
        sourced = await self._related(info, SystemName.SUPPORT, ObjectKind.CASE)
        return [] if sourced is None else sourced.value

    @strawberry.field(description="Support cases, newest first.")
    async def cases(
        self, info: Info, status: list[CaseStatus] | None = None, first: int = 20
    ) -> list[CaseType] | None:
        if not 0 < first <= MAX_PAGE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
        sourced = await self._related(info, SystemName.SUPPORT, ObjectKind.CASE)
        if sourced is None:
            return []
        wanted = None if status is None else {s.value for s in status}
        cases = sorted(
            (c for c in sourced.value if wanted is None or c.status in wanted),
            key=lambda c: (c.created_at, c.id),
            reverse=True,
        )
        return [CaseType.of(c, sourced) for c in cases[:first]]

    @strawberry.field(description="Service credit requests, newest first.")
    async def credits(self, info: Info) -> list[CreditRequestType]:
        rows = await info.context.loaders.credits(self.identity.id)
        return [CreditRequestType.of(r) for r in rows]

    @strawberry.field(description="Open reconciliation exceptions, largest impact first.")
    async def open_exceptions(self, info: Info) -> list[ReconciliationExceptionType]:
        rows = await info.context.loaders.open_exceptions(self.identity.id)
        return [ReconciliationExceptionType.of(r) for r in rows]

    @strawberry.field(description="The CRM health score and the risks opsgraph sees.")
    async def health(self, info: Info) -> CustomerHealth | None:
        account, cases = await asyncio.gather(self.account(info), self._cases(info))
        return assess(account, cases, datetime.now(UTC).date())


@strawberry.type
class CustomerEdge:
    cursor: str
    node: CustomerType


@strawberry.type
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo


@strawberry.input
class CustomerFilter:
    name_contains: str | None = None


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="One customer by its opsgraph id.")
    async def customer(self, info: Info, id: strawberry.ID) -> CustomerType:
        identity = await info.context.loaders.customer(str(id))
        if identity is None:
            raise NotFound(f"no customer with id {quoted(id)}")
        return CustomerType.of(identity)

    @strawberry.field(description="One customer by its id in a system of record.")
    async def customer_by_external_id(
        self,
        info: Info,
        system: SystemNameEnum,  # type: ignore[valid-type]
        external_id: str,
    ) -> CustomerType:
        identity = await info.context.services.crosswalk.by_external_id(
            SystemName(system), external_id
        )
        if identity is None:
            raise NotFound(f"no customer is {quoted(external_id)} in {SystemName(system).value}")
        return CustomerType.of(identity)

    @strawberry.field(description="Customers ordered by id, as a Relay connection.")
    async def customers(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: CustomerFilter | None = None,
    ) -> CustomerConnection:
        if not 0 < first <= MAX_PAGE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
        name = filter.name_contains if filter else None
        page, more = await info.context.services.crosswalk.page(first, after, name_contains=name)
        return CustomerConnection(
            edges=[CustomerEdge(cursor=c.id, node=CustomerType.of(c)) for c in page],
            page_info=PageInfo(has_next_page=more, end_cursor=page[-1].id if page else None),
        )

    @strawberry.field(description="Any object by its global id (customers today).")
    async def node(self, info: Info, id: strawberry.ID) -> Node:
        identity = await info.context.loaders.customer(str(id))
        if identity is None:
            raise NotFound(f"no node with id {quoted(id)}")
        return CustomerType.of(identity)
