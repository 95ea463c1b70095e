"""Typed settings, read from ``OPSGRAPH_*`` environment variables (and ``.env``).

``load_settings()`` validates everything at start and turns a bad value into one
``ConfigurationError`` line that names the setting.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import limits
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dashboards.operations import MANIFEST as DEFAULT_MANIFEST
from gateway.errors import ConfigurationError

DEFAULT_OWNERSHIP = Path(__file__).with_name("ownership.toml")
DEFAULT_CREDIT_POLICY = Path(__file__).with_name("credit_policy.toml")
DEFAULT_RECONCILIATION_POLICY = Path(__file__).with_name("reconciliation_policy.toml")
DEFAULT_EVENT_ROUTES = Path(__file__).with_name("event_routes.toml")

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
        return _printable(value)


def _printable(value: str) -> str:
    # A secret goes into a header (or a signature), where a stray space or newline from a
    # copy-paste is not a credential but a request httpx refuses to send.
    if not all("!" <= c <= "~" for c in value):
        raise PydanticCustomError(
            "secret_characters", "must not contain whitespace, control or non-ASCII characters"
        )
    return value


class Profile(StrEnum):
    """``production`` (the default outside the demo) locks the gateway down; ``development``
    (the demo) opens introspection, GraphiQL and HS256 tokens."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"


class AuthSettings(BaseModel):
    """How bearer JWTs are verified. Keys come from a JWKS URL or file (RS256/ES256; a key
    id the set does not know makes it be read again, so keys rotate without a restart);
    ``hs256_secret`` is for the development profile only."""

    issuer: str | None = None
    audience: str | None = None
    jwks_url: AnyHttpUrl | None = None
    jwks_file: Path | None = None
    # After an unknown key id, the key set is not read again sooner than this.
    jwks_refresh_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    hs256_secret: str = Field(default="", repr=False)
    leeway_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    roles_claim: str = "roles"
    entities_claim: str = "legal_entities"

    @model_validator(mode="after")
    def _one_key_source(self) -> AuthSettings:
        if self.jwks_url is not None and self.jwks_file is not None:
            raise ValueError("set jwks_url or jwks_file, not both")
        return self


def _rate(value: str) -> str:
    """A ``limits`` rate string (``600/minute``, ``10/second;1000/hour``)."""
    try:
        limits.parse_many(value)
    except ValueError:
        raise ValueError("not a rate such as 600/minute") from None
    return value


Rate = Annotated[str, AfterValidator(_rate)]


class LimitSettings(BaseModel):
    """What one request may ask for, and one principal per time window. The defaults are
    GraphQL Armor's where the dashboards' documents fit them (``gateway/limits``)."""

    # Apollo Router's default; checked while the body is read, before anything parses it.
    max_body_bytes: Annotated[int, Field(ge=1024, le=100_000_000)] = 2_000_000
    max_tokens: Annotated[int, Field(ge=10, le=100_000)] = 1000
    # Fields nested, leaves included; the customer 360 page is 9 deep.
    max_depth: Annotated[int, Field(ge=2, le=100)] = 10
    max_aliases: Annotated[int, Field(ge=0, le=10_000)] = 15
    max_directives: Annotated[int, Field(ge=0, le=10_000)] = 50
    max_directives_per_field: Annotated[int, Field(ge=0, le=100)] = 3
    # How often one field may be selected in one selection set.
    max_field_repeats: Annotated[int, Field(ge=1, le=1000)] = 3
    # The static cost estimate of one operation (``gateway/limits/cost.py``); the
    # customer 360 page of 50 customers is estimated at 23,952.
    max_cost: Annotated[int, Field(ge=1, le=100_000_000)] = 30_000
    # The size assumed for a list with no ``first`` argument.
    default_list_size: Annotated[int, Field(ge=1, le=10_000)] = 10
    max_entities: Annotated[int, Field(ge=1, le=100_000)] = 200
    # Subscriptions running at once on one WebSocket connection.
    max_subscriptions_per_connection: Annotated[int, Field(ge=1, le=10_000)] = 20
    # Subscriptions one principal streams over HTTP (SSE, multipart) at once, on this
    # replica: each is a request of its own, with no deadline.
    max_streams_per_principal: Annotated[int, Field(ge=1, le=10_000)] = 20
    # Per principal: requests, and the estimated cost of the operations it runs.
    rate_limit: Rate = "1200/minute"
    cost_budget: Rate = "1000000/minute"

    @model_validator(mode="after")
    def _budget_fits_an_operation(self) -> LimitSettings:
        smallest = min(item.amount for item in limits.parse_many(self.cost_budget))
        if smallest < self.max_cost:
            raise ValueError(
                f"cost_budget ({self.cost_budget}) must allow one operation of max_cost "
                f"({self.max_cost})"
            )
        return self


