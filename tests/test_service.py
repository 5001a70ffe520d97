"""crawler.service end to end: real sites on loopback, real Redis, the real `newsdedup` processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from crawler.demo.site import SiteServer
from crawler.inbox import GROUP, Inbox
from dedup.article import Article
from dedup.keys import Keys
from tests.sites.web import STORIES, build_web, config_text, start_up_only

NEWSDEDUP = [str(Path(sys.executable).parent / "newsdedup")]


@pytest.fixture
def web() -> Iterator[SiteServer]:
    server = build_web()
    yield server
    server.stop()


class Running:
    """A `newsdedup` subprocess whose stderr is collected in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(NEWSDEDUP + args, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def health_port(self, timeout: float = 60) -> int:
        deadline = time.time() + timeout
        while time.time() < deadline:
            match = re.search(r"health and metrics on http://127\.0\.0\.1:(\d+)/", self.log)
            if match:
                return int(match.group(1))
            assert self.proc.poll() is None, self.log
            time.sleep(0.1)
        raise AssertionError("no health port\n" + self.log)

    def stop(self, timeout: float) -> tuple[int, float]:
        started = time.time()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.time() - started


def _env(redis_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")}
    env.update(NEWSDEDUP_REDIS_URL=redis_url, NEWSDEDUP_REDIS_PREFIX=prefix, PYTHONUNBUFFERED="1")
    return env


def _stream(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(keys.canonical_stream)]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait(predicate: object, timeout: float, what: str, logs: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{logs()}" if callable(logs) else what)  # type: ignore[operator]


def test_two_instances_crawl_each_source_once_and_queue_only_originals(
    web: SiteServer, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(config_text(web, cron=start_up_only()))  # the start-up crawl, and no tick after it
    env = _env(redis_server_url, key_prefix)
    keys = Keys(key_prefix)
    first = Running(["run", "--config", str(config)], env)
    second = Running(["run", "--config", str(config), "--shutdown-timeout", "15"], env)
    try:
        ports = [first.health_port(), second.health_port()]
        publisher, awkward = web["publisher"], web["awkward"]
        originals = {publisher.url(f"/news/{story.slug}.html") for story in STORIES[:5]}
        expected = originals | {awkward.url("/flaky")}

        def done() -> bool:
            states = [redis_client.hget(keys.source_state(s), "last_outcome") for s in
                      ("publisher", "aggregator", "awkward")]
            queued = {entry["url"] for entry in _stream(redis_client, keys)}
            return all(states) and expected <= queued and redis_client.xlen(keys.inbox) == 0

        _wait(done, 90, "every source crawled and decided", lambda: first.log + second.log)
        time.sleep(1.0)  # let any (wrong) extra decision land before asserting
        stream = _stream(redis_client, keys)
        # Crawled in parallel, a copy may be decided before its original: it is queued, then replaced.
        current = {entry["cluster"]: entry for entry in stream}
        assert sorted(entry["url"] for entry in current.values()) == sorted(expected), stream
        news = [entry["url"] for entry in stream if entry["event"] == "new"]
        assert len(news) == len(set(news)), news
        for entry in stream:
            if entry["event"] == "replaced":
                assert entry["url"] in originals and "/copy/" in _url_of(stream, entry["replaces"])
        assert all("utm_" not in entry["url"] for entry in stream)
        # One crawl per source across both instances (the lease), robots.txt obeyed.
        assert publisher.hits["/feed.xml"] == 1
        assert web["aggregator"].hits["/atom.xml"] == 1
        assert awkward.hits["/feed.xml"] == 1
        assert publisher.hits["/private/secret.html"] == 0
        assert awkward.hits["/flaky"] == 3  # 503, then 429, then the page
        assert awkward.hits["/error"] == 3  # two retries, then given up
        # Health and metrics, from both instances together.
        metrics = ""
        for port in ports:
            code, body = _get(f"http://127.0.0.1:{port}/healthz")
            assert code == 200 and json.loads(body)["status"] == "ok"
            metrics += _get(f"http://127.0.0.1:{port}/metrics")[1]
        assert 'newsdedup_pages_skipped_total{reason="not_html",source="awkward"} 1.0' in metrics
        assert 'newsdedup_pages_skipped_total{reason="robots",source="publisher"} 1.0' in metrics
        assert 'newsdedup_extraction_failures_total{reason="no_article",source="awkward"} 1.0' in metrics
        assert re.search(r'newsdedup_fetch_errors_total\{reason="too_large",source="awkward"\} 1\.0', metrics)
        assert re.search(r'newsdedup_fetch_errors_total\{reason="timeout",source="awkward"\} 1\.0', metrics)
        decided = re.findall(r'newsdedup_decisions_total\{decision="(\w+)",source="(\w+)"\} (\d+)', metrics)
        # 5 originals, 4 copies, 1 from the awkward site
        assert sum(int(n) for _, _, n in decided) == 10, (decided, first.log[-4000:], second.log[-4000:])
        # The instances that decided keep what they read and wrote for their next batch.
        cached = re.findall(r"^newsdedup_decider_cache_bytes (\S+)$", metrics, re.M)
        assert len(cached) == 2 and sum(float(n) for n in cached) > 0, cached
        assert re.search(r'^newsdedup_decider_cache_reads_total\{result="(hit|miss)"\} [1-9]', metrics, re.M)
        assert "source=aggregator url=" in first.log + second.log
    finally:
        results = [proc.stop(30) for proc in (first, second)]
    for code, took in results:
        assert code == 0
        assert took < 20


def test_crawl_command_fetches_each_article_once_and_uses_conditional_get(
    web: SiteServer, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(config_text(web))
    env = _env(redis_server_url, key_prefix)
    publisher = web["publisher"]
    first = subprocess.run(NEWSDEDUP + ["crawl", "publisher", "--config", str(config), "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["canonical"] == 5
    article = f"/news/{STORIES[0].slug}.html"
    assert publisher.hits[article] == 1
    second = subprocess.run(NEWSDEDUP + ["crawl", "publisher", "--config", str(config), "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["decided"] == 0
    assert publisher.hits[article] == 1  # seen: not fetched again
    assert publisher.hits["/feed.xml"] == 2  # fetched again, but answered 304
    assert '"not_modified": 2' in second.stderr  # the crawl's one INFO line counts the 304s
    assert redis_client.xlen(Keys(key_prefix).canonical_stream) == 5
    listed = subprocess.run(NEWSDEDUP + ["sources", "--config", str(config), "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    rows = {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows["publisher"]["last_result"] == "ok"
    assert rows["publisher"]["schedule"] == "every 1h"
    assert rows["awkward"]["last_result"] is None


def test_articles_fetched_but_not_decided_are_decided_after_a_crash(
    web: SiteServer, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    """The state a kill -9 leaves: inbox entries never read, and entries read by a now dead process."""
    keys = Keys(key_prefix)
    inbox = Inbox(redis_client, keys, retention=86400, consumer="gone-host:1")
    inbox.ensure_group()
    articles = [Article(url=f"http://crash.example/{story.slug}", text=story.text, title=story.title,
                        source="publisher") for story in STORIES[:3]]
    for article in articles:
        inbox.put(article, article.url)
    dead = f"{os.uname().nodename}:{_dead_pid()}"
    redis_client.xreadgroup(GROUP, dead, {keys.inbox: ">"}, count=2)  # read, never acknowledged
    config = tmp_path / "sources.toml"
    config.write_text(config_text(web))
    env = _env(redis_server_url, key_prefix)
    result = subprocess.run(NEWSDEDUP + ["crawl", "awkward", "--config", str(config), "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    urls = [entry["url"] for entry in _stream(redis_client, keys)]
    for article in articles:
        assert urls.count(article.url) == 1, result.stderr
    assert redis_client.xlen(keys.inbox) == 0
    assert inbox.seen([a.url for a in articles]) == [True, True, True]


def _url_of(stream: list[dict[str, str]], article_id: str) -> str:
    return next((entry["url"] for entry in stream if entry["id"] == article_id), "")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_service_process_freezes_its_start_up_and_collects_young_objects_less_often() -> None:
    """After tune_gc (called by `run` and `crawl` once the workers are forked) a full collection no longer
    walks the imported modules, and a cycle made afterwards is still collected."""
    script = """
import gc, weakref
from crawler.service import GC_YOUNG_THRESHOLD, tune_gc
tune_gc()
print(gc.get_threshold()[0] == GC_YOUNG_THRESHOLD, gc.get_freeze_count() > 10000)
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a
gone = weakref.ref(a)
del a, b
gc.collect()
print(gone() is None)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["True", "True", "True"]


def test_the_service_process_leaves_the_extractor_to_its_workers() -> None:
    """trafilatura and its kin (a fifth of a second to import) are loaded by the extraction workers only."""
    script = """
import sys
from crawler.pipelines import extract_page
from crawler.service import extraction_pool
pool = extraction_pool(1, wait=False)
page = b"<html><head><title>A title</title></head><body><article>" + b"<p>Some words of a story here.</p>" * 40 + b"</article></body></html>"
article = pool.submit(extract_page, "https://news.example/a", page, None, "utf-8", "", "src").result()
print("trafilatura" in sys.modules, "Some words" in article.text)
pool.shutdown()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["False", "True"], result.stderr
