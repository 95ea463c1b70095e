"""Reconciliation benchmark: one full run of billing against the ERP over a million invoices
on PostgreSQL, what it finds against what was planted, and where the time goes.

    .venv/bin/python -m bench.reconcile [--invoices N ...] [--seed 1] [--analyze]

For each size (``--invoices``, repeatable; by default 100,000 then 1,000,000) the four
sandboxes run in a process of their own and billing and the ERP make the bench world
themselves (``connectors.sandbox.bulk.BenchWorld``: N invoices over three monthly periods,
one customer per 20, each invoice posted once; 1% carry a planted discrepancy, evenly of
every kind the reconciler finds on the invoice ledger). A fresh PostgreSQL database
``opsgraph_bench_reconcile`` (dropped afterwards) gets the crosswalk of every customer,
inserted in bulk. Then, in this process, with the gateway's services (no Redis):

1. warm-up: one page of each list the run reads, so that the sandboxes build their list
   orders and tables (a sandbox's cost, not the reconciler's; real systems keep indexes);
2. baseline: billing's invoices of the three periods paged through with the connector
   alone (100 a page), then the ERP's postings of the window by keyset (1000 a page): what
   reading costs before anything is staged, compared or stored;
3. the run: ``Reconciler.run`` over the three periods, timed per phase (reading, comparing,
   resolving) from its broadcasts, while the resident memory of this process and of the
   sandboxes' is sampled and the CPU seconds of each process (PostgreSQL's too) counted.

The exceptions stored are then compared with the planted set, (kind, key): precision and
recall (both must be 1.0; what is missed or extra is printed by kind). Targets (the
reconciliation benchmark issue): a million invoices in <= 60 s and <= 1 GB peak RSS of the
gateway on this two-core machine. Prints tables; asserts nothing.

``--analyze``: gives PostgreSQL statistics on ``reconciliation_items`` (ANALYZE, from a
connection of its own) as the run enters its comparing phase. The merge pages by the
index's own columns (``key > last ORDER BY key LIMIT 1000``), so each page is an index range
with or without statistics (autovacuum analyzes a while later, or never when it is off, as
on this machine); the flag shows what statistics would change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, select, text

from bench.postgres import fresh_database
from connectors.erp.connector import ErpConnector
from connectors.models import ObjectKind, PostingType, SystemName
from connectors.sandbox import fleet
from connectors.sandbox.bulk import BenchWorld
from gateway import collector
from gateway.data.services import Services
from gateway.demo import sandbox_connector
from gateway.ownership import OwnershipMap
from gateway.reconcile.engine import PAGE, RECONCILIATION_RUNS, TARGET_PAGE, RunView
from gateway.reconcile.scope import Period, Scope
from gateway.settings import Settings, load_settings
from gateway.storage.database import create_engine
from gateway.storage.tables import Customer, ExternalId
from gateway.storage.tables import ReconciliationException as ExceptionRow

SIZES = (100_000, 1_000_000)
PG_DATABASE = "opsgraph_bench_reconcile"
LINK_CHUNK = 5000  # crosswalk rows per INSERT
SAMPLE_S = 0.05
SCOPE = Scope(Period(2026, 9), Period(2026, 11))
TARGET_S, TARGET_MB = 60.0, 1024.0


# -- memory --------------------------------------------------------------------------------


def _status_kb(pid: int | str, field_name: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmRSS: now; VmHWM: the peak), 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak(pid: int | str) -> None:
    """Resets the process's VmHWM to its RSS now (Linux's ``clear_refs`` 5), so that the
    peak read later is the run's, not that of whatever came before in the process."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


