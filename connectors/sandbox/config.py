from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox is run: where it keeps its data, the credential it accepts, and where
    it delivers signed webhooks (none: it does not deliver)."""

    db_path: str = ":memory:"
    secret: str = "sandbox-secret"
    webhook_url: str | None = None
    webhook_secret: str = "whsec_sandbox"
