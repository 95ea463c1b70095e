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
    # NetSuite token-based authentication (OAuth 1.0a), accepted beside the bearer ``secret``:
    # the account a request names as its realm, the integration's consumer key and secret,
    # and the one access token (id and secret) issued to it.
    tba_account: str = "1234567_SB1"
    tba_consumer_key: str = "sandbox-consumer-key"
    tba_consumer_secret: str = "sandbox-consumer-secret"
    tba_token_id: str = "sandbox-token-id"
    tba_token_secret: str = "sandbox-token-secret"
