"""The customer 360: one customer assembled from the crosswalk and the four systems."""

from __future__ import annotations

import asyncio
from datetime import date

import strawberry

from connectors import inputs
from connectors.models import Account, Case, ObjectKind
from gateway.auth.scopes import Scope, needs
from gateway.data.crosswalk import CustomerIdentity
from gateway.data.reads import Sourced
from gateway.errors import NotFound
from gateway.logs import quoted
from gateway.rules import customer_health
from gateway.rules.entitlements import entitlements
from resolvers.case import CaseType
from resolvers.context import Info
from resolvers.credit import CreditRequestType
from resolvers.entitlement import EntitlementType
from resolvers.enums import CaseStatus, InvoiceStatus, SystemName
from resolvers.invoice import BalanceType, InvoiceType
from resolvers.pagination import Connection, check_first
from resolvers.provenance import ProvenanceType
from resolvers.reconciliation import ReconciliationExceptionType
from resolvers.selection import selects
from resolvers.subscription import SubscriptionType, plans_for


@strawberry.type(name="ExternalId", description="This customer's id in one system of record.")
class ExternalIdType:
    system: SystemName
    id: str


@strawberry.interface(description="An object with a globally unique id.")
class Node:
    id: strawberry.ID


@strawberry.federation.type(
    name="Account",
    description="The commercial account, owned by the CRM.",
    requires_scopes=needs(Scope.CUSTOMERS_READ),
)
class AccountType:
    id: strawberry.ID
    name: str
    segment: str | None
    owner: str | None
    strategic: bool
    renewal_date: date | None
    health_score: int | None
    source: ProvenanceType

    @classmethod
    def of(cls, a: Account, sourced: Sourced[Account | None]) -> AccountType:
        return cls(
            id=strawberry.ID(a.id),
            name=a.name,
            segment=a.segment,
            owner=a.owner,
            strategic=a.strategic,
            renewal_date=a.renewal_date,
            health_score=a.health_score,
            source=ProvenanceType.of(sourced),
        )


@strawberry.federation.type(
    name="CustomerHealth",
    description="How the customer is doing: the CRM score and risks.",
    requires_scopes=needs(Scope.CUSTOMERS_READ),
)
class CustomerHealthType:
    score: int | None = strawberry.field(description="The CRM health score (0-100).")
    at_risk: bool
    signals: list[str]


