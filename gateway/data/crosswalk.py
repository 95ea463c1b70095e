"""The customer crosswalk: which ids in which systems are one customer. opsgraph owns it.

Every read takes the legal entities its principal may see (``Principal.entities``; None:
all of them): a customer of another entity is not there, in a lookup as in a page and its
count. Tenancy is decided here, in the query, not in each resolver."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.models import SystemName
from gateway.data.remembered import Kind, Remembered
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.logs import quoted
from gateway.storage.tables import Customer, ExternalId

# The legal entities a read may see; None: every one.
Entities = Collection[str] | None


@dataclass(frozen=True)
class CustomerIdentity:
    id: str
    name: str
    external_ids: Mapping[SystemName, str]
    legal_entity: str | None = None
    # When it was read from the database, and whether it came from what this process
    # remembers of it (``gateway.data.remembered``) rather than from that read just now.
    # Not part of who the customer is: two reads of one customer are equal.
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)
    cached: bool = field(default=False, compare=False)


def _seen(identity: CustomerIdentity | None, entities: Entities) -> CustomerIdentity | None:
    """``identity``, if ``entities`` may see it (as ``_visible`` decides in SQL)."""
    if identity is None or entities is None or identity.legal_entity in entities:
        return identity
    return None


def _visible(customers: Select[Any], entities: Entities) -> Select[Any]:
    """``customers`` (a select from ``Customer``) without the customers ``entities`` hides."""
    if entities is None:
        return customers
    return customers.where(Customer.legal_entity.in_(sorted(entities)))


class Crosswalk:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        remembered: Remembered | None = None,
    ) -> None:
        self._sessions = sessions
        # By id, what ``get_many`` read (every customer 360 starts there); nothing when
        # not given one.
        self.remembered = remembered or Remembered(ttl_s=0)

    async def _read(self, session: AsyncSession, customers: Select[Any]) -> list[CustomerIdentity]:
        """The identities of the customers ``customers`` selects (ids), in its order: one
        statement, customers joined to their external ids (every request starts here)."""
        chosen = customers.subquery()
        rows = await session.execute(
            select(
                Customer.id,
                Customer.name,
                Customer.legal_entity,
                ExternalId.system,
                ExternalId.external_id,
            )
            .join(chosen, chosen.c.id == Customer.id)
            .outerjoin(ExternalId, ExternalId.customer_id == Customer.id)
            .order_by(Customer.id)
        )
        found: dict[str, tuple[str, str | None]] = {}
        links: dict[str, dict[SystemName, str]] = {}
        for id_, name, entity, system, external_id in rows:
            found[id_] = name, entity
            ids = links.setdefault(id_, {})
            if system is not None:
                ids[SystemName(system)] = external_id
        return [
            CustomerIdentity(id_, name, links[id_], entity) for id_, (name, entity) in found.items()
        ]

    async def get_many(
        self, ids: Sequence[str], *, entities: Entities
    ) -> list[CustomerIdentity | None]:
        """Identities in the order of ``ids``; None where there is no such customer (or
        ``entities`` hides it). Those read lately are answered from memory."""
        memory = self.remembered
        found: dict[str, CustomerIdentity | None] = {}
        unique = set(ids)
        for id_ in unique:
            kept = memory.get(Kind.IDENTITIES, id_)
            if kept is not None:
                identity = kept.value
                found[id_] = None if identity is None else replace(identity, cached=True)
        missing = [i for i in unique if i not in found]
        if missing:
            generation = memory.generation
            async with self._sessions() as session:
                wanted = select(Customer.id).where(Customer.id.in_(missing))
                read = {c.id: c for c in await self._read(session, wanted)}
            now = datetime.now(UTC)
            for id_ in missing:
                identity = read.get(id_)
                found[id_] = identity
                at = identity.read_at if identity else now
                memory.put(Kind.IDENTITIES, id_, identity, at, generation)
        return [_seen(found.get(i), entities) for i in ids]

    async def by_external_id(
        self, system: SystemName, external_id: str, *, entities: Entities
    ) -> CustomerIdentity | None:
        linked = (
            select(Customer.id)
            .join(ExternalId, ExternalId.customer_id == Customer.id)
            .where(ExternalId.system == system.value, ExternalId.external_id == external_id)
        )
        async with self._sessions() as session:
            found = await self._read(session, _visible(linked, entities))
        return found[0] if found else None

    async def customer_ids(
        self, pairs: Collection[tuple[SystemName, str]]
    ) -> dict[tuple[SystemName, str], str]:
        """The opsgraph customer id of each (system, external id) the crosswalk links,
        whatever the legal entity (what the gateway itself looks up): from what this
        process remembers, and the rest in one statement."""
        memory = self.remembered
        found: dict[tuple[SystemName, str], str | None] = {}
        for pair in pairs:
            kept = memory.get(Kind.LINKS, _link_key(*pair))
            if kept is not None:
                found[pair] = kept.value
        missing = [pair for pair in pairs if pair not in found]
        if missing:
            generation = memory.generation
            wanted = [(system.value, external_id) for system, external_id in missing]
            query = select(ExternalId.system, ExternalId.external_id, ExternalId.customer_id).where(
                tuple_(ExternalId.system, ExternalId.external_id).in_(wanted)
            )
            async with self._sessions() as session:
                rows = await (await session.connection()).execute(query)
            read = {(SystemName(system), ext): customer for system, ext, customer in rows}
            now = datetime.now(UTC)
            for pair in missing:
                found[pair] = read.get(pair)
                memory.put(Kind.LINKS, _link_key(*pair), found[pair], now, generation)
        return {pair: customer for pair, customer in found.items() if customer is not None}

    async def page(
        self,
        first: int,
        after: str | None,
        name_contains: str | None = None,
        *,
        entities: Entities,
    ) -> tuple[list[CustomerIdentity], bool, int]:
        """Customers ordered by id after the cursor id; True when more follow; how many
        there are in all (matching ``name_contains``)."""
        matching = _visible(select(Customer.id), entities)
        if name_contains:
            matching = matching.where(Customer.name.icontains(name_contains, autoescape=True))
        query = matching.order_by(Customer.id).limit(first + 1)
        if after is not None:
            query = query.where(Customer.id > after)
        async with self._sessions() as session:
            identities = await self._read(session, query)
            total = await session.scalar(select(func.count()).select_from(matching.subquery()))
        return identities[:first], len(identities) > first, total or 0

    async def link(
        self,
        customer_id: str,
        name: str,
        external_ids: Mapping[SystemName, str],
        legal_entity: str | None = None,
    ) -> None:
        """Create or update a customer, its legal entity and its external ids (used by
        seeding and imports). A customer without a legal entity is seen only by
        principals not limited to any."""
        if SystemName.OPSGRAPH in external_ids:
            raise BadUserInput("opsgraph ids are not external ids")
        async with self._sessions.begin() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                session.add(Customer(id=customer_id, name=name, legal_entity=legal_entity))
            else:
                customer.name, customer.legal_entity = name, legal_entity
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
        await self.remembered.forget(Kind.IDENTITIES, [customer_id])
        # The ids it was and is now: seeding and imports, rare enough to forget every link.
        await self.remembered.forget(Kind.LINKS)

    async def attach(self, customer_id: str, system: SystemName, external_id: str) -> None:
        """Record that ``customer_id`` is ``external_id`` in ``system``. Linking what is
        already linked changes nothing; an id that is another customer's, or a second id
        in one system, is a ``Conflict``."""
        if system is SystemName.OPSGRAPH:
            raise BadUserInput("opsgraph ids are not external ids")
        if not external_id or len(external_id) > 255:
            raise BadUserInput("an external id has 1 to 255 characters")
        try:
            async with self._sessions.begin() as session:
                if await session.get(Customer, customer_id) is None:
                    raise NotFound(f"no customer with id {quoted(customer_id)}")
                links = await session.scalars(
                    select(ExternalId).where(
                        ExternalId.system == system.value,
                        (ExternalId.customer_id == customer_id)
                        | (ExternalId.external_id == external_id),
                    )
                )
                for link in links:
                    if link.customer_id == customer_id and link.external_id == external_id:
                        return
                    if link.customer_id == customer_id:
                        raise Conflict(
                            f"{customer_id} is already {quoted(link.external_id)} in "
                            f"{system.value}: unlink it first"
                        )
                    raise Conflict(
                        f"{quoted(external_id)} in {system.value} is customer {link.customer_id}"
                    )
                added = ExternalId(customer_id=customer_id, system=system.value)
                added.external_id = external_id
                session.add(added)
        except IntegrityError:
            # Linked by another request between the check and the insert.
            raise Conflict(
                f"{quoted(external_id)} in {system.value} was linked at the same time"
            ) from None
        await self.remembered.forget(Kind.IDENTITIES, [customer_id])
        await self.remembered.forget(Kind.LINKS, [_link_key(system, external_id)])

    async def detach(self, customer_id: str, system: SystemName) -> str:
        """Forget ``customer_id``'s id in ``system``; answers the id it was."""
        async with self._sessions.begin() as session:
            link = await session.scalar(
                select(ExternalId).where(
                    ExternalId.customer_id == customer_id, ExternalId.system == system.value
                )
            )
            if link is None:
                raise NotFound(f"{customer_id} has no id in {system.value}")
            await session.delete(link)
            was = link.external_id
        await self.remembered.forget(Kind.IDENTITIES, [customer_id])
        await self.remembered.forget(Kind.LINKS, [_link_key(system, was)])
        return was


def _link_key(system: SystemName, external_id: str) -> str:
    return f"{system.value}:{external_id}"
