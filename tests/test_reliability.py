"""The service under failure: kill -9 at random moments, Redis stopped and restarted, many instances.

Real `newsdedup run` processes crawl a generated local news web (tests/sites/newsroom.py: originals
on two publishers, full and excerpt copies on an aggregator) into a real Redis. After each ordeal
every article is decided once, with the canonical an undisturbed run gives, and the canonical
stream names every cluster's canonical last, with no event queued twice.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dedup.keys import Keys
from tests.private_redis import PrivateRedis
from tests.service_process import (
    ServiceProcess,
    alive_pids,
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

EVERY = 2.0
"""Seconds between scheduled crawls of a source."""


def write_config(path: Path, room: Newsroom, *, workers: int = 2) -> Path:
    config = path / "sources.toml"
    config.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "5s"
retries = 1
retry_backoff = "0.2s"

[service]
health_port = 0
shutdown_timeout = "15s"
extract_workers = {workers}
lease_ttl = "6s"
claim_idle = "2s"
""" + room.sources_toml(every=f"{EVERY:g}s"))
    return config


@pytest.fixture
def newsroom(request: pytest.FixtureRequest) -> Iterator[Newsroom]:
    stories, first_host = request.param
    room = Newsroom(listed=lambda now: range(stories), first_host=first_host).start()
    yield room
    room.stop()