class HttpSettings(BaseModel):
    """Who may reach the gateway over HTTP: the ``Host`` names it answers to (DNS
    rebinding), the browser origins that may call it (CORS, WebSocket handshakes)."""

    # Starlette's TestClient sends ``Host: testserver``.
    allowed_hosts: list[str] = ["127.0.0.1", "localhost", "testserver"]
    cors_origins: list[str] = []
    # A subscription's connection is sent a keep-alive this often while nothing happens (a
    # WebSocket a graphql-transport-ws ping, which a peer that stays silent for two of them
    # loses the connection over; an HTTP stream a comment or an empty part), so proxies and
    # clients know it is alive.
    keep_alive_s: Annotated[float, Field(gt=0, le=300)] = 15.0

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*.")):
                raise ValueError(f"{pattern!r}: a wildcard must look like '*.example.com'")
        return value


class PersistedMode(StrEnum):
    """``apq``: automatic persisted queries (Apollo's protocol) beside free-form queries;
    ``safelist``: only the operations registered in the manifest run; ``off``: neither."""

    OFF = "off"
    APQ = "apq"
    SAFELIST = "safelist"


class PersistedQuerySettings(BaseModel):
    mode: PersistedMode = PersistedMode.APQ
    # The registered operations (``make`` builds it from dashboards/operations/*.graphql).
    manifest: Path = DEFAULT_MANIFEST
    # How long an automatically persisted query is kept after it was last registered.
    ttl_s: Annotated[float, Field(gt=0, le=30 * 86400)] = 86400.0

    @model_validator(mode="after")
    def _manifest_for_safelist(self) -> PersistedQuerySettings:
        if self.mode is PersistedMode.SAFELIST and not self.manifest.is_file():
            raise ValueError(
                f"the safelist needs its manifest, and {self.manifest} does not exist: build "
                "it with `make manifest` (python -m gateway.persisted.manifest)"
            )
        return self


class ResponseCacheSettings(BaseModel):
    """The response cache (``gateway.data.responses``): a registered query's answer, kept as
    bytes per variables and principal while everything it was built from is unchanged.
    ``max_entries`` answers and ``max_bytes`` of them at most, least recently used dropped
    first; an answer larger than ``max_bytes / 64`` is not kept."""

    enabled: bool = True
    max_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    max_bytes: Annotated[int, Field(ge=64 * 1024, le=64 * 1024**3)] = 256 * 1024**2


class LogFormat(StrEnum):
    """``json``: one JSON object a line, with the trace and span ids of the record's span
    (what a log pipeline reads; the production profile's default); ``text``: one readable
    line (the development profile's, the demo's)."""

    TEXT = "text"
    JSON = "json"


class TelemetrySettings(BaseModel):
    """Traces (OpenTelemetry) and the log's format. Tracing is off unless ``enabled`` or an
    ``otlp_endpoint`` is set: then the gateway makes spans (HTTP, GraphQL operations,
    connector calls, workflow steps, events, database, Redis) and, with an endpoint, sends
    them there over OTLP/HTTP (``http://collector:4318``; ``/v1/traces`` is added)."""

    # None: on exactly when an endpoint is set. True without an endpoint still gives log
    # lines their trace ids.
    enabled: bool | None = None
    otlp_endpoint: AnyHttpUrl | None = None
    service_name: str = Field(default="opsgraph", min_length=1, max_length=200)
    # The share of traces started here that are kept; a request that arrives with a
    # sampled ``traceparent`` follows its caller's decision.
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0
    # None: json in the production profile, text in the development profile.
    log_format: LogFormat | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def tracing(self) -> bool:
        return self.otlp_endpoint is not None if self.enabled is None else self.enabled


