"""Connectors to the systems of record, and runnable sandboxes that stand in for them.

Nothing here imports from ``gateway`` or ``resolvers``: a connector speaks the canonical
models (``connectors.models``) and its own system's wire format, nothing else.
"""
