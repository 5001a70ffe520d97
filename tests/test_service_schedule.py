"""crawler.service scheduling and leases, with real processes: crawls longer than their period, a lost lease.

A slow local site (every response delayed) makes crawls take seconds; the sites record when each request
arrived and from which user agent, so the tests see which instance fetched what, and when.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from crawler.config import SourceSettings
from crawler.demo.site import Reply, Site, SiteServer, publisher_page, rss
from crawler.service import TICK_LATENESS, _due
from dedup.keys import Keys
from tests.service_process import ServiceProcess, service_env, start_instances, wait_for
from tests.sites.newsroom import story

PERIOD = 2.0
FEED_DELAY = 3.0
"""The slow feed answers after this long: each crawl of it takes a little more than this."""


class SlowSite:
    """One site whose feed lists `articles` pages; feed and pages answer after a delay. Records every request."""

    def __init__(self, host: str, articles: int, *, feed_delay: float = 0.0, article_delay: float = 0.0) -> None:
        self.site = Site("slow", host)
        self.server = SiteServer([self.site])
        self.requests: list[tuple[float, str, str]] = []
        """(arrival time, path, user agent) of every request."""
        self._lock = threading.Lock()
        self.articles = articles
        self.feed_delay = feed_delay
        self.article_delay = article_delay
        self.site.respond = self._respond  # type: ignore[method-assign]

    def start(self) -> SlowSite:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def url(self, path: str) -> str:
        return self.site.url(path)

    def arrivals(self, path: str | None = None, *, agent: str | None = None, articles: bool = False) -> list[float]:
        with self._lock:
            return [stamp for stamp, got, ua in self.requests
                    if (path is None or got == path) and (agent is None or agent in ua)
                    and (not articles or got.startswith("/news/"))]

    def _respond(self, path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append((time.time(), path, headers.get("user-agent", "")))
        published = datetime(2026, 1, 1, tzinfo=UTC)
        if path == "/robots.txt":
            return Reply(200, b"User-agent: *\nAllow: /\n", "text/plain")
        if path == "/feed.xml":
            items = [(f"Report {n}", self.url(f"/news/{n}.html"), published + timedelta(minutes=n))
                     for n in range(self.articles)]
            return Reply(200, rss("slow", self.site.base, items).encode(), "application/rss+xml", delay=self.feed_delay)
        match = re.fullmatch(r"/news/(\d+)\.html", path)
        if match and int(match.group(1)) < self.articles:
            number = int(match.group(1))
            page = publisher_page("Slow", story(number, published + timedelta(minutes=number)), self.url(path))
            return Reply(200, page.encode(), delay=self.article_delay)
        return Reply(404, b"<html><body><h1>Not found</h1></body></html>")


def write_config(path: Path, site: SlowSite, *, every: str, instance: str = "", lease_ttl: str = "6s",
                 delay: str = "0s") -> Path:
    path.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "10s"
retries = 0
user_agent = "newsdedup-test ({instance or 'instance'})"

[service]
health_port = 0
shutdown_timeout = "15s"
extract_workers = 1
lease_ttl = "{lease_ttl}"
claim_idle = "2s"
instance = "{instance}"

[[sources]]
name = "slow"
feeds = ["{site.url('/feed.xml')}"]
every = "{every}"
delay = "{delay}"
""")
    return path


def test_a_tick_run_late_counts_from_when_it_was_due() -> None:
    """A busy event loop runs a tick late (by seconds, on a loaded machine): a crawl that listed the feeds
    after the tick was due has served it, however late the tick then ran (Service._tick)."""
    every = SourceSettings("every", feeds=("https://a.example/feed.xml",), every=PERIOD)
    due = datetime(2026, 11, 30, 6, 35, 24, tzinfo=UTC)  # a multiple of PERIOD since the tick epoch
    for late in (0.0, 0.4, 1.8):
        assert _due(every, due + timedelta(seconds=late)) == due.timestamp()
    assert _due(every, due + timedelta(seconds=PERIOD + 0.3)) == due.timestamp() + PERIOD
    cron = SourceSettings("cron", feeds=("https://a.example/feed.xml",), cron="*/30 * * * *")
    half_past = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    assert _due(cron, half_past + timedelta(seconds=1.8)) == half_past.timestamp()
    # No tick due in the last TICK_LATENESS seconds: the tick is taken to be due when it runs.
    assert _due(cron, half_past + timedelta(seconds=TICK_LATENESS + 1)) == half_past.timestamp() + TICK_LATENESS + 1


@pytest.fixture
def slow_feed() -> Iterator[SlowSite]:
    site = SlowSite("127.0.0.61", 1, feed_delay=FEED_DELAY).start()
    yield site
    site.stop()


