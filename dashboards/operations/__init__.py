"""The GraphQL documents the dashboards send, one ``.graphql`` file each; the tests and the
benchmark send the same ones."""

from __future__ import annotations

from pathlib import Path


def document(name: str) -> str:
    """The text of ``<name>.graphql``."""
    return (Path(__file__).parent / f"{name}.graphql").read_text()
