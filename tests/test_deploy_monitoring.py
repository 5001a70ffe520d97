"""deploy/monitoring/: the Prometheus alert rules and the Grafana dashboard, parsed and checked
against the metrics the service really exports (crawler.health.Metrics); `promtool` checks and
unit-tests the rules when it is installed (Debian: apt-get install prometheus)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml  # type: ignore[import-untyped]
from prometheus_client import generate_latest

from crawler.health import Metrics

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
REDIS_EXPORTER = {"redis_memory_used_bytes": set(), "redis_memory_max_bytes": set(), "redis_up": set()}
"""The redis_exporter metrics the rules and dashboard use (the service does not export Redis memory)."""
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "and", "or", "unless", "rate",
    "increase", "deriv", "delta", "absent", "vector", "time", "label_values", "group_left", "group_right",
    "offset", "bool", "histogram_quantile", "clamp_min",
}
TARGET_LABELS = {"job", "instance"}


def known_metrics() -> dict[str, set[str]]:
    """Every series name the service exports, with its label names (counters end in _total)."""
    metrics: dict[str, set[str]] = {"up": set()}
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels: set[str] = set()
        for attribute in vars(Metrics()).values():
            if getattr(attribute, "_name", None) == family.name:
                labels = set(attribute._labelnames)
        metrics[name] = labels
    return {**metrics, **REDIS_EXPORTER}


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def check_expr(expr: str, where: str) -> set[str]:
    """The metric names an expression uses; fails on any name or label the service does not export."""
    metrics = known_metrics()
    all_labels = set().union(*metrics.values()) | TARGET_LABELS
    bare = _strip_strings(expr)
    used: set[str] = set()
    for name in re.findall(r"(?<![\w.$])[A-Za-z_:][\w:]*", bare):
        if name in PROMQL_WORDS or name in all_labels:
            continue
        assert name in metrics, f"{where}: {name!r} is not a metric the service (or redis_exporter) exports"
        used.add(name)
    for name, selector in re.findall(r"([A-Za-z_:][\w:]*)\{([^}]*)\}", bare):
        for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", selector):
            assert label in metrics[name] | TARGET_LABELS, f"{where}: {name} has no label {label!r}"
    for grouping in re.findall(r"\bby\s*\(([^)]*)\)", bare):
        for label in (part.strip() for part in grouping.split(",")):
            assert label in all_labels, f"{where}: grouping by unknown label {label!r}"
    return used


# Alert rules

def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_parse_and_are_complete() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert [group["name"] for group in document["groups"]] == ["newsdedup", "newsdedup-redis"]
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    required = {"NewsdedupDown", "NewsdedupDeciderStalled", "NewsdedupInboxLagGrowing", "NewsdedupConsumerLagGrowing",
                "NewsdedupCrawlFailuresRising", "RedisMemoryNearLimit"}
    assert required <= set(names)
    for rule in rules():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_every_alert_expression_uses_exported_metrics() -> None:
    used: set[str] = set()
    for rule in rules():
        used |= check_expr(rule["expr"], rule["alert"])
    assert {"newsdedup_inbox_length", "newsdedup_decisions_total", "newsdedup_consumer_lag",
            "newsdedup_crawls_total", "redis_memory_used_bytes", "up"} <= used


def test_the_checker_catches_a_wrong_metric_or_label() -> None:
    with pytest.raises(AssertionError, match="not a metric"):
        check_expr("rate(newsdedup_decision_total[5m])", "typo")
    with pytest.raises(AssertionError, match="has no label 'kind'"):
        check_expr('newsdedup_decisions_total{kind="near"}', "label")


# Grafana dashboard

def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def test_dashboard_panels_have_targets_on_exported_metrics() -> None:
    board = dashboard()
    assert board["uid"] == "newsdedup" and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    check_expr(variables["source"]["definition"], "source variable")
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    used: set[str] = set()
    for panel in panels:
        assert panel["type"] in ("stat", "timeseries"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no targets"
        for target in panel["targets"]:
            used |= check_expr(target["expr"].replace("$source", "x"), panel["title"])
    exported = {name for name in known_metrics() if name.startswith("newsdedup_")}
    assert exported <= used, f"metrics without a panel: {sorted(exported - used)}"


def test_dashboard_layout_has_no_overlaps() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        box = panel["gridPos"]
        assert 0 <= box["x"] and box["x"] + box["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


# The consumer-group gauges the rules need

def test_consumer_group_gauges(redis_client: redis.Redis, key_prefix: str) -> None:
    stream = key_prefix + "canonical"
    metrics = Metrics()
    metrics.observe_groups(redis_client, stream)  # no stream yet: nothing, no error
    for index in range(5):
        redis_client.xadd(stream, {"n": str(index)})
    redis_client.xgroup_create(stream, "search", id="0")
    redis_client.xreadgroup("search", "c1", {stream: ">"}, count=2)
    metrics.observe_groups(redis_client, stream)
    assert metrics.value("newsdedup_consumer_pending", group="search") == 2
    if int(redis_client.info("server")["redis_version"].split(".")[0]) >= 7:
        assert metrics.value("newsdedup_consumer_lag", group="search") == 3
    assert b'newsdedup_consumer_pending{group="search"} 2.0' in generate_latest(metrics.registry)


# promtool, when installed

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: apt-get install "
                                                              "prometheus): rules only parsed, not run")

RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'newsdedup_inbox_length{{job="newsdedup",instance="a"}}'
        values: '50x40'
      - series: 'newsdedup_decisions_total{{job="newsdedup",instance="a",source="s",decision="canonical"}}'
        values: '10x40'
      - series: 'newsdedup_crawls_total{{job="newsdedup",instance="a",source="s",outcome="failed"}}'
        values: '0+3x120'
      - series: 'newsdedup_crawls_total{{job="newsdedup",instance="a",source="s",outcome="ok"}}'
        values: '0+1x120'
      - series: 'redis_memory_used_bytes{{job="redis_exporter",instance="r"}}'
        values: '900x30'
      - series: 'redis_memory_max_bytes{{job="redis_exporter",instance="r"}}'
        values: '1000x30'
      - series: 'up{{job="newsdedup",instance="a"}}'
        values: '1 1 0 0 0 0'
    alert_rule_test:
      - eval_time: 30m
        alertname: NewsdedupDeciderStalled
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations:
              summary: articles wait in the inbox but nothing is being decided
              description: "The inbox holds 50 fetched articles and no instance made a decision in 10 minutes: the decider loop is stuck or dead (see /healthz: decider)."
      - eval_time: 100m
        alertname: NewsdedupCrawlFailuresRising
        exp_alerts:
          - exp_labels: {{severity: warning, source: s}}
            exp_annotations:
              summary: most crawls of source s fail
              description: "More than half of the crawls of s in the last hour failed. `newsdedup sources` and the dashboard show the last result."
      - eval_time: 20m
        alertname: RedisMemoryNearLimit
        exp_alerts:
          - exp_labels: {{severity: critical, job: redis_exporter, instance: r}}
            exp_annotations:
              summary: Redis r uses over 85% of maxmemory
              description: "With maxmemory-policy noeviction, writes fail when memory is full and the service stops deciding. Shorten [dedup] retention or stream_retention, trim the stream (stream_maxlen) or raise maxmemory."
      - eval_time: 5m
        alertname: NewsdedupDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: newsdedup, instance: a}}
            exp_annotations:
              summary: newsdedup instance a is down
              description: "Prometheus cannot scrape /metrics of a for 2 minutes: the service is not running or its health port is unreachable."
  - interval: 1m
    input_series:
      - series: 'newsdedup_inbox_length{{job="newsdedup",instance="a"}}'
        values: '50x40'
      - series: 'newsdedup_decisions_total{{job="newsdedup",instance="a",source="s",decision="canonical"}}'
        values: '0+20x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: NewsdedupDeciderStalled
        exp_alerts: []
"""


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(RULE_TESTS.format(rules=json.dumps(str(ALERTS))))
    result = subprocess.run([PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
