"""The Grafana dashboard (``dashboards/grafana/opsgraph.json``) is valid JSON, picks its
Prometheus data source from a variable, and its panels query only series the gateway
exports, read from a real ``/metrics`` scrape; and every metric exported is on a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.gateway.conftest import Bare
from tests.gateway.telemetry.prometheus import families, scrape_text, series_names

DASHBOARD = Path(__file__).parents[3] / "dashboards" / "grafana" / "opsgraph.json"
METRIC = re.compile(r"\bopsgraph_[A-Za-z0-9_]+")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def graphs() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queried() -> set[str]:
    return {name for p in graphs() for t in p["targets"] for name in METRIC.findall(t["expr"])}


def test_the_dashboard_takes_its_prometheus_from_a_variable() -> None:
    (variable,) = dashboard()["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource", "datasource", "prometheus",
    )  # fmt: skip
    for panel in graphs():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert METRIC.search(target["expr"]), (panel["title"], target["expr"])


def test_every_panel_queries_series_the_gateway_exports_and_shows_every_metric(
    bare: Bare,
) -> None:
    client = bare()
    client.post("/graphql", json={"query": "{ __typename }"})
    client.post("/graphql", json={"query": "{ nope }"})
    scraped = scrape_text(client)
    exported = series_names(scraped)

    assert queried() - exported == set()
    metrics = families(scraped)
    shown = {
        metric
        for metric in metrics
        if any(name == metric or name.startswith(f"{metric}_") for name in queried())
    }
    assert metrics - shown == set()
