"""Every operator command against a 3-primary Redis Cluster (tests/conftest.py), compared with the same
command on a standalone Redis holding the same data.

The data is decided on the standalone Redis and copied key by key (DUMP/RESTORE) into the cluster, so
that both hold exactly the same state; the decisions themselves on the cluster (ingest, check,
overrides, the service) are covered in test_cluster_decide.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from redis.cluster import RedisCluster

from crawler import control
from crawler.cli import main
from crawler.lease import Leases
from dedup.article import Article
from dedup.cluster import scan_keys
from dedup.deadletter import DeadLetters
from dedup.keys import Keys
from dedup.urls import url_id
from tests.test_cli_ops import ORIGINAL_URL, SECOND_URL, _jsonl, _records
from tests.webserver import fetch, web_server

Run = Callable[..., Result]
BAD_PORT = "https://bad.example:99999/x"


def _runner(url: str, prefix: str) -> Run:
    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return CliRunner().invoke(main, [*args, "--redis-url", url, "--key-prefix", prefix], input=input,
                                  catch_exceptions=False)

    return invoke


def copy_keys(source: redis.Redis, prefix: str, target: RedisCluster, target_prefix: str) -> int:
    """Copy every key under `prefix` into the cluster under `target_prefix` (names inside hash tags too)."""
    copied = 0
    for key in source.scan_iter(match=prefix + "*", count=1000):
        name = key.decode().replace(prefix, target_prefix)
        dumped = source.dump(key)
        ttl = source.pttl(key)
        target.restore(name, max(0, ttl), dumped, replace=True)
        copied += 1
    return copied


@pytest.fixture
def both(redis_server_url: str, key_prefix: str, redis_client: redis.Redis, redis_cluster_url: str,
         cluster_key_prefix: str, cluster_client: RedisCluster, tmp_path: Path) -> tuple[Run, Run]:
    """(standalone, cluster) runners over the same decisions, dead letters, control and source state."""
    standalone = _runner(redis_server_url, key_prefix)
    result = standalone("ingest", str(_jsonl(tmp_path / "records.jsonl", _records())), "--workers", "1")
    assert result.exit_code == 0, result.output
    keys = Keys(key_prefix)
    body = _records()[0]["text"]
    DeadLetters(redis_client, keys).add(Article(url=BAD_PORT, text=body), "url: Port out of range",
                                        stage="validate", origin="feeds")
    control.pause(redis_client, keys, "wire", who="ops", reason="too noisy")
    leases = Leases(redis_client, keys, ttl=60, name="test-host")
    token, _ = leases.acquire("local")
    assert token is not None
    leases.release("local", token, {"last_finished": "1700000000", "last_outcome": "ok", "last_counts": "{}"})
    assert copy_keys(redis_client, key_prefix, cluster_client, cluster_key_prefix) > 20
    return standalone, _runner(redis_cluster_url, cluster_key_prefix)


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _without(data: Any, *names: str) -> Any:
    if isinstance(data, dict):
        return {k: _without(v, *names) for k, v in data.items() if k not in names}
    if isinstance(data, list):
        return [_without(v, *names) for v in data]
    return data


def test_keys_of_the_copied_index_live_on_every_primary(both: tuple[Run, Run], cluster_client: RedisCluster,
                                                         cluster_key_prefix: str) -> None:
    holders = {cluster_client.nodes_manager.get_node_from_slot(cluster_client.keyslot(key)).name
               for key in scan_keys(cluster_client, cluster_key_prefix + "*")}
    assert len(holders) == 3


def test_read_commands_answer_on_the_cluster_as_on_one_server(both: tuple[Run, Run]) -> None:
    standalone, cluster = both
    for args in (("export", "--json"), ("dupes", "--json"), ("queue", "peek", "5", "--json"),
                 ("override", "log", "--json"), ("dead", "list", "--json")):
        assert _lines(cluster(*args)) == _lines(standalone(*args)), args
    for args in (("show", ORIGINAL_URL, "--json"), ("show", "https://digest.example/0", "--json"),
                 ("show", ORIGINAL_URL, "--diff", "https://edit.example/0", "--json"),
                 ("explain", ORIGINAL_URL, SECOND_URL, "--json")):
        assert _json(cluster(*args)) == _json(standalone(*args)), args
    info = ("queue", "info", "--json")
    assert _without(_json(cluster(*info)), "key") == _without(_json(standalone(*info)), "key")
    assert cluster("export").stdout == standalone("export").stdout


def test_status_on_the_cluster_counts_every_primary(both: tuple[Run, Run]) -> None:
    standalone, cluster = both
    on_cluster, on_server = _json(cluster("status", "--json")), _json(standalone("status", "--json"))
    assert on_cluster["totals"] == on_server["totals"]
    assert on_cluster["index"]["buckets"] == on_server["index"]["buckets"]
    assert on_cluster["dead_letters"] == on_server["dead_letters"] == 1
    assert on_cluster["redis"]["nodes"] == 3 and on_cluster["redis"]["used_memory"] > 0
    assert on_cluster["redis"]["where"].startswith("redis+cluster://")
    assert [s["name"] for s in on_cluster["sources"]] == [s["name"] for s in on_server["sources"]] == ["local"]
    assert "redis+cluster://" in cluster("status").stdout


def test_control_commands_on_the_cluster(both: tuple[Run, Run], cluster_client: RedisCluster,
                                         cluster_key_prefix: str, tmp_path: Path) -> None:
    _, cluster = both
    keys = Keys(cluster_key_prefix)
    assert control.is_paused(cluster_client, keys, "wire")
    assert cluster("pause", "local", "--reason", "maintenance").exit_code == 0
    assert control.is_paused(cluster_client, keys, "local")
    assert cluster("resume", "local").exit_code == 0
    assert not control.is_paused(cluster_client, keys, "local")
    assert cluster("crawl-now", "local").exit_code == 0
    assert "local" in control.crawl_requests(cluster_client, keys)
    assert cluster("pause", "local", "--reason", "maintenance").exit_code == 0
    config = tmp_path / "sources.toml"
    config.write_text('[[sources]]\nname = "local"\nfeeds = ["http://127.0.0.1:9/feed.xml"]\n', "utf-8")
    listed = _lines(cluster("sources", "--json", "--config", str(config)))
    assert [row["name"] for row in listed] == ["local"] and listed[0]["paused"]["reason"] == "maintenance"


def test_dead_letters_drop_on_the_cluster(both: tuple[Run, Run]) -> None:
    _, cluster = both
    [letter] = _lines(cluster("dead", "list", "--json"))
    assert letter["url"] == BAD_PORT
    dropped = _json(cluster("dead", "drop", "--all", "--json"))
    assert dropped["dropped"] == 1
    assert _lines(cluster("dead", "list", "--json")) == []


def test_queue_consume_on_the_cluster(both: tuple[Run, Run]) -> None:
    standalone, cluster = both
    args = ("queue", "consume", "--group", "search", "--count", "4")
    assert _lines(cluster(*args)) == _lines(standalone(*args))


def test_web_dashboard_pages_on_the_cluster(both: tuple[Run, Run], redis_cluster_url: str,
                                            cluster_key_prefix: str) -> None:
    paths = ("/", "/?range=7d", "/duplicates", "/overrides", "/search?q=original", f"/story/{url_id(ORIGINAL_URL)}")
    with web_server(redis_cluster_url, cluster_key_prefix) as server:
        for path in paths:
            reply = fetch(server.url.rstrip("/") + path)
            assert reply.status == 200, (path, reply.body[:500], "".join(server.output)[-2000:])
        overview = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fetch(server.url).body)))
    articles = _json(both[0]("status", "--json"))["totals"]["articles"]
    assert f"Articles kept {articles} " in overview and "redis+cluster://" in overview
