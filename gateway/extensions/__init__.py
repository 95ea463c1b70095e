"""Strawberry schema extensions: cross-cutting behaviour of the GraphQL stage, one per file."""
