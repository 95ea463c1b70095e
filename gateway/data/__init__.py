"""The stage below the resolvers: what a request reads and where it comes from.

In the order a read goes through them: ``services`` (the one composition root, built at
start-up), ``reads`` (entity cache, single flight, provenance, stale-if-error) over
``cache`` (in-process or Redis, behind ``redis_guard``), ``registry`` (one resilient
connector per system, routed by the ownership map, health from ``prober``, breaker state
in ``breakers``), and what opsgraph owns itself: ``crosswalk`` (which ids are one
customer) and ``owned`` (credit requests, reconciliation exceptions). Beside the read
path: ``audit`` (the audit log of refusals, and of writes to come), written off the
request's path through ``detached`` (bounded background work, awaited at shutdown).
"""
