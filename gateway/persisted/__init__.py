"""Persisted operations: a client sends the SHA-256 of an operation instead of its text.

- ``apq`` (the default): Apollo's automatic persisted queries. A request carries
  ``extensions.persistedQuery.sha256Hash``; an unknown hash is answered
  ``PERSISTED_QUERY_NOT_FOUND`` and the client sends the text with the hash, which is kept
  (in the entity cache's stores: Redis when configured, else in process) once it has
  validated. A hash that does not match its text is refused.
- ``safelist``: only the operations of the manifest run (``manifest``, built from
  ``dashboards/operations/*.graphql`` by ``make manifest``), by hash or by their exact text.
  A principal holding ``schema:read`` (the composing router, whose ``_entities`` and
  ``_service`` documents its query planner writes) may still send free-form operations.
- ``off``: a request that names a persisted query is refused.
"""
