"""Decisions on a real 3-primary Redis Cluster (tests/conftest.py): the same as on one Redis, by
`ingest`, by the service crawling a local web, and by four instances whose deciding one is killed -9."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from redis.cluster import RedisCluster

from crawler.cli import main
from crawler.demo.site import SiteServer
from dedup.article import Article
from dedup.deadletter import DeadLetters
from dedup.decider import lease_key
from dedup.engine import Engine, EngineConfig
from dedup.keys import Keys
from tests.service_process import (
    ServiceProcess,
    article_count,
    assert_decided_once,
    export_rows,
    service_env,
    settled,
    start_instances,
    stream_events,
    wait_for,
)
from tests.sites.newsroom import Newsroom
from tests.sites.web import STORIES, build_web, config_text, start_up_only
from tests.test_reliability import write_config
from tests.textcases import articles
from tests.webserver import CORPUS


def _cli(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_shuffled_corpus_decided_on_the_cluster_exports_as_on_one_server(
    redis_server_url: str, key_prefix: str, redis_cluster_url: str, cluster_key_prefix: str, tmp_path: Path,
) -> None:
    lines = [line for line in CORPUS.read_text("utf-8").splitlines() if line.strip()]
    random.Random(10).shuffle(lines)
    records = tmp_path / "records.jsonl"
    records.write_text("".join(line + "\n" for line in lines), "utf-8")
    exports = []
    for url, prefix in ((redis_server_url, key_prefix), (redis_cluster_url, cluster_key_prefix)):
        connection = ["--redis-url", url, "--key-prefix", prefix]
        _cli("ingest", str(records), "--workers", "1", *connection)
        exports.append(_rows(_cli("export", *connection)))
    standalone, cluster = exports
    assert len(standalone) == len(lines)
    assert cluster == standalone  # same rows, same order
    assert any(not row["is_canonical"] for row in cluster)


def test_check_and_overrides_on_the_cluster(redis_cluster_url: str, cluster_key_prefix: str, tmp_path: Path) -> None:
    lines = [line for line in CORPUS.read_text("utf-8").splitlines() if line.strip()][:20]
    records = tmp_path / "records.jsonl"
    records.write_text("".join(line + "\n" for line in lines), "utf-8")
    connection = ["--redis-url", redis_cluster_url, "--key-prefix", cluster_key_prefix]
    _cli("ingest", str(records), "--workers", "1", *connection)
    rows = [json.loads(line) for line in _cli("export", *connection).splitlines()]
    copy = next(row for row in rows if not row["is_canonical"] and not row["thin"])
    pages = {record["url"]: record.get("html") or record.get("text") for record in map(json.loads, lines)}
    original = pages[copy["canonical_url"]]
    checked = json.loads(_cli("check", "-", "--url", "https://check.example/a", "--json", *connection,
                              input=original))
    assert checked["decision"]["kind"] in ("exact", "near", "excerpt"), checked
    _cli("override", "split", copy["url"], "--reason", "not a copy", *connection)
    split = {row["url"]: row for row in map(json.loads, _cli("export", *connection).splitlines())}
    assert split[copy["url"]]["is_canonical"]
    _cli("override", "undo", "--reason", "it was a copy", *connection)
    undone = {row["url"]: row for row in map(json.loads, _cli("export", *connection).splitlines())}
    assert not undone[copy["url"]]["is_canonical"]
    assert len(json.loads("[" + ",".join(_cli("override", "log", "--json", *connection).splitlines()) + "]")) == 2


@pytest.fixture
def web() -> Iterator[SiteServer]:
    server = build_web()
    yield server
    server.stop()


def test_two_instances_crawl_the_local_web_onto_the_cluster(
    web: SiteServer, tmp_path: Path, redis_cluster_url: str, cluster_key_prefix: str, cluster_client: RedisCluster,
) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(config_text(web, cron=start_up_only()))  # the start-up crawl, and no tick after it
    env = service_env(redis_cluster_url, cluster_key_prefix)
    keys = Keys(cluster_key_prefix)
    publisher, awkward = web["publisher"], web["awkward"]
    originals = {publisher.url(f"/news/{story.slug}.html") for story in STORIES[:5]}
    expected = originals | {awkward.url("/flaky")}
    services = start_instances(config, env, 2)
    try:
        def done() -> bool:
            states = [cluster_client.hget(keys.source_state(s), "last_outcome")
                      for s in ("publisher", "aggregator", "awkward")]
            queued = {event["url"] for event in stream_events(cluster_client, keys)}
            return all(states) and expected <= queued and cluster_client.xlen(keys.inbox) == 0

        wait_for(done, 120, "every source crawled and decided", lambda: "".join(s.log for s in services))
        for service in services:
            assert service.terminate() == 0, service.log[-4000:]
    finally:
        for service in services:
            service.cleanup()
    stream = stream_events(cluster_client, keys)
    current = {event["cluster"]: event for event in stream}
    assert sorted(event["url"] for event in current.values()) == sorted(expected)
    news = [event["url"] for event in stream if event["event"] == "new"]
    assert len(news) == len(set(news))
    assert publisher.hits["/feed.xml"] == 1 and web["aggregator"].hits["/atom.xml"] == 1  # one crawl each
    status = json.loads(_cli("status", "--json", "--redis-url", redis_cluster_url, "--key-prefix", cluster_key_prefix,
                             "--config", str(config)))
    assert status["redis"]["nodes"] == 3 and {s["name"] for s in status["sources"]} == {
        "publisher", "aggregator", "awkward"}


@pytest.fixture
def newsroom(request: pytest.FixtureRequest) -> Iterator[Newsroom]:
    stories, first_host = request.param
    room = Newsroom(listed=lambda now: range(stories), first_host=first_host).start()
    yield room
    room.stop()


def _decider_pid(client: RedisCluster, keys: Keys, services: list[ServiceProcess]) -> int | None:
    """The pid of the instance holding the decider lease, if one of ours does."""
    holder = client.get(lease_key(keys))
    if not holder:
        return None
    text = holder.decode()
    for service in services:
        if f":{service.proc.pid}:" in f"{text}:" or text.endswith(f":{service.proc.pid}"):
            return service.proc.pid
    return None


def _catch_decider(client: RedisCluster, keys: Keys, services: list[ServiceProcess], total: int,
                   timeout: float = 60) -> int | None:
    """The pid of an instance of ours caught holding the decider lease (polled every few ms: a batch
    holds it for milliseconds), or None once every article is decided."""
    deadline = time.monotonic() + timeout
    polls = 0
    while time.monotonic() < deadline:
        pid = _decider_pid(client, keys, services)
        if pid is not None:
            return pid
        polls += 1
        if polls % 200 == 0 and article_count(client, keys) >= total:
            return None
        time.sleep(0.002)
    return None


@pytest.mark.parametrize("newsroom", [(120, 53)], indirect=True)
def test_four_instances_with_the_decider_killed_9_lose_nothing_on_the_cluster(
    newsroom: Newsroom, tmp_path: Path, redis_cluster_url: str, cluster_key_prefix: str, cluster_client: RedisCluster,
) -> None:
    expected = newsroom.expected(range(120))
    newsroom.article_delay = 0.25  # a crawl of a few seconds, so that a decider is caught mid-run
    config = write_config(tmp_path, newsroom, workers=1)
    env = service_env(redis_cluster_url, cluster_key_prefix)
    keys = Keys(cluster_key_prefix)
    services = start_instances(config, env, 4)
    killed: list[int] = []
    try:
        for _ in range(2):  # kill the deciding instance twice, mid-run (the second time only if work is left)
            before = article_count(cluster_client, keys)
            if before >= len(expected):
                break
            target = before + max(1, min(15, (len(expected) - before) // 4))
            wait_for(lambda target=target: article_count(cluster_client, keys) >= target,
                     90, "decisions under way", lambda: "".join(s.log for s in services))
            pid = _catch_decider(cluster_client, keys, services, len(expected))
            if pid is None:  # everything was decided before a decider could be caught holding the lease
                break
            victim = next(service for service in services if service.proc.pid == pid)
            victim.kill9()
            killed.append(article_count(cluster_client, keys))
            services.remove(victim)
            victim.cleanup()
        assert killed, "every article was decided before the decider could be killed"
        assert min(killed) < len(expected), f"killed too late: {killed}"
        wait_for(lambda: settled(cluster_client, keys, len(expected)), 120, "every article decided",
                 lambda: "".join(s.log for s in services))
        for service in services:
            assert service.terminate() == 0, service.log[-4000:]
    finally:
        for service in services:
            service.cleanup()
    rows = export_rows(config, env)
    assert_decided_once(rows, stream_events(cluster_client, keys), expected, f"(decider killed at {killed})")



def test_dead_letters_retried_on_the_cluster(redis_cluster_url: str, cluster_key_prefix: str,
                                              cluster_client: RedisCluster) -> None:
    keys = Keys(cluster_key_prefix)
    dead = DeadLetters(cluster_client, keys)
    url, body = articles()[0]
    good = dead.add(Article(url=url, text=body), "RuntimeError: a bug since fixed", stage="decide", origin="feeds")
    connection = ["--redis-url", redis_cluster_url, "--key-prefix", cluster_key_prefix]
    result = CliRunner().invoke(main, ["dead", "retry", "--all", "--json", *connection], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [outcome] = [json.loads(line) for line in result.stdout.splitlines()]
    assert outcome["id"] == good and outcome["decided"] and outcome["kind"] == "canonical"
    assert dead.count() == 0
    [row] = [json.loads(line) for line in _cli("export", *connection).splitlines()]
    assert row["url"] == url and row["is_canonical"]


def test_retention_expires_and_forgets_on_the_cluster(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    keys = Keys(cluster_key_prefix)
    engine = Engine(cluster_client, keys, EngineConfig(retention=3600))
    (url, body), (other_url, other_body) = articles()[0], articles()[1]
    first, second = engine.add(Article(url=url, text=body)), engine.add(Article(url=url + "?copy", text=body))
    kept = engine.add(Article(url=other_url, text=other_body))
    stored = engine.get(first.article_id)
    assert stored is not None
    canonical_id = engine.cluster(stored.cluster)[0]
    copy_id = second.article_id if canonical_id == first.article_id else first.article_id
    assert engine.forget([canonical_id]) == 1  # the copy becomes its cluster's canonical
    survivor = engine.get(copy_id)
    assert engine.get(canonical_id) is None and survivor is not None
    assert engine.cluster(survivor.cluster)[0] == copy_id
    assert engine.expire(now=time.time() + 2 * 86400) == 2  # everything is older than the window now
    assert engine.get(copy_id) is None and engine.get(kept.article_id) is None
    assert article_count(cluster_client, keys) == 0