@strawberry.federation.type(
    name="Customer",
    keys=["id"],
    description="One customer across every system. A field a system of record owns is "
    "nullable: when that system fails, the field is null and errors[] says why.",
    requires_scopes=needs(Scope.CUSTOMERS_READ),
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

    def _id_in(self, info: Info, kind: ObjectKind) -> str | None:
        """This customer's id in the system that owns ``kind``."""
        return info.context.loaders.id_in(self.identity, kind)

    @strawberry.field(description="The crosswalk entry this view is assembled from.")
    def source(self) -> ProvenanceType:
        return ProvenanceType(
            system=SystemName.OPSGRAPH,
            external_id=self.identity.id,
            fetched_at=self.identity.read_at,
            cached=self.identity.cached,
            stale=False,
        )

    async def _account(self, info: Info) -> tuple[Account, Sourced[Account | None]] | None:
        crm_id = self._id_in(info, ObjectKind.ACCOUNT)
        if crm_id is None:
            return None
        sourced = await info.context.loaders.account(crm_id)
        return None if sourced.value is None else (sourced.value, sourced)

    @strawberry.field(description="The CRM account.")
    async def account(self, info: Info) -> AccountType | None:
        found = await self._account(info)
        return None if found is None else AccountType.of(*found)

    @strawberry.field(description="Subscriptions in the billing system.")
    async def subscriptions(self, info: Info) -> list[SubscriptionType] | None:
        billing_id = self._id_in(info, ObjectKind.SUBSCRIPTION)
        if billing_id is None:
            return []
        sourced = await info.context.loaders.subscriptions(billing_id)
        return [SubscriptionType.of(s, sourced) for s in sourced.value]

    @strawberry.field(description="Features the customer may use now, from its plans.")
    async def entitlements(self, info: Info) -> list[EntitlementType] | None:
        billing_id = self._id_in(info, ObjectKind.SUBSCRIPTION)
        if billing_id is None:
            return []
        sourced = await info.context.loaders.subscriptions(billing_id)
        plans = await plans_for(info, sourced.value)
        source = ProvenanceType.of(sourced)
        held = entitlements(sourced.value, {i: s.value for i, s in plans.items()})
        return [EntitlementType.of(e, source) for e in held]

    @strawberry.federation.field(
        description="Billing invoices, newest first, each with its ERP posting.",
        requires_scopes=needs(Scope.BILLING_READ),
    )
    async def invoices(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: InvoiceStatus | None = None,
    ) -> Connection[InvoiceType] | None:
        check_first(first)
        loaders = info.context.loaders
        erp_id = self._id_in(info, ObjectKind.POSTING)
        if erp_id is not None and selects(info, "posting", "postings", "postingStatus"):
            # The ERP postings depend on the customer, not on the invoices: fetch them in
            # parallel with billing rather than after it.
            loaders.prime_postings(erp_id)
        billing_id = self._id_in(info, ObjectKind.INVOICE)
        if billing_id is None:
            return Connection.empty()
        sourced = await loaders.invoices(billing_id)
        invoices = sorted(
            (i for i in sourced.value if status is None or i.status is status),
            key=lambda i: (i.issued_at, i.id),
            reverse=True,
        )
        return Connection.page(
            invoices, first, after, lambda i: i.id, lambda i: InvoiceType.of(i, sourced, erp_id)
        )

    @strawberry.field(description="The receivable balance in the ERP.")
    async def balance(self, info: Info) -> BalanceType | None:
        erp_id = self._id_in(info, ObjectKind.BALANCE)
        if erp_id is None:
            return None
        sourced = await info.context.loaders.balance(erp_id)
        return None if sourced.value is None else BalanceType.of(sourced.value, sourced)

    async def _cases(self, info: Info) -> Sourced[list[Case]] | None:
        support_id = self._id_in(info, ObjectKind.CASE)
        return None if support_id is None else await info.context.loaders.cases(support_id)

    @strawberry.federation.field(
        description="Support cases, newest first.", requires_scopes=needs(Scope.CASES_READ)
    )
    async def cases(
        self,
        info: Info,
        status: list[CaseStatus] | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[CaseType] | None:
        check_first(first)
        sourced = await self._cases(info)
        if sourced is None:
            return Connection.empty()
        wanted = None if status is None else set(status)
        cases = sorted(
            (c for c in sourced.value if wanted is None or c.status in wanted),
            key=lambda c: (c.created_at, c.id),
            reverse=True,
        )
        return Connection.page(
            cases, first, after, lambda c: c.id, lambda c: CaseType.of(c, sourced)
        )

    @strawberry.field(description="Service credit requests, newest first.")
    async def credits(self, info: Info) -> list[CreditRequestType]:
        found = await info.context.loaders.credits(self.identity.id)
        return [CreditRequestType.of(c) for c in found]

    @strawberry.field(description="Open reconciliation exceptions, largest impact first.")
    async def open_exceptions(self, info: Info) -> list[ReconciliationExceptionType]:
        found = await info.context.loaders.open_exceptions(self.identity.id)
        return [ReconciliationExceptionType.of(e) for e in found]

    # Its signals count open and breached cases: it needs what the cases need.
    @strawberry.federation.field(
        description="The CRM health score and the risks opsgraph sees.",
        requires_scopes=needs(Scope.CUSTOMERS_READ, Scope.CASES_READ),
    )
    async def health(self, info: Info) -> CustomerHealthType | None:
        account, cases = await asyncio.gather(self._account(info), self._cases(info))
        assessed = customer_health.assess(
            None if account is None else account[0],
            [] if cases is None else cases.value,
            inputs.today(),
        )
        return CustomerHealthType(
            score=assessed.score, at_risk=assessed.at_risk, signals=assessed.signals
        )


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
        self, info: Info, system: SystemName, external_id: str
    ) -> CustomerType:
        identity = await info.context.loaders.customer_by_external_id(system, external_id)
        if identity is None:
            raise NotFound(f"no customer is {quoted(external_id)} in {system.value}")
        return CustomerType.of(identity)

    @strawberry.federation.field(
        description="Customers ordered by id, as a Relay connection.",
        requires_scopes=needs(Scope.CUSTOMERS_READ),
    )
    async def customers(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: CustomerFilter | None = None,
    ) -> Connection[CustomerType]:
        check_first(first)
        name = filter.name_contains if filter else None
        page, more, total = await info.context.loaders.customer_page(first, after, name)
        return Connection.of(page, more, total, cursor=lambda c: c.id, node=CustomerType.of)

    @strawberry.federation.field(
        description="Any object by its global id (customers today).",
        requires_scopes=needs(Scope.CUSTOMERS_READ),
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node:
        identity = await info.context.loaders.customer(str(id))
        if identity is None:
            raise NotFound(f"no node with id {quoted(id)}")
        return CustomerType.of(identity)
