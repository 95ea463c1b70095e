"""Runnable stand-ins for the four systems of record, served over real HTTP on loopback.

Each sandbox speaks its system's documented wire shapes, keeps its own SQLite storage, signs
its webhooks the way the real system does, and injects faults on request. The shared parts
live here: ``store`` (storage and change sequence), ``faults`` (fault injection and the
``/_sandbox`` admin routes), ``serve`` (running apps on loopback ports), ``seed`` (the
deterministic demo world).
"""
