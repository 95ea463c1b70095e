"""The GraphQL documents the dashboards send, one ``.graphql`` file each; the tests and the
benchmark send the same ones.

A file holds operations, fragments, or both; a fragment may be used by the operations of
any file. ``MANIFEST`` lists every operation, whole (with the fragments it uses), by the
SHA-256 of its text: the persisted query safelist, built by ``make manifest``
(``gateway.persisted.manifest``)."""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).parent
MANIFEST = FOLDER / "manifest.json"


def document(name: str) -> str:
    """The text of ``<name>.graphql``."""
    return (FOLDER / f"{name}.graphql").read_text()