class Sampler(threading.Thread):
    """The resident memory of some processes every ``SAMPLE_S``, from a thread of its own
    (the event loop may be busy for longer): the highest seen of each."""

    def __init__(self, pids: dict[str, int | str]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak_kb = dict.fromkeys(pids, 0)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for name, pid in self.pids.items():
                self.peak_kb[name] = max(self.peak_kb[name], _status_kb(pid, "VmRSS"))
            self._done.wait(SAMPLE_S)

    def stop(self) -> dict[str, int]:
        self._done.set()
        self.join()
        return self.peak_kb


def cpu_s(pids: Sequence[int | str]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """The local PostgreSQL's processes (its backends included)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() in ("postgres", "postmaster"):
                    found.append(int(entry))
    return found


@contextlib.contextmanager
def sampled(pids: dict[str, int | str]) -> Iterator[Sampler]:
    for pid in pids.values():
        _reset_peak(pid)
    sampler = Sampler(pids)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


# -- the world in the gateway's database -----------------------------------------------------


async def link(database_url: str, world: BenchWorld) -> None:
    """Every customer in the crosswalk (opsgraph's id, legal entity, billing and ERP ids),
    inserted in bulk: ``Crosswalk.link`` one customer at a time would take minutes."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        customers: list[dict[str, Any]] = []
        ids: list[dict[str, Any]] = []

        async def flush() -> None:
            async with engine.begin() as connection:
                await connection.execute(insert(Customer), customers)
                await connection.execute(insert(ExternalId), ids)
            customers.clear()
            ids.clear()

        for c in world.each_customer():
            customers.append(
                {"id": c.id, "name": c.name, "legal_entity": c.legal_entity,
                 "created_at": now, "updated_at": now}
            )  # fmt: skip
            for system, ref in ((SystemName.BILLING, c.billing_id), (SystemName.ERP, c.erp_id)):
                ids.append(
                    {"customer_id": c.id, "system": system.value, "external_id": ref,
                     "created_at": now}
                )  # fmt: skip
            if len(customers) >= LINK_CHUNK:
                await flush()
        if customers:
            await flush()
    finally:
        await engine.dispose()


def settings(database_url: str, boxes: fleet.Fleet) -> Settings:
    """A development gateway over billing and the ERP, caching nothing, with no Redis, its
    background work idle (``Services.start`` is not called)."""
    connector = {"timeout_s": 60, "cache_ttl_s": 0}
    systems = {
        s.value: {**sandbox_connector(boxes.urls[s]), **connector}
        for s in (SystemName.BILLING, SystemName.ERP)
    }
    return load_settings(
        database_url=database_url,
        profile="development",
        auth={"hs256_secret": secrets.token_hex(32)},
        **systems,
    )


# -- reading alone -------------------------------------------------------------------------


def _billing_filters() -> dict[str, str]:
    return {
        "issued_from": SCOPE.first.start.isoformat(),
        "issued_before": SCOPE.last.shifted(1).start.isoformat(),
    }


def _erp_filters(kind: PostingType) -> dict[str, str]:
    start, end = SCOPE.window
    return {"type": kind.value, "posted_from": start.isoformat(), "posted_before": end.isoformat()}


async def read_billing(services: Services, pages: int | None = None) -> tuple[int, float]:
    """Billing's invoices of the scope, paged through as the reconciler pages them (the
    connector's ``ledger_page``, 100 a page): how many, in how long."""
    billing = services.registry.get(SystemName.BILLING)
    started, count, cursor, read = time.perf_counter(), 0, None, 0
    while pages is None or read < pages:
        page = await billing.ledger_page(
            ObjectKind.INVOICE, cursor=cursor, limit=PAGE, filters=_billing_filters()
        )
        count, read, cursor = count + len(page.items), read + 1, page.cursor
        if cursor is None:
            break
    return count, time.perf_counter() - started


async def read_erp(services: Services, pages: int | None = None) -> tuple[int, float]:
    """The ERP's invoices and credit memos of the window, by keyset as the reconciler
    reads them (``booked_after``, 1000 a page): how many, in how long."""
    erp = services.registry.get(SystemName.ERP)
    inner = erp.inner
    assert isinstance(inner, ErpConnector)
    started, count = time.perf_counter(), 0
    for kind in (PostingType.INVOICE, PostingType.CREDIT_MEMO):
        after, read = 0, 0
        while pages is None or read < pages:
            page = await erp.run(
                lambda after=after, kind=kind: inner.booked_after(  # type: ignore[misc]
                    after, TARGET_PAGE, _erp_filters(kind)
                )
            )
            count, read = count + len(page), read + 1
            if len(page) < TARGET_PAGE:
                break
            after = int(page[-1].id)
    return count, time.perf_counter() - started


# -- the run -------------------------------------------------------------------------------


@dataclass
class Phases:
    """When the run entered each phase, from its broadcasts; how long ``--analyze`` took."""

    entered: dict[str, float] = field(default_factory=dict)
    analyze_s: float | None = None

    def durations(self, started: float, ended: float) -> dict[str, float]:
        marks = sorted(self.entered.items(), key=lambda m: m[1])
        out = {}
        for (name, at), (_, until) in zip(marks, [*marks[1:], ("end", ended)], strict=True):
            out[name] = until - at
        if marks:
            out["starting"] = marks[0][1] - started
        return out


async def follow(services: Services, phases: Phases, ready: asyncio.Event, analyze: bool) -> None:
    """Notes when the run enters each phase; with ``analyze``, gives PostgreSQL statistics
    on the staged records as the run starts comparing (what autovacuum's ANALYZE gives it
    when it is on and has come by)."""
    async with contextlib.aclosing(services.broadcast.subscribe(RECONCILIATION_RUNS)) as runs:
        ready.set()
        async for message in runs:
            phase = message["run"]["phase"]
            phases.entered.setdefault(phase, time.perf_counter())
            if analyze and phase == "comparing" and phases.analyze_s is None:
                started = time.perf_counter()
                async with services.reconciler.sessions.begin() as session:
                    await session.execute(text("ANALYZE reconciliation_items"))
                phases.analyze_s = time.perf_counter() - started


async def reconciled(services: Services, analyze: bool) -> tuple[RunView, float, float, Phases]:
    phases, ready = Phases(), asyncio.Event()
    listener = asyncio.create_task(follow(services, phases, ready, analyze))
    await ready.wait()
    started = time.perf_counter()
    run = await services.reconciler.run(SCOPE, "bench")
    ended = time.perf_counter()
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    return run, started, ended, phases


async def stored(services: Services) -> set[tuple[str, str]]:
    query = select(ExceptionRow.kind, ExceptionRow.key).where(
        ExceptionRow.source == SystemName.BILLING.value,
        ExceptionRow.target == SystemName.ERP.value,
    )
    async with services.reconciler.sessions() as session:
        return {(kind, key) for kind, key in await session.execute(query)}


# -- one size ------------------------------------------------------------------------------


@dataclass
class Figures:
    invoices: int
    postings: int
    customers: int
    seeding_s: float = 0.0
    linking_s: float = 0.0
    warm_up_s: float = 0.0
    billing_alone: tuple[int, float] = (0, 0.0)
    erp_alone: tuple[int, float] = (0, 0.0)
    run: RunView | None = None
    wall_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    gateway_start_mb: float = 0.0
    gateway_peak_mb: float = 0.0
    gateway_hwm_mb: float = 0.0
    sandboxes_peak_mb: float = 0.0
    sandboxes_start_mb: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds in the run, per process
    analyze: bool = False  # --analyze: statistics given as the run starts comparing
    analyze_s: float | None = None
    autovacuum: str = "?"
    found: set[tuple[str, str]] = field(default_factory=set)
    planted: set[tuple[str, str]] = field(default_factory=set)

    @property
    def read(self) -> int:
        stats = self.run.stats if self.run else {}
        return int(stats.get("source", 0)) + int(stats.get("target", 0))

    @property
    def precision(self) -> float:
        return len(self.found & self.planted) / len(self.found) if self.found else 0.0

    @property
    def recall(self) -> float:
        return len(self.found & self.planted) / len(self.planted) if self.planted else 0.0


async def _measured(services: Services, figures: Figures, sandbox_pid: int) -> None:
    started = time.perf_counter()
    await read_billing(services, pages=1)
    await read_erp(services, pages=1)
    figures.warm_up_s = time.perf_counter() - started
    figures.billing_alone = await read_billing(services)
    figures.erp_alone = await read_erp(services)
    figures.gateway_start_mb = _status_kb("self", "VmRSS") / 1024
    figures.sandboxes_start_mb = _status_kb(sandbox_pid, "VmRSS") / 1024
    processes: dict[str, list[int | str]] = {
        "gateway": ["self"], "sandboxes": [sandbox_pid], "PostgreSQL": list(postgres_pids())
    }  # fmt: skip
    before = {name: cpu_s(pids) for name, pids in processes.items()}
    with sampled({"gateway": "self", "sandboxes": sandbox_pid}) as sampler:
        run, began, ended, phases = await reconciled(services, figures.analyze)
        figures.gateway_hwm_mb = _status_kb("self", "VmHWM") / 1024
    processes["PostgreSQL"] = list(postgres_pids())  # backends that came during the run
    figures.cpu = {name: cpu_s(pids) - before.get(name, 0.0) for name, pids in processes.items()}
    figures.run, figures.wall_s = run, ended - began
    figures.phases = phases.durations(began, ended)
    figures.analyze_s = phases.analyze_s
    figures.gateway_peak_mb = sampler.peak_kb["gateway"] / 1024
    figures.sandboxes_peak_mb = sampler.peak_kb["sandboxes"] / 1024
    figures.found = await stored(services)
    async with services.reconciler.sessions() as session:
        figures.autovacuum = str(await session.scalar(text("SHOW autovacuum")))


async def _with_services(database_url: str, boxes: fleet.Fleet, figures: Figures) -> None:
    gateway = settings(database_url, boxes)
    services = Services.build(gateway, OwnershipMap.load(gateway.ownership_file))
    try:
        assert boxes.pid is not None
        with collector.tuned(gateway.gc_threshold):  # as `opsgraph reconcile` and the gateway
            await _measured(services, figures, boxes.pid)
    finally:
        await services.aclose()


def measure(invoices: int, seed: int, analyze: bool, say: Callable[[str], None]) -> Figures:
    world = BenchWorld(invoices, seed)
    figures = Figures(invoices, world.posted, world.customers, analyze=analyze)
    figures.planted = {(kind.value, key) for kind, key in world.planted()}
    with fleet.in_process() as boxes, fresh_database(PG_DATABASE) as database_url:
        started = time.perf_counter()
        boxes.bulk(invoices, seed)
        figures.seeding_s = time.perf_counter() - started
        started = time.perf_counter()
        asyncio.run(link(database_url, world))
        figures.linking_s = time.perf_counter() - started
        say(f"{invoices:,} invoices: seeded, {world.customers:,} customers linked; running")
        asyncio.run(_with_services(database_url, boxes, figures))
    return figures


# -- what it prints ------------------------------------------------------------------------


def _mb(value: float) -> str:
    return f"{value:,.0f}"


def _by_kind(pairs: set[tuple[str, str]]) -> str:
    counted = Counter(kind for kind, _ in pairs)
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counted.items())) or "none"


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds else ""


def report(console: Console, results: Sequence[Figures]) -> None:
    # Narrow tables rather than one wide one: each fits an 80-column terminal.
    console.print(_table(
        "a full reconciliation run, billing against the ERP (PostgreSQL, no Redis)",
        ("invoices", "postings", "wall s", "rows/s", "precision", "recall"),
        [(f"{f.invoices:,}", f"{f.postings:,}", f"{f.wall_s:.1f}", _rate(f.read, f.wall_s),
          f"{f.precision:.4f}", f"{f.recall:.4f}") for f in results],
    ))  # fmt: skip
    console.print(_table(
        "resident memory, MB (before the run, and its peak during it)",
        ("invoices", "gateway before", "gateway peak", "sandboxes before", "sandboxes peak"),
        [(f"{f.invoices:,}", _mb(f.gateway_start_mb),
          _mb(max(f.gateway_peak_mb, f.gateway_hwm_mb)), _mb(f.sandboxes_start_mb),
          _mb(f.sandboxes_peak_mb)) for f in results],
    ))  # fmt: skip
    console.print(_table(
        "baseline: reading alone, through the connectors (s, and records/s)",
        ("invoices", "billing s", "billing /s", "ERP s", "ERP /s", "run / both"),
        [(f"{f.invoices:,}", f"{f.billing_alone[1]:.1f}", _rate(*f.billing_alone),
          f"{f.erp_alone[1]:.1f}", _rate(*f.erp_alone),
          f"{f.wall_s / (f.billing_alone[1] + f.erp_alone[1]):.2f}"
          if f.billing_alone[1] + f.erp_alone[1] else "") for f in results],
    ))  # fmt: skip
    console.print(_table(
        "the run: seconds per phase, and CPU seconds per process",
        ("invoices", "reading", "comparing", "resolving", "gateway CPU", "sandbox CPU",
         "PG CPU"),
        [(f"{f.invoices:,}", f"{f.phases.get('reading', 0) + f.phases.get('starting', 0):.1f}",
          f"{f.phases.get('comparing', 0):.1f}", f"{f.phases.get('resolving', 0):.1f}",
          f"{f.cpu.get('gateway', 0):.1f}", f"{f.cpu.get('sandboxes', 0):.1f}",
          f"{f.cpu.get('PostgreSQL', 0):.1f}") for f in results],
    ))  # fmt: skip
    console.print(_table(
        "setting up, not in the run (s)",
        ("invoices", "customers", "sandboxes make it", "crosswalk", "warm-up"),
        [(f"{f.invoices:,}", f"{f.customers:,}", f"{f.seeding_s:.1f}", f"{f.linking_s:.1f}",
          f"{f.warm_up_s:.1f}") for f in results],
    ))  # fmt: skip
    for f in results:
        stats = dict(f.run.stats) if f.run else {}
        status = f.run.status.value if f.run else "not run"
        error = f": {f.run.error}" if f.run and f.run.error else ""
        statistics = (
            f"ANALYZE as comparing began ({f.analyze_s:.2f} s)"
            if f.analyze_s is not None
            else f"none given (--analyze not set; autovacuum {f.autovacuum})"
        )
        console.print(
            f"{f.invoices:,}: statistics on the staged records: {statistics}; "
            f"run {status}{error}; read {stats.get('source', 0):,} invoices and "
            f"{stats.get('target', 0):,} postings; found {len(f.found):,} exceptions "
            f"({_by_kind(f.found)}); planted {len(f.planted):,}",
            highlight=False,
        )
        missed, extra = f.planted - f.found, f.found - f.planted
        if missed or extra:
            console.print(f"  missed: {_by_kind(missed)}; extra: {_by_kind(extra)}")
            for kind, key in sorted(missed)[:5] + sorted(extra)[:5]:
                console.print(f"  {'missed' if (kind, key) in missed else 'extra'} {kind} {key}")
    console.print(
        "wall s: Reconciler.run over the three periods (reading both sides into "
        "reconciliation_items, merging by key, storing the exceptions, resolving). rows/s: "
        "invoices and postings read / wall s. precision, recall: the stored exceptions "
        "(kind, key) against the planted ones. gateway: this process (sampled every 50 ms, "
        "and its VmHWM reset at the start); sandboxes: their process, sampled. baseline: "
        "the same reads through the connectors, nothing staged; run / both: wall s over "
        "the two reads' seconds. CPU: user + system seconds during the run (2 cores). "
        f"Targets: <= {TARGET_S:.0f} s and <= {TARGET_MB:,.0f} MB for 1,000,000 invoices.",
        highlight=False,
    )


def main(sizes: Sequence[int], seed: int, analyze: bool) -> None:
    console = Console()
    results = []
    for invoices in sizes:
        said: Callable[[str], None] = lambda text: console.print(text, highlight=False)  # noqa: E731
        results.append(measure(invoices, seed, analyze, said))
    report(console, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, action="append", help="one size (repeatable)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE reconciliation_items as the run starts comparing (see the docstring)",
    )
    args = parser.parse_args()
    main(args.invoices or SIZES, args.seed, args.analyze)