@pytest.mark.parametrize("instances", [1, 2])
def test_crawls_longer_than_the_period_run_back_to_back_once_per_tick(
    slow_feed: SlowSite, tmp_path: Path, redis_server_url: str, key_prefix: str, instances: int,
) -> None:
    """every = 2s, each crawl ~3s: never two at once; the ticks missed meanwhile become one crawl that starts
    as soon as the running one ends (not at the tick after); with several instances, still one at a time."""
    config = write_config(tmp_path / "sources.toml", slow_feed, every=f"{PERIOD:g}s")
    env = service_env(redis_server_url, key_prefix)
    services = start_instances(config, env, instances)
    try:
        logs = lambda: "".join(s.log for s in services)
        wait_for(lambda: len(slow_feed.arrivals("/feed.xml")) >= 5, 40, "five crawls of the slow feed", logs)
        steady = len(slow_feed.arrivals("/feed.xml"))
        for service in services:
            assert service.terminate() == 0, service.log[-4000:]
    finally:
        for service in services:
            service.cleanup()
    # The gaps while every instance ran: once the first instance is told to stop it drains its crawl
    # for about 3s while the other still ticks, which is not the steady state asserted here.
    fetches = slow_feed.arrivals("/feed.xml")[:steady]
    gaps = [round(later - earlier, 2) for earlier, later in itertools.pairwise(fetches)]
    # Each fetch takes 3s: a gap under that is two crawls at once (two instances, or a tick not waited for).
    assert min(gaps) >= FEED_DELAY - 0.1, f"crawls overlapped: gaps {gaps}"
    # The next crawl starts when the running one ends, about 3s later; skipping to the following tick
    # (the crawl ends just after one tick and waits for the next) makes gaps of 4s.
    assert max(gaps) < FEED_DELAY + 0.8, f"a crawl waited for a later tick: gaps {gaps}"
    assert "skipped: maximum number of running instances" not in logs()


def test_a_lost_lease_stops_the_crawl_and_leaves_the_new_holders_state_alone(
    tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    """Instance A crawls; Redis goes away for A long enough for its lease to expire, and B takes the source.
    When Redis is back, A stops: no new request, what it fetched still reaches the inbox, the outcome is
    lease_lost (counted), and A writes neither its state nor its validators over B's."""
    site = SlowSite("127.0.0.62", 80, article_delay=0.1).start()
    keys = Keys(key_prefix)
    lease_key = keys.source_lease("slow")
    proxy = TcpProxy(redis_server_url).start()
    a = b = None
    try:
        # One article every ~0.4s (the source's delay): 80 take half a minute.
        config_a = write_config(tmp_path / "a.toml", site, every="1h", instance="instance-a", lease_ttl="3s",
                                delay="0.4s")
        config_b = write_config(tmp_path / "b.toml", site, every="1h", instance="instance-b", lease_ttl="3s",
                                delay="0.4s")
        a = ServiceProcess(["run", "--config", str(config_a)], service_env(proxy.url, key_prefix))
        a_port = a.health_port()
        wait_for(lambda: len(site.arrivals(agent="instance-a", articles=True)) >= 3, 30, "A fetching articles",
                 lambda: a.log)
        assert (redis_client.get(lease_key) or b"").startswith(b"instance-a:")
        proxy.cut()  # Redis away for A (only)
        wait_for(lambda: redis_client.get(lease_key) is None, 10, "A's lease to expire", lambda: a.log)
        b = ServiceProcess(["run", "--config", str(config_b)], service_env(redis_server_url, key_prefix))
        wait_for(lambda: (redis_client.get(lease_key) or b"").startswith(b"instance-b:"), 60, "B to take the lease",
                 lambda: b.log)
        proxy.restore()
        wait_for(lambda: "lease lost" in a.log, 20, "A to notice", lambda: a.log)
        fetched_by_a = len(site.arrivals(agent="instance-a", articles=True))
        wait_for(lambda: "crawl lease_lost" in a.log, 30, "A's crawl to end", lambda: a.log)
        time.sleep(1.0)
        # No request after the loss was noticed; every page A fetched reached the inbox and is decided.
        assert len(site.arrivals(agent="instance-a", articles=True)) == fetched_by_a, a.log[-3000:]
        assert fetched_by_a < 60, a.log[-5000:]
        metrics = _get(f"http://127.0.0.1:{a_port}/metrics")
        assert _sample(metrics, "newsdedup_crawls_total", outcome="lease_lost") == 1.0
        assert _sample(metrics, "newsdedup_pages_fetched_total", kind="article") == fetched_by_a
        assert _sample(metrics, "newsdedup_articles_extracted_total") == fetched_by_a
        # B's lease and state: A wrote neither its outcome nor validators.
        state = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.source_state("slow")).items()}
        assert state["holder"].startswith("instance-b:"), state
        assert not state.get("last_instance", "").startswith("instance-a"), state
        assert not any(name.startswith(("etag:", "modified:")) for name in state), state
        assert (redis_client.get(lease_key) or b"").startswith(b"instance-b:")
        assert b.terminate() == 0, b.log[-4000:]
        state = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.source_state("slow")).items()}
        assert state["last_instance"].startswith("instance-b:"), state
        assert a.terminate() == 0, a.log[-4000:]
        assert "Traceback" not in a.log + b.log
    finally:
        for service in (a, b):
            if service is not None:
                service.cleanup()
        proxy.stop()
        site.stop()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _sample(metrics: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{key}="{value}"' in match.group(1) for key, value in labels.items()):
            total += float(match.group(2))
    return total


class TcpProxy:
    """A loopback TCP proxy to a Redis server that can cut its clients off (connections closed, new ones
    refused at once) and let them through again: Redis away for one instance only."""

    def __init__(self, redis_url: str) -> None:
        match = re.match(r"redis://([^:/]+):(\d+)(/\d+)?", redis_url)
        assert match, redis_url
        self.upstream = (match.group(1), int(match.group(2)))
        self.database = match.group(3) or "/0"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.database}"

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            self.open = False
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def restore(self) -> None:
        with self._lock:
            self.open = True

    def stop(self) -> None:
        self.cut()
        _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if not self.open:
                    _close(client)
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    _close(client)
                    continue
                server.settimeout(None)
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
