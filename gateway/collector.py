"""The garbage collector, tuned for a server (issue #14).

After start-up the heap holds what lives as long as the process (modules, the schema, the
services, their caches): ``gc.freeze`` moves it out of the collector's sight, so no later
collection walks it again. The first generation's threshold is raised from CPython's 700
allocations: a GraphQL request allocates tens of thousands of short-lived objects, most
freed by reference counting, and a collection every 700 of them was a quarter of the
gateway's CPU on a cached customer 360.

Measured in process (a cached customer 360, 300 requests at once, three rounds, two runs):
CPython's defaults 12.5–15.2 ms of CPU a request; frozen with a threshold of 10,000,
10.5–12.2 ms; of 50,000, 9.7–12.6 ms with more memory held between collections. The
default is 10,000 (``OPSGRAPH_GC_THRESHOLD``; 0 leaves CPython's collector as it is).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# The older generations are collected half as often as CPython's (10, 10): with far
# fewer first-generation collections, each promotes more.
OLDER = (20, 20)
# The interpreter's thresholds before any app tuned them: what is put back after.
DEFAULTS = gc.get_threshold()


@contextmanager
def tuned(threshold: int) -> Iterator[None]:
    """For the block (a server's life, a reconciliation run's), what start-up made is frozen
    and the first generation waits for ``threshold`` allocations; after it, what was frozen
    is collectable again (tests build many apps in one process) and the interpreter's
    thresholds are back. ``threshold`` 0 leaves the collector as it is."""
    if threshold <= 0:
        yield
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, *OLDER)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*DEFAULTS)
