"""Reading a gateway's ``/metrics`` as Prometheus does: with prometheus_client's parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# The series each type of metric is exposed as, after its family's name (the parser reads
# a counter's or a histogram's ``_created`` as a gauge family of its own).
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def scrape_text(client: TestClient, **headers: str) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


def scrape(client: TestClient | str, **headers: str) -> Samples:
    """Every sample of the scrape, by series name and labels: of an app in process, or of
    a gateway served at a base URL."""
    if isinstance(client, str):
        answer = httpx.get(f"{client}/metrics", headers=headers)
        assert answer.status_code == 200, answer.text
        text = answer.text
    else:
        text = scrape_text(client, **headers)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def lookups(client: TestClient | str, operation: str) -> dict[str, float]:
    """The response cache's lookups of ``operation`` so far, by outcome, scraped from an
    app in process or a gateway served at a base URL."""
    samples = scrape(client)
    outcomes = ("hit", "miss", "changed", "bypassed")
    name = "opsgraph_response_cache_lookups_total"
    return {o: value(samples, name, operation=operation, outcome=o) for o in outcomes}


def value(samples: Samples, name: str, **labels: str) -> float:
    """A series' value; 0 for one not exported yet (a counter no event has touched)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def families(text: str) -> set[str]:
    """The metrics a scrape exports, without the ``_created`` time of each."""
    return {
        family.name
        for family in text_string_to_metric_families(text)
        if not family.name.endswith("_created")
    }


def series_names(text: str) -> set[str]:
    """The names of the series a scrape exports, as a query names them."""
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES[family.type]
    }
