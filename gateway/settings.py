"""Typed settings, read from ``OPSGRAPH_*`` environment variables (and ``.env``).

``load_settings()`` validates everything at start and turns a bad value into one
``ConfigurationError`` line that names the setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.errors import ConfigurationError

DEFAULT_OWNERSHIP = Path(__file__).with_name("ownership.toml")

_DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg"}


class ConnectorSettings(BaseModel):
    """One system of record: where it is and how we authenticate. A connector whose
    ``base_url`` is unset is not configured and does not appear in ``systems``."""

    base_url: AnyHttpUrl | None = None
    secret: str = Field(default="", repr=False)
    webhook_secret: str = Field(default="", repr=False)
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    cache_ttl_s: Annotated[float, Field(ge=0, le=86400)] = 60.0  # served from cache while fresh
    # Calls in flight to this system at once (the bulkhead, and the HTTP connection pool).
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 16
    email: str | None = None  # Zendesk's API user

    @field_validator("secret", "webhook_secret")
    @classmethod
    def _printable(cls, value: str) -> str:
        # A secret goes into a header (or a signature), where a stray space or newline from a
        # copy-paste is not a credential but a request httpx refuses to send.
        if not all("!" <= c <= "~" for c in value):
            raise PydanticCustomError(
                "secret_characters", "must not contain whitespace, control or non-ASCII characters"
            )
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPSGRAPH_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./.opsgraph/opsgraph.db"
    redis_url: str | None = None
    ownership_file: Path = DEFAULT_OWNERSHIP
    # How long a cached entity is kept after it goes stale, to answer when its owner is down.
    cache_keep_s: Annotated[float, Field(ge=0, le=7 * 86400)] = 86400.0
    # The plan catalog is read whole and stays fresh this long.
    catalog_ttl_s: Annotated[float, Field(ge=0, le=86400)] = 900.0
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # Every GraphQL request ends within this: fields still waiting on a system are then
    # null with UPSTREAM_TIMEOUT (or served stale when a cached copy exists).
    request_deadline_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # On SIGTERM, requests in flight get this long to finish before they are cancelled.
    shutdown_grace_s: Annotated[float, Field(ge=0, le=300)] = 10.0
    # How often the background prober asks each system whether it answers.
    health_interval_s: Annotated[float, Field(gt=0, le=3600)] = 15.0
    # Redis accelerates and never gates: a call that takes longer than this counts as a
    # failure, and after a failure Redis is left alone for ``redis_retry_s``.
    redis_timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.25
    redis_retry_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    # The gateway database's connection pool (PostgreSQL and SQLite files alike).
    database_pool_size: Annotated[int, Field(ge=1, le=500)] = 20
    database_max_overflow: Annotated[int, Field(ge=0, le=500)] = 20
    database_pool_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    billing: ConnectorSettings = ConnectorSettings()
    erp: ConnectorSettings = ConnectorSettings()
    crm: ConnectorSettings = ConnectorSettings()
    support: ConnectorSettings = ConnectorSettings()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL") from None
        if url.drivername not in _DRIVERS:
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use one of {sorted(_DRIVERS)}"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("billing", "erp", "crm", "support")
    @classmethod
    def _secret_when_configured(
        cls, value: ConnectorSettings, info: ValidationInfo
    ) -> ConnectorSettings:
        # Without a secret every call is refused upstream; say so now, not per request.
        # A ValidationError raised here lands under this field, so the error names
        # OPSGRAPH_<SYSTEM>__SECRET and not the whole connector.
        if value.base_url is not None and not value.secret:
            system = f"OPSGRAPH_{str(info.field_name).upper()}"
            missing = PydanticCustomError(
                "secret_required", f"required when {system}__BASE_URL is set"
            )
            raise ValidationError.from_exception_data(
                "ConnectorSettings", [InitErrorDetails(type=missing, loc=("secret",), input="")]
            )
        return value

    def connectors(self) -> dict[str, ConnectorSettings]:
        systems = {"billing": self.billing, "erp": self.erp, "crm": self.crm}
        systems["support"] = self.support
        return {name: s for name, s in systems.items() if s.base_url is not None}


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "__".join(str(p) for p in first["loc"]).upper()
        raise ConfigurationError(f"OPSGRAPH_{where}: {first['msg']}") from None
