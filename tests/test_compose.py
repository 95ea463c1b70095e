"""docker-compose.yml cannot run here (no Docker engine); it must still describe the scaled
topology the README promises, with settings the gateway accepts, and the files it mounts
into Prometheus, Grafana and the OpenTelemetry collector must say what it relies on."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_two_gateway_replicas_on_postgres_and_redis() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "redis", "migrate", "sandboxes", "gateway-1", "gateway-2"} <= set(services)
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["environment"]["OPSGRAPH_REDIS_URL"] == "redis://redis:6379/0"


def test_the_gateway_environment_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("OPSGRAPH_")]:
        monkeypatch.delenv(name)
    env = COMPOSE["services"]["gateway-1"]["environment"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # the environment alone
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert set(settings.connectors()) == {"billing", "erp", "crm", "support"}
    assert str(settings.telemetry.otlp_endpoint).rstrip("/") == "http://otel-collector:4318"
    # Prometheus scrapes each replica by its service name, which the replica must answer.
    assert {"gateway-1", "gateway-2"} <= set(settings.http.allowed_hosts)
    assert settings.metrics.enabled and not settings.metrics.token


def mounted(service: str) -> dict[str, Path]:
    """What ``service`` mounts from the repository, by where it appears in the container;
    each must exist."""
    found = {}
    for volume in COMPOSE["services"][service]["volumes"]:
        source, target = volume.split(":")[:2]
        assert (ROOT / source).exists(), volume
        found[target] = ROOT / source
    return found


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_prometheus_scrapes_both_replicas_metrics() -> None:
    config = load(mounted("prometheus")["/etc/prometheus/prometheus.yml"])
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (targets,) = [c["targets"] for c in job["static_configs"]]
    assert sorted(targets) == ["gateway-1:8000", "gateway-2:8000"]
    assert {"gateway-1", "gateway-2"} <= set(COMPOSE["services"]["prometheus"]["depends_on"])


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    mounts = mounted("grafana")
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = load(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == (
        "prometheus", "http://prometheus:9090", True,
    )  # fmt: skip
    (provider,) = load(provisioning / "dashboards" / "opsgraph.yml")["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert dashboards == ROOT / "dashboards" / "grafana"
    assert json.loads((dashboards / "opsgraph.json").read_text())["uid"] == "opsgraph"


def test_the_collector_takes_otlp_over_http_where_the_gateways_send_it() -> None:
    config = load(mounted("otel-collector")["/etc/otelcol/config.yaml"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    for name in ("gateway-1", "gateway-2"):
        env = COMPOSE["services"][name]["environment"]
        assert env["OPSGRAPH_TELEMETRY__OTLP_ENDPOINT"] == "http://otel-collector:4318"
