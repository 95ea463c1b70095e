"""The opsgraph gateway: one GraphQL endpoint over the company's systems of record."""
