"""The customer crosswalk: which ids in which systems are one customer. opsgraph owns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.models import SystemName
from gateway.errors import BadUserInput
from gateway.storage.tables import Customer, ExternalId


@dataclass(frozen=True)
class CustomerIdentity:
    id: str
    name: str
    external_ids: Mapping[SystemName, str]


class Crosswalk:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _identities(
        self, session: AsyncSession, ids: Sequence[str]
    ) -> list[CustomerIdentity]:
        customers = (await session.scalars(select(Customer).where(Customer.id.in_(ids)))).all()
        links = (
            await session.scalars(select(ExternalId).where(ExternalId.customer_id.in_(ids)))
        ).all()
        by_customer: dict[str, dict[SystemName, str]] = {}
        for link in links:
            by_customer.setdefault(link.customer_id, {})[SystemName(link.system)] = link.external_id
        return [CustomerIdentity(c.id, c.name, by_customer.get(c.id, {})) for c in customers]

    async def get_many(self, ids: Sequence[str]) -> list[CustomerIdentity | None]:
        """Identities in the order of ``ids``; None where there is no such customer."""
        async with self._sessions() as session:
            found = {c.id: c for c in await self._identities(session, list(set(ids)))}
        return [found.get(i) for i in ids]

    async def by_external_id(self, system: SystemName, external_id: str) -> CustomerIdentity | None:
        async with self._sessions() as session:
            customer_id = await session.scalar(
                select(ExternalId.customer_id).where(
                    ExternalId.system == system.value, ExternalId.external_id == external_id
                )
            )
            if customer_id is None:
                return None
            return (await self._identities(session, [customer_id]))[0]

    async def page(
        self, first: int, after: str | None, name_contains: str | None = None
    ) -> tuple[list[CustomerIdentity], bool]:
        """Customers ordered by id after the cursor id; True when more follow."""
        query = select(Customer.id).order_by(Customer.id).limit(first + 1)
        if after is not None:
            query = query.where(Customer.id > after)
        if name_contains:
            query = query.where(Customer.name.icontains(name_contains, autoescape=True))
        async with self._sessions() as session:
            ids = list((await session.scalars(query)).all())
            identities = {c.id: c for c in await self._identities(session, ids[:first])}
        return [identities[i] for i in ids[:first]], len(ids) > first

    async def link(
        self, customer_id: str, name: str, external_ids: Mapping[SystemName, str]
    ) -> None:
        """Create or update a customer and its external ids (used by seeding and imports)."""
        if SystemName.OPSGRAPH in external_ids:
            raise BadUserInput("opsgraph ids are not external ids")
        async with self._sessions.begin() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                session.add(Customer(id=customer_id, name=name))
            else:
                customer.name = name
            existing = {
                link.system: link
                for link in (
                    await session.scalars(
                        select(ExternalId).where(ExternalId.customer_id == customer_id)
                    )
                ).all()
            }
            for system, external_id in external_ids.items():
                link = existing.get(system.value)
                if link is None:
                    session.add(
                        ExternalId(
                            customer_id=customer_id, system=system.value, external_id=external_id
                        )
                    )
                else:
                    link.external_id = external_id
