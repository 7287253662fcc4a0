"""deploy/grafana-dashboard.json queries only what observability.METRICS exports, with the
labels those metrics have, so the dashboard cannot drift from the metrics table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from photovault_server.observability import METRICS

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
# A metric name in PromQL: a word followed by a selector, a range or the end of an argument.
NAME = re.compile(r"\b([a-z_][a-z0-9_]*)\s*(?=[{\[)])")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
# Grafana's template query: label_values(metric, label).
LABEL_VALUES = re.compile(r"label_values\((\w+),\s*\w+\)")
PROMQL_WORDS = {"sum", "rate", "increase", "histogram_quantile", "by", "max", "avg"}
# Labels Prometheus adds to every scraped series, and a histogram's bucket label.
SCRAPE_LABELS = {"job", "instance", "le"}


def exported() -> dict[str, set[str]]:
    """Every series name /metrics serves, with its labels."""
    names: dict[str, set[str]] = {}
    for metric in METRICS:
        labels = set(metric.labels)
        if metric.kind == "counter":
            names[f"{metric.name}_total"] = labels
        elif metric.kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[metric.name + suffix] = labels
        else:
            names[metric.name] = labels
    return names


def queries(node: Any) -> Iterator[str]:
    """Panels' `expr`, and template variables' query `definition`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def referenced(expr: str) -> set[str]:
    without_groupings = GROUPING.sub("", LABEL_VALUES.sub(r"\1{}", expr))
    return {name for name in NAME.findall(without_groupings) if name not in PROMQL_WORDS}


def test_every_queried_metric_and_label_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    series = exported()
    found = list(queries(dashboard))
    assert len(found) > 10
    for expr in found:
        names = referenced(expr)
        assert names, f"no metric in {expr!r}"
        unknown = names - series.keys()
        assert not unknown, f"{expr!r} queries {unknown}, not in observability.METRICS"
        labels = set().union(*(series[name] for name in names)) | SCRAPE_LABELS
        for grouping in GROUPING.findall(expr):
            used = {label.strip() for label in grouping.split(",")}
            assert used <= labels, f"{expr!r} groups by {used - labels}"


def test_the_checker_sees_a_metric_that_does_not_exist() -> None:
    """The test above would pass on a parser that found nothing: it must see names."""
    expr = 'sum by (grpc_code) (rate(grpc_server_handled_total[5m])) + photovault_nope{a="b"}'
    assert referenced(expr) == {"grpc_server_handled_total", "photovault_nope"}
    assert referenced("label_values(photovault_asyncio_tasks, job)") == {"photovault_asyncio_tasks"}
    assert "photovault_nope" not in exported()


def test_the_dashboard_covers_every_family_of_the_table() -> None:
    text = DASHBOARD.read_text()
    for name in (
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "photovault_url_cache_hits_total",
        "photovault_redis_breaker_state",
        "photovault_db_pool_connections",
        "photovault_asyncio_tasks",
    ):
        assert name in text, name
