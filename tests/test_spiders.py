"""crawler.spiders in a real crawl: a host that refuses connections, robots.txt included."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
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


def test_one_odd_entry_of_a_feed_or_sitemap_costs_only_itself(tmp_path: Path, redis_server_url: str,
                                                               key_prefix: str) -> None:
    """An IPv6 literal, a host no URL can have, a label too long: each entry is handled on its own."""
    from datetime import UTC, datetime

    from crawler.demo.site import Site, SiteServer, rss, sitemap, sitemap_index

    site = Site("odd", "127.0.0.1")
    good = [f"/news/{number}.html" for number in range(5)]
    for path in good:
        site.page(path, "<html><body><p>Too short to be an article.</p></body></html>")
    ipv6 = "http://[::ffff:127.0.0.31]:9151/x"
    bad_entries = ["http://bad..host/a", "http://" + "a" * 70 + ".example/b", "http://bad..host/c"]
    server = SiteServer([site]).start()
    try:
        now = datetime.now(UTC)
        items = [("one", site.url(good[0]), now), ("v6", ipv6, now), ("bad", bad_entries[0], now),
                 ("two", site.url(good[1]), now), ("long", bad_entries[1], now), ("three", site.url(good[2]), now)]
        site.page("/feed.xml", rss("odd", site.base, items), "application/rss+xml")
        site.page("/child.xml", sitemap([site.url(good[3]), bad_entries[2], site.url(good[4])]), "application/xml")
        bad_child = "http://bad..host/sitemap.xml"
        site.page("/index.xml", sitemap_index([bad_child, site.url("/child.xml")]), "application/xml")
        config = tmp_path / "sources.toml"
        config.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "2s"
retries = 0

[service]
extract_workers = 1

[[sources]]
name = "odd"
feeds = ["{site.url('/feed.xml')}"]
sitemaps = ["{site.url('/index.xml')}"]
""")
        env = service_env(redis_server_url, key_prefix)
        result = subprocess.run(NEWSDEDUP + ["crawl", "odd", "--config", str(config), "--json"], env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        log = result.stderr
        assert "Traceback" not in log, log[-3000:]
        assert {path: site.hits[path] for path in good} == dict.fromkeys(good, 1), log[-3000:]
        assert site.hits["/child.xml"] == 1
        skipped = [line for line in log.splitlines() if "entry skipped" in line]
        for url in [*bad_entries, bad_child]:
            assert any(f"url={url}: entry skipped" in line for line in skipped), (url, skipped)
        assert len(skipped) == 4, skipped
        # The IPv6 entry is a well-formed URL: requested on its own (and refused, nobody listens there).
        assert "[::ffff:7f00:1f]:9151" in log, log[-3000:]
        listed = subprocess.run(NEWSDEDUP + ["sources", "--config", str(config), "--json"], env=env,
                                capture_output=True, text=True, timeout=60, check=True)
        counts = json.loads(listed.stdout.splitlines()[0])["last_counts"]
        assert counts["bad_entries"] == 4, counts
    finally:
        server.stop()


def test_a_crawl_loads_only_the_extensions_it_uses() -> None:
    """Scrapy imports every extension a setting names, even one set to None: a crawl's settings name only
    those it runs, so RemoteControl's aiohttp (a quarter of a second) and the telnet console stay unloaded;
    and only the spider middlewares a crawl needs wrap every callback's output."""
    script = """
import sys
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.utils.reactor import install_reactor
install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
from crawler.config import CrawlSettings
from crawler.settings import crawl_scrapy_settings
crawler = Crawler(Spider, crawl_scrapy_settings(CrawlSettings(autothrottle=True), "newsdedup-test"))
crawler._apply_settings()
print(sorted(type(extension).__name__ for extension in crawler.extensions.middlewares))
crawler.engine = crawler._create_engine()
print(sorted(type(middleware).__name__ for middleware in crawler.engine.scraper.spidermw.middlewares))
print(sorted(name for name in ("aiohttp", "twisted.conch.telnet", "scrapy.extensions.telnet",
                               "scrapy.extensions.remote_control") if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    extensions, spider_middlewares, loaded = result.stdout.splitlines()
    assert extensions == "['AutoThrottle']"
    # No Referer (an article's feed or sitemap means nothing to its site), no depth count (the spider bounds
    # its own), no development aids.
    assert spider_middlewares == "['HttpErrorMiddleware', 'StartSpiderMiddleware', 'UrlLengthMiddleware']"
    assert loaded == "[]"


def test_sitemap_indexes_are_followed_three_deep_and_no_deeper(
    tmp_path: Path, redis_server_url: str, key_prefix: str,
) -> None:
    """The spider bounds its own depth (Scrapy's DepthMiddleware is off): a chain of sitemap indexes is
    followed three levels below the configured sitemap, a fourth is not requested, and one line says so."""
    from datetime import UTC, datetime

    from crawler.demo.site import Site, SiteServer, Story, publisher_page, sitemap, sitemap_index

    site = Site("deep", "127.0.0.1")
    server = SiteServer([site]).start()
    try:
        story = Story("kept", "A story three indexes deep", "Word " * 400, datetime.now(UTC))
        # s0 -> s1 -> s2 -> s3 -> s4: indexes; s2 also lists a urlset (three below s0: fetched), s3 lists s4
        # (four below: not requested), a urlset whose article is never fetched either.
        site.page("/s0.xml", sitemap_index([site.url("/s1.xml")]), "application/xml")
        site.page("/s1.xml", sitemap_index([site.url("/s2.xml")]), "application/xml")
        site.page("/s2.xml", sitemap_index([site.url("/s3.xml"), site.url("/s3-list.xml")]), "application/xml")
        site.page("/s3.xml", sitemap_index([site.url("/s4.xml")]), "application/xml")
        site.page("/s3-list.xml", sitemap([site.url("/kept.html")]), "application/xml")
        site.page("/s4.xml", sitemap([site.url("/lost.html")]), "application/xml")
        deep = Story("lost", "A story below four indexes", "Other " * 400, datetime.now(UTC))
        site.page("/kept.html", publisher_page("Deep", story, "/kept.html"))
        site.page("/lost.html", publisher_page("Deep", deep, "/lost.html"))
        result = _crawl_sitemap(tmp_path, "deep", site.url("/s0.xml"), service_env(redis_server_url, key_prefix))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert [site.hits[f"/s{level}.xml"] for level in range(5)] == [1, 1, 1, 1, 0]
        assert site.hits["/s3-list.xml"] == 1
        assert site.hits["/kept.html"] == 1 and site.hits["/lost.html"] == 0
        assert "sitemap index nested too deep" in result.stderr
        assert "WARNING scrapy" not in result.stderr, result.stderr  # e.g. redirects missing RefererMiddleware
    finally:
        server.stop()


def test_a_broken_extractor_leaves_the_pages_for_the_next_crawl(
    tmp_path: Path, redis_server_url: str, key_prefix: str,
) -> None:
    """The extraction workers load trafilatura themselves. Where they cannot (a broken install, here a
    stand-in package that fails to import), each page fails with one error line and is not marked
    seen: once the install is mended, the next crawl fetches and decides it."""
    from datetime import UTC, datetime

    from crawler.demo.site import Site, SiteServer, Story, publisher_page, sitemap

    broken = tmp_path / "broken"
    (broken / "trafilatura").mkdir(parents=True)
    (broken / "trafilatura" / "__init__.py").write_text('raise ImportError("trafilatura: broken install (test)")\n')
    site = Site("mended", "127.0.0.1")
    server = SiteServer([site]).start()
    try:
        story = Story("story", "A story crawled twice", "A sentence of the story that goes on. " * 40,
                      datetime.now(UTC))
        site.page("/sitemap.xml", sitemap([site.url("/story.html")]), "application/xml")
        site.page("/story.html", publisher_page("Mended", story, "/story.html"))
        env = service_env(redis_server_url, key_prefix)
        first = _crawl_sitemap(tmp_path, "mended", site.url("/sitemap.xml"), {**env, "PYTHONPATH": str(broken)})
        assert "Traceback" not in first.stderr, first.stderr
        assert "the extractor cannot be loaded" in first.stderr, first.stderr
        assert json.loads(first.stdout)["decided"] == 0, first.stdout
        second = _crawl_sitemap(tmp_path, "mended", site.url("/sitemap.xml"), env)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["decided"] == 1, second.stdout
        assert site.hits["/story.html"] == 2
    finally:
        server.stop()


def _crawl_sitemap(tmp_path: Path, name: str, sitemap_url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`newsdedup crawl NAME --json` once, for one source listed by one sitemap, politeness off, one worker."""
    config = tmp_path / "sources.toml"
    config.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false

[service]
extract_workers = 1

[[sources]]
name = "{name}"
sitemaps = ["{sitemap_url}"]
""")
    return subprocess.run(NEWSDEDUP + ["crawl", name, "--config", str(config), "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