class MetricsSettings(BaseModel):
    """``GET /metrics``, Prometheus's text format: open like ``/healthz`` (scraped on an
    internal network) unless ``token`` is set, when a scrape must send it as a bearer
    token; ``enabled`` false removes the route."""

    enabled: bool = True
    token: Annotated[str, AfterValidator(_printable)] = Field(default="", repr=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPSGRAPH_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./.opsgraph/opsgraph.db"
    redis_url: str | None = None
    ownership_file: Path = DEFAULT_OWNERSHIP
    credit_policy_file: Path = DEFAULT_CREDIT_POLICY
    # How a reconciliation exception's severity follows its impact (gateway.rules.severity).
    reconciliation_policy_file: Path = DEFAULT_RECONCILIATION_POLICY
    # A full reconciliation the gateway starts when it starts, over these periods of every
    # legal entity: "YYYY-MM..YYYY-MM" (the demo's three months); None: none.
    reconcile_at_start: str | None = None
    # An incremental reconciliation (what the change feeds and webhooks named since the last
    # run) of the last `reconcile_periods` periods every this many seconds; 0: none.
    reconcile_every_s: Annotated[float, Field(ge=0, le=7 * 86400)] = 0.0
    reconcile_periods: Annotated[int, Field(ge=1, le=24)] = 3
    # Which events start which actions (gateway.events.routing).
    event_routes_file: Path = DEFAULT_EVENT_ROUTES
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
    # How often runs due again (a system was down, the process stopped) are resumed and the
    # outbox's notifications are delivered.
    workflow_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    # A workflow step's owner call is given half this; a run whose process stopped is taken
    # over by another once it has passed.
    workflow_lease_s: Annotated[float, Field(ge=1, le=3600)] = 120.0
    # How often the systems that send no webhooks (ERP, CRM) are asked what changed since
    # their watermark. Salesforce reports changes to the minute: polling it faster finds
    # nothing more.
    change_feed_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # With Redis, a stream entry a consumer took and did not acknowledge this long is taken
    # over by another (its consumer died); an event no consumer routed this long after it
    # arrived (the stream lost it with a Redis restart) is routed from the database.
    event_claim_after_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # Redis accelerates and never gates: a call that takes longer than this counts as a
    # failure, and after a failure Redis is left alone for ``redis_retry_s``.
    redis_timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.25
    redis_retry_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    # The gateway database's connection pool (PostgreSQL and SQLite files alike).
    database_pool_size: Annotated[int, Field(ge=1, le=500)] = 20
    database_max_overflow: Annotated[int, Field(ge=0, le=500)] = 20
    database_pool_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    # How long opsgraph's own data (the crosswalk, credits, open exceptions) read for a
    # customer 360 is kept in memory at most; the writes that change it forget it at once,
    # on every replica (gateway.data.remembered). 0 reads it from the database every time.
    owned_ttl_s: Annotated[float, Field(ge=0, le=3600)] = 5.0
    # The garbage collector's first-generation threshold once the app has started (what
    # start-up made is frozen first; gateway.collector); 0 leaves CPython's defaults.
    gc_threshold: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000
    profile: Profile = Profile.PRODUCTION
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    http: HttpSettings = HttpSettings()
    persisted_queries: PersistedQuerySettings = PersistedQuerySettings()
    response_cache: ResponseCacheSettings = ResponseCacheSettings()
    metrics: MetricsSettings = MetricsSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    billing: ConnectorSettings = ConnectorSettings()
    erp: ConnectorSettings = ConnectorSettings()
    # The ERP being replaced, during a cut-over: it takes every posting the ERP takes, and
    # `runReconciliation(scope: {target: ERP_SHADOW})` compares the two.
    erp_shadow: ConnectorSettings = ConnectorSettings()
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

    @model_validator(mode="after")
    def _production_is_locked(self) -> Settings:
        if self.profile is Profile.PRODUCTION:
            if self.auth.hs256_secret:
                raise ValueError(
                    "OPSGRAPH_AUTH__HS256_SECRET is for the development profile only; "
                    "verify tokens with OPSGRAPH_AUTH__JWKS_URL or _FILE"
                )
            keys = self.auth.jwks_url or self.auth.jwks_file
            if keys and not (self.auth.issuer and self.auth.audience):
                raise ValueError(
                    "OPSGRAPH_AUTH__ISSUER and OPSGRAPH_AUTH__AUDIENCE are required to verify "
                    "tokens in the production profile"
                )
        return self

    @property
    def log_format(self) -> LogFormat:
        chosen = self.telemetry.log_format
        if chosen is not None:
            return chosen
        return LogFormat.JSON if self.profile is Profile.PRODUCTION else LogFormat.TEXT

    def secrets(self) -> list[str]:
        """Every secret these settings hold (connector and webhook secrets, the HS256 key,
        the database's and Redis's passwords): what no log line may show."""
        found = [self.auth.hs256_secret, self.metrics.token]
        for connector in (self.billing, self.erp, self.erp_shadow, self.crm, self.support):
            found += [connector.secret, connector.webhook_secret]
        found.append(make_url(self.database_url).password or "")
        if self.redis_url:
            found.append(urlsplit(self.redis_url).password or "")
        return [secret for secret in found if secret]

    def connectors(self) -> dict[str, ConnectorSettings]:
        systems = {"billing": self.billing, "erp": self.erp, "crm": self.crm}
        systems["support"] = self.support
        systems["erp_shadow"] = self.erp_shadow
        return {name: s for name, s in systems.items() if s.base_url is not None}


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a rule across settings: its message names them
            raise ConfigurationError(message) from None
        where = "__".join(str(p) for p in first["loc"]).upper()
        raise ConfigurationError(f"OPSGRAPH_{where}: {message}") from None
