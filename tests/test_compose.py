"""docker-compose.yml cannot run here (no Docker engine); it must still describe the scaled
topology the README promises, with settings the gateway accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.settings import Settings

COMPOSE = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())


def test_compose_runs_two_gateway_replicas_on_postgres_and_redis() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "redis", "migrate", "sandboxes", "gateway-1", "gateway-2"} <= set(services)
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["environment"]["OPSGRAPH_REDIS_URL"] == "redis://redis:6379/0"


def test_the_gateway_environment_is_valid_settings() -> None:
    env = COMPOSE["services"]["gateway-1"]["environment"]
    settings = Settings(
        **{k.removeprefix("OPSGRAPH_").lower(): v for k, v in env.items() if "__" not in k}
    )
    assert settings.database_url.startswith("postgresql+asyncpg://")
    systems = {k.split("__")[0].removeprefix("OPSGRAPH_").lower() for k in env if "__" in k}
    assert systems == {"billing", "erp", "crm", "support"}
