"""crawler.control with real service processes: pause, resume and crawl-now through Redis, each source's
status (next crawl, results kept per crawl, failing URLs with reasons), and what the service logs."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from crawler.demo.site import Reply, Request, Site, SiteServer, aggregator_page, publisher_page, rss
from dedup.keys import Keys
from tests.service_process import NEWSDEDUP, ServiceProcess, service_env, start_instances, wait_for
from tests.sites.newsroom import story

PUBLISHED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def newsroom() -> Iterator[Site]:
    """A feed listing an original, a wrapped copy of it, another story, and a page that is gone (404)."""
    site = Site("control", "127.0.0.73")
    server = SiteServer([site]).start()
    original, other = story(1, PUBLISHED), story(2, PUBLISHED)
    site.page("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    site.page("/news/1.html", publisher_page("Control", original, site.url("/news/1.html")))
    site.page("/news/2.html", publisher_page("Control", other, site.url("/news/2.html")))
    site.page("/copy/1.html", aggregator_page("Farm", original, site.url("/news/1.html")))
    items = [(original.title, site.url("/news/1.html"), PUBLISHED), (other.title, site.url("/news/2.html"), PUBLISHED),
             ("Gone", site.url("/news/gone.html"), PUBLISHED)]
    later = [*items, (original.title, site.url("/copy/1.html"), PUBLISHED)]

    def feed(request: Request) -> Reply:
        """The copy appears from the second crawl on: decided after its original, it is the duplicate."""
        listed = items if request.hits == 1 else later
        return Reply(200, rss("control", site.base, listed).encode(), "application/rss+xml")

    site.add("/feed.xml", feed)
    yield site
    server.stop()


def _config(path: Path, site: Site, every: str) -> Path:
    path.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
retries = 0
timeout = "10s"

[service]
health_port = 0
shutdown_timeout = "15s"
extract_workers = 1
lease_ttl = "6s"
log_format = "json"

[[sources]]
name = "control"
feeds = ["{site.url('/feed.xml')}"]
every = "{every}"
allow_networks = ["127.0.0.0/8"]
""")
    return path


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NEWSDEDUP, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _status(env: dict[str, str], config: Path) -> dict[str, Any]:
    result = _cli(env, "status", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _source(report: dict[str, Any]) -> dict[str, Any]:
    return next(row for row in report["sources"] if row["name"] == "control")


def _json_log(service: ServiceProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.log.splitlines() if line.startswith("{")]


def _healthz(service: ServiceProcess) -> dict[str, Any]:
    """The /healthz report, 200 or 503 (starting up or degraded: its body says the same)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{service.health_port()}/healthz", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())  # type: ignore[no-any-return]


def test_crawl_now_pause_resume_and_the_status_each_source_keeps(
    newsroom: Site, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    config = _config(tmp_path / "sources.toml", newsroom, every="1h")
    env = service_env(redis_server_url, key_prefix)
    keys = Keys(key_prefix)
    services = start_instances(config, env, 2)
    try:
        logs = lambda: "".join(s.log for s in services)
        # The start-up crawl (on one instance): the gone page makes it partial, with the URL and why.
        wait_for(lambda: redis_client.zcard(keys.source_results("control")) >= 1, 60, "the first crawl", logs)
        first = _source(_status(env, config))
        assert first["last_outcome"] == "partial"
        assert [f["url"] for f in first["failing_urls"]] == [newsroom.url("/news/gone.html")]
        assert "404" in first["failing_urls"][0]["reason"]
        next_crawl = datetime.fromisoformat(first["next_crawl"])
        assert 0 < (next_crawl - datetime.now(UTC)).total_seconds() <= 3600

        # crawl-now: one crawl, on one of the two instances; the partial result and the failure stay listed.
        crawled = _cli(env, "crawl-now", "control", "--wait", "60", "--config", str(config))
        assert crawled.returncode == 0, crawled.stdout + crawled.stderr + logs()
        assert "crawl requested" in crawled.stdout and "crawl ok on" in crawled.stdout
        assert newsroom.hits["/feed.xml"] == 2
        after = _source(_status(env, config))
        assert after["last_outcome"] == "ok"
        assert [r["outcome"] for r in after["recent_results"]] == ["ok", "partial"]
        assert [f["url"] for f in after["failing_urls"]] == [newsroom.url("/news/gone.html")]
        text = _cli(env, "status", "--config", str(config))
        assert newsroom.url("/news/gone.html") in text.stdout and "partial" in text.stdout

        # pause: every instance skips the source, crawl-now is refused, and it holds across a restart.
        paused = _cli(env, "pause", "control", "--reason", "publisher asked", "--config", str(config))
        assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr
        refused = _cli(env, "crawl-now", "control", "--config", str(config))
        assert refused.returncode == 1 and refused.stderr.startswith("Error: control is paused"), refused.stderr
        for service in services:
            assert service.terminate() == 0, service.log[-3000:]
        stopped = [line for line in _json_log(services[0]) if "SIGTERM received" in line["message"]]
        assert stopped and stopped[0]["level"] == "INFO"
        services = start_instances(config, env, 1)
        wait_for(lambda: _healthz(services[0])["last_results"].get("control") == "paused", 30,
                 "the start-up tick skipped as paused", logs)
        assert newsroom.hits["/feed.xml"] == 2
        report = _source(_status(env, config))
        assert report["paused"]["reason"] == "publisher asked"
        assert "PAUSED" in _cli(env, "status", "--config", str(config)).stdout

        resumed = _cli(env, "resume", "control", "--config", str(config))
        assert resumed.returncode == 0 and "resumed" in resumed.stdout
        assert _source(_status(env, config))["paused"] is None
        again = _cli(env, "crawl-now", "control", "--wait", "60", "--json", "--config", str(config))
        assert again.returncode == 0, again.stderr + logs()
        assert json.loads(again.stdout)["result"]["outcome"] == "ok"
        assert newsroom.hits["/feed.xml"] == 3
    finally:
        for service in services:
            service.cleanup()


def test_json_logs_carry_source_and_url_and_a_quiet_tick_logs_one_info_line(
    newsroom: Site, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    config = _config(tmp_path / "sources.toml", newsroom, every="2s")
    env = service_env(redis_server_url, key_prefix)
    keys = Keys(key_prefix)
    service = ServiceProcess(["run", "--config", str(config)], env)
    try:
        service.health_port()
        wait_for(lambda: redis_client.zcard(keys.source_results("control")) >= 4, 60, "four crawls",
                 lambda: service.log)
        assert service.terminate() == 0
    finally:
        service.cleanup()
    lines = _json_log(service)
    about = [line for line in lines if line.get("source") == "control"]
    assert about and not any("source=" in line["message"] for line in lines)
    copy = next(line for line in about if line.get("url") == newsroom.url("/copy/1.html"))
    assert copy["canonical_url"] == newsroom.url("/news/1.html") and copy["kind"] in ("exact", "near")
    assert newsroom.url("/news/1.html") in copy["message"]
    # INFO about the source without a URL: one line per crawl ("crawl ok in ..."), nothing per quiet tick else.
    crawl_lines = [line for line in about if line["level"] == "INFO" and "url" not in line]
    results = redis_client.zcard(keys.source_results("control"))
    assert all(line["message"].startswith("crawl ") for line in crawl_lines), crawl_lines
    assert len(crawl_lines) == results
    # With URLs at INFO: what the first two crawls found new, the feed and its decisions; later ticks find every
    # article seen and say nothing more.
    news = [line for line in about if line["level"] == "INFO" and "url" in line]
    assert [line["url"] for line in news if " entries " in line["message"]] == [newsroom.url("/feed.xml")] * 2
    assert len([line for line in news if " entries " not in line["message"]]) == 3