@pytest.mark.parametrize("newsroom", [(210, 41)], indirect=True)
def test_kill_9_at_random_moments_loses_nothing_and_queues_nothing_twice(
    newsroom: Newsroom, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    expected = newsroom.expected(range(210))
    config = write_config(tmp_path, newsroom)
    env = service_env(redis_server_url, key_prefix)
    keys = Keys(key_prefix)
    seed = int(os.environ.get("NEWSDEDUP_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    context = f"(seed {seed}: NEWSDEDUP_TEST_SEED={seed} repeats the kill moments)"
    kills: list[tuple[float, int, int]] = []
    for attempt in range(4):
        service = ServiceProcess(["run", "--config", str(config)], env)
        try:
            service.health_port()
            workers = service.children()
            assert workers, "no extraction workers"
            started = time.monotonic()
            done = article_count(redis_client, keys)
            if attempt == 0 or done >= len(expected):
                time.sleep(rng.uniform(0.2, 1.0))  # while starting up or fetching the first pages
            else:
                # Mid-crawl whatever the machine's speed: once a random share of what is left is
                # decided (pages are then fetched, extracted, in the inbox and being decided at once).
                target = done + max(1, int(rng.uniform(0.05, 0.3) * (len(expected) - done)))
                wait_for(lambda target=target, service=service: (article_count(redis_client, keys) >= target
                                                                  or not service.alive()),
                         60, f"{target} articles decided", lambda service=service: service.log)
            after = time.monotonic() - started
            service.kill9()
        finally:
            service.cleanup()
        kills.append((round(after, 2), article_count(redis_client, keys), redis_client.xlen(keys.inbox)))
        # The extraction workers die with the service: nothing is left running.
        wait_for(lambda workers=workers: not alive_pids(workers), 5, f"orphaned extraction workers {workers} to exit")
    assert sum(decided < len(expected) for _, decided, _ in kills) >= 2, f"kills too late: {kills} {context}"
    final = ServiceProcess(["run", "--config", str(config)], env)
    try:
        final.health_port()
        wait_for(lambda: settled(redis_client, keys, len(expected)), 90, f"every article decided {context}",
                 lambda: final.log)
        assert final.terminate() == 0, final.log[-4000:]
    finally:
        final.cleanup()
    rows = export_rows(config, env)
    assert_decided_once(rows, stream_events(redis_client, keys), expected, f"after kills {kills} {context}")


@pytest.mark.parametrize("newsroom", [(150, 45)], indirect=True)
def test_redis_down_at_start_and_killed_mid_crawl_loses_nothing(newsroom: Newsroom, tmp_path: Path) -> None:
    expected = newsroom.expected(range(150))
    config = write_config(tmp_path, newsroom)
    server = PrivateRedis(tmp_path / "redis")  # appendonly yes, appendfsync always
    env = service_env(server.url, "reliability:")
    keys = Keys("reliability:")
    service = ServiceProcess(["run", "--config", str(config)], env)
    try:
        # Unreachable at start: the service waits and retries with backoff, it does not exit.
        wait_for(lambda: "Redis unreachable" in service.log, 30, "a 'Redis unreachable' warning",
                 lambda: service.log)
        time.sleep(1.5)
        assert service.alive(), service.log
        server.start()
        client = server.client()
        wait_for(lambda: article_count(client, keys) >= len(expected) // 4, 60, "a quarter of the articles",
                 lambda: service.log)
        # Mid-crawl: SIGKILL (only what Redis acknowledged is on disk), a pause, then a restart on the
        # same port reading its append-only file back.
        server.stop(kill=True)
        before = service.log.count("Redis unreachable")
        time.sleep(2.0)
        assert service.alive(), service.log
        server.start()
        client = server.client()
        wait_for(lambda: settled(client, keys, len(expected)), 90, "every article decided",
                 lambda: service.log)
        assert service.log.count("Redis unreachable") > before, "the outage went unnoticed"
        assert "Redis reachable again" in service.log
        assert service.terminate() == 0, service.log[-4000:]
        rows = export_rows(config, env)
        assert_decided_once(rows, stream_events(client, keys), expected, "after the Redis restart")
    finally:
        service.cleanup()
        server.stop(kill=True)


@pytest.mark.parametrize("newsroom", [(60, 49)], indirect=True)
def test_many_instances_crawl_each_source_once_per_tick_and_agree_with_one(
    newsroom: Newsroom, tmp_path: Path, redis_server_url: str, redis_client: redis.Redis,
) -> None:
    expected = newsroom.expected(range(60))
    config = write_config(tmp_path, newsroom, workers=1)
    canonicals: dict[int, dict[str, str]] = {}
    prefixes = []
    try:
        for instances in (1, 2, 4):
            prefix = f"reliability-{instances}-{os.getpid()}:"
            prefixes.append(prefix)
            keys = Keys(prefix)
            env = service_env(redis_server_url, prefix)
            newsroom.reset_counts()
            services = start_instances(config, env, instances)
            try:
                all_up = time.time()
                wait_for(lambda keys=keys: settled(redis_client, keys, len(expected)), 90, "every article decided",
                         lambda services=services: "".join(s.log for s in services))
                # A few more ticks with every instance running.
                time.sleep(max(0.0, all_up + 4 * EVERY - time.time()))
                for service in services:
                    assert service.terminate() == 0, service.log[-4000:]
            finally:
                for service in services:
                    service.cleanup()
            for source, fetches in newsroom.feed_fetches.items():
                per_tick = Counter(int(stamp // EVERY) for stamp in fetches)
                assert max(per_tick.values()) == 1, (
                    f"{instances} instances: {source} crawled twice in one tick: "
                    f"{[round(b - a, 2) for a, b in itertools.pairwise(fetches)]}")
                span = max(fetches) - min(fetches)
                # One crawl per tick, and the start-up crawl: a tick that comes while it runs is crawled
                # as soon as it ends.
                assert len(fetches) <= span / EVERY + 2
            rows = export_rows(config, service_env(redis_server_url, prefix))
            assert_decided_once(rows, stream_events(redis_client, keys), expected, f"({instances} instances)")
            canonicals[instances] = {str(row["url"]): str(row["canonical_url"]) for row in rows}
        assert canonicals[2] == canonicals[1] and canonicals[4] == canonicals[1]
    finally:
        for prefix in prefixes:
            stale = list(redis_client.scan_iter(match=prefix + "*", count=1000))
            if stale:
                redis_client.delete(*stale)
