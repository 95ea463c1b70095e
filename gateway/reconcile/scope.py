"""What a reconciliation run covers: which systems it compares, which legal entities and
which accounting periods (calendar months)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

from connectors.models import SystemName
from gateway.errors import BadUserInput

# A run covers at most two years: a longer range is a mistake more often than a need, and
# each period costs a read of both systems.
MAX_PERIODS = 24
# What is compared with what: billing with the ERP, and the ERP with its shadow (the old one,
# during a cut-over).
PAIRS = ((SystemName.BILLING, SystemName.ERP), (SystemName.ERP, SystemName.ERP_SHADOW))
_PERIOD = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """An accounting period: one calendar month."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        matched = _PERIOD.fullmatch(text.strip())
        if matched is None or not (1 <= int(matched["month"]) <= 12 and matched["year"] >= "1970"):
            raise BadUserInput(f"{text!r} is not an accounting period: write YYYY-MM (2026-11)")
        return cls(int(matched["year"]), int(matched["month"]))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def shifted(self, months: int) -> Period:
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Scope:
    """``entities`` empty: every legal entity. Periods ``first`` to ``last``, inclusive."""

    first: Period
    last: Period
    entities: tuple[str, ...] = ()
    source: SystemName = SystemName.BILLING
    target: SystemName = SystemName.ERP
    # How many periods a posting may be dated away from its invoice and still be found as
    # mis-dated rather than missing: the target is read this many periods either side.
    slack: int = field(default=1, compare=False)

    def __post_init__(self) -> None:
        if (self.source, self.target) not in PAIRS:
            pairs = ", ".join(f"{s.value} with {t.value}" for s, t in PAIRS)
            raise BadUserInput(
                f"{self.source.value} is not reconciled with {self.target.value}: {pairs} are"
            )
        if self.last < self.first:
            raise BadUserInput(f"the period range {self.first} to {self.last} is empty")
        span = (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        if span > MAX_PERIODS:
            raise BadUserInput(f"a run covers at most {MAX_PERIODS} periods, not {span}")
        if any(not e.strip() for e in self.entities):
            raise BadUserInput("a legal entity's name cannot be blank")
        object.__setattr__(self, "entities", tuple(sorted(set(self.entities))))

    @property
    def periods(self) -> list[Period]:
        out, at = [], self.first
        while at <= self.last:
            out.append(at)
            at = at.shifted(1)
        return out

    def covers(self, day: date) -> bool:
        return self.first <= Period.of(day) <= self.last

    def covers_entity(self, entity: str | None) -> bool:
        return not self.entities or entity in self.entities

    def seen_by(self, entities: Collection[str] | None) -> bool:
        """Whether one limited to ``entities`` (None: every one) may see a run over this
        scope: only a run over its own entities, named."""
        return entities is None or (bool(self.entities) and set(self.entities) <= set(entities))

    def overlaps(self, other: Scope) -> bool:
        same_systems = (self.source, self.target) == (other.source, other.target)
        periods = self.first <= other.last and other.first <= self.last
        entities = not self.entities or not other.entities
        shared = entities or bool(set(self.entities) & set(other.entities))
        return same_systems and periods and shared

    @property
    def bounds(self) -> tuple[date, date]:
        """The scope's days: from the first period's start (inclusive) to the day after the
        last period (exclusive)."""
        return self.first.start, self.last.shifted(1).start

    @property
    def window(self) -> tuple[date, date]:
        """The target is read from ``start`` (inclusive) to ``end`` (exclusive)."""
        return self.first.shifted(-self.slack).start, self.last.shifted(1 + self.slack).start


def scope_of(text: str) -> Scope:
    """A scope over every legal entity from ``"YYYY-MM..YYYY-MM"`` (or one period)."""
    first, _, last = text.partition("..")
    return Scope(Period.parse(first), Period.parse(last or first))
