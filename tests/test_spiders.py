"""crawler.spiders in a real crawl: a host that refuses connections, robots.txt included."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from tests.service_process import NEWSDEDUP, service_env


def test_unreachable_robots_txt_is_one_line_and_a_count_then_the_host_is_crawled(
    tmp_path: Path, redis_server_url: str, key_prefix: str,
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = f"http://127.0.0.1:{port}/feed.xml"
    config = tmp_path / "sources.toml"
    config.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "2s"
retries = 1
retry_backoff = "0.1s"

[service]
extract_workers = 1

[[sources]]
name = "refusing"
feeds = ["{feed}"]
""")
    env = service_env(redis_server_url, key_prefix)
    result = subprocess.run(NEWSDEDUP + ["crawl", "refusing", "--config", str(config), "--json"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    log = result.stderr
    assert "Traceback" not in log, log
    robots = [line for line in log.splitlines() if "robots.txt" in line]
    assert len(robots) == 1, log
    assert f"source=refusing url=http://127.0.0.1:{port}/robots.txt: robots.txt unreachable" in robots[0]
    assert "Connection" in robots[0] and "refused" in robots[0]
    # Then the host is crawled as if it had no robots.txt: the feed is requested (and refused too).
    assert f"source=refusing url={feed}: feed or sitemap fetch failed" in log, log
    assert json.loads(result.stdout)["outcome"] == "partial"
    listed = subprocess.run(NEWSDEDUP + ["sources", "--config", str(config), "--json"], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    counts = json.loads(listed.stdout.splitlines()[0])["last_counts"]
    assert counts["robots_unreachable"] == 1, counts


def test_per_domain_concurrency_holds_with_no_delay(tmp_path: Path, redis_server_url: str, key_prefix: str) -> None:
    """Scrapy 2.19 starts every queued request of a domain at once when DOWNLOAD_DELAY is 0; the
    service's settings keep CONCURRENT_REQUESTS_PER_DOMAIN a real limit anyway."""
    import threading
    import time

    from crawler.demo.site import Reply, Site, SiteServer, sitemap

    site = Site("slow", "127.0.0.1")
    lock = threading.Lock()
    state = {"active": 0, "peak": 0}

    def slow_page(request: object) -> Reply:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        time.sleep(0.3)
        with lock:
            state["active"] -= 1
        return Reply(body=b"<html><body><p>Too short to be an article.</p></body></html>",
                     content_type="text/html; charset=utf-8")

    paths = [f"/news/{number}.html" for number in range(12)]
    for path in paths:
        site.routes[path] = slow_page
    server = SiteServer([site]).start()
    try:
        site.page("/sitemap.xml", sitemap([site.url(path) for path in paths]), "application/xml")
        config = tmp_path / "sources.toml"
        config.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
concurrency = 16
concurrency_per_domain = 2

[service]
extract_workers = 1

[[sources]]
name = "slow"
sitemaps = ["{site.url('/sitemap.xml')}"]
""")
        result = subprocess.run(NEWSDEDUP + ["crawl", "slow", "--config", str(config), "--json"],
                                env=service_env(redis_server_url, key_prefix), capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        assert sum(site.hits[path] for path in paths) == len(paths)
        assert state["peak"] <= 2, state
    finally:
        server.stop()
