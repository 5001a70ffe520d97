"""Bad input (tests/badinput/) against a real `newsdedup run`: logged, counted, survived, bounded.

Each case is its own source, next to a good article; one service crawls them all at once. Every
case must leave a clear log line and a count (the source's last result in `sources --json`, or a
metric), every good article must still be decided, and the service and its extraction workers must
stay far below 600 MB while a 2 GiB gzip bomb and an endless response are served.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from crawler.demo.site import publisher_page, rss
from crawler.inbox import Inbox
from dedup.keys import Keys
from tests.service_process import (
    NEWSDEDUP,
    ServiceProcess,
    peak_rss_mb,
    service_env,
    stream_events,
    wait_for,
)
from tests.sites.hostile import HostileServer, Route, endless, gzip_bomb
from tests.sites.newsroom import EPOCH, story

CASES = Path(__file__).parent / "badinput"
MEMORY_LIMIT_MB = 600
THOUSANDS = 5000
MAX_ARTICLES = 20


@dataclass(frozen=True)
class Case:
    """One source: its bad feed or bad page, and what the service must log and count for it."""

    name: str
    log: str
    """Regex the service log must match (the case's own URL is in the line)."""
    count: str
    """Key of the source's last_counts that must be >= 1."""
    bad_feed: str | None = None
    bad_pages: tuple[str, ...] = ()
    sitemap: bool = False
    extra: str = ""


CASE_LIST = [
    Case("malformed", r"feeds/malformed\.xml: unreadable feed or sitemap: malformed XML", "bad_listings",
         bad_feed="/feeds/malformed.xml"),
    Case("truncated", r"feeds/truncated\.xml: feed or sitemap cut off mid-document; kept the 2 entries",
         "truncated_listings", bad_feed="/feeds/truncated.xml"),
    Case("laughs", r"feeds/billion-laughs\.xml: unreadable feed or sitemap: document declares entities",
         "bad_listings", bad_feed="/feeds/billion-laughs.xml"),
    Case("xxe", r"feeds/xxe\.xml: unreadable feed or sitemap: document declares entities", "bad_listings",
         bad_feed="/feeds/xxe.xml"),
    Case("sitemap-bomb", r"sitemap-bomb\.xml\.gz: unreadable feed or sitemap: gzipped document larger",
         "bad_listings", bad_feed="/sitemap-bomb.xml.gz", sitemap=True),
    Case("huge-feed", r"feeds/huge\.xml: feed or sitemap fetch failed", "bad_listings", bad_feed="/feeds/huge.xml"),
    Case("gzip-bomb", r"pages/bomb\.html: fetch failed", "fetch_errors", bad_pages=("/pages/bomb.html",)),
    Case("endless", r"pages/endless\.html: fetch failed", "fetch_errors", bad_pages=("/pages/endless.html",)),
    Case("slow", r"pages/slow\.html: fetch failed: \w*TimeoutError", "fetch_errors", bad_pages=("/pages/slow.html",)),
    Case("binary", r"pages/binary\.html: no article text", "no_article", bad_pages=("/pages/binary.html",)),
    Case("empty", r"pages/empty\.html: no article text", "no_article", bad_pages=("/pages/empty.html",)),
    Case("redirects", r"pages/loop-a\.html: not fetched: redirected to .*/pages/loop-a\.html, already requested",
         "redirect_repeat",
         bad_pages=("/pages/loop-a.html", "/pages/chain-0.html")),
    Case("charset", r"pages/wrong-charset\.html: (canonical|excerpt|near|exact)", "extracted",
         bad_pages=("/pages/wrong-charset.html", "/pages/no-charset.html")),
    Case("dup-guids", r"feeds/duplicate-guids\.xml: rss with 5 entries", "extracted",
         bad_feed="/feeds/duplicate-guids.xml"),
    Case("thousands", rf"feeds/thousands\.xml: rss with {THOUSANDS} entries", "extracted",
         bad_feed="/feeds/thousands.xml", extra=f"max_articles = {MAX_ARTICLES}\n"),
    Case("dates", r"feeds/absurd-dates\.xml: rss with 4 entries", "extracted", bad_feed="/feeds/absurd-dates.xml"),
]


def good_page(number: int, own_url: str, *, published: str | None = None) -> bytes:
    item = story(number, EPOCH + timedelta(minutes=number))
    html = publisher_page("Good News", item, own_url)
    if published is not None:
        html = html.replace(item.published.isoformat(), published)
    return html.encode()


def build_server() -> HostileServer:
    server = HostileServer("127.0.0.60").start()
    for name in ("malformed", "truncated", "billion-laughs", "xxe", "duplicate-guids", "absurd-dates"):
        server.add(f"/feeds/{name}.xml", Route(body=(CASES / f"{name}.xml").read_bytes(),
                                               content_type="application/rss+xml"))
    server.add("/pages/wrong-charset.html", Route(body=(CASES / "wrong-charset.html").read_bytes(),
                                                  content_type="text/html; charset=utf-8"))
    server.add("/pages/no-charset.html", Route(body=(CASES / "no-charset.html").read_bytes(),
                                               content_type="text/html"))
    server.add("/pages/binary.html", Route(body=(CASES / "binary.html").read_bytes(), content_type="text/html"))
    bomb = gzip_bomb(2)
    server.add("/pages/bomb.html", Route(body=bomb, headers={"Content-Encoding": "gzip"}))
    server.add("/sitemap-bomb.xml.gz", Route(body=bomb, content_type="application/x-gzip"))
    server.add("/pages/endless.html", Route(body=endless(b"<p>" + b"news " * 13_000 + b"</p>\n")))
    server.add("/feeds/huge.xml", Route(body=endless(b"<item><title>x</title></item>" * 2000),
                                        content_type="application/rss+xml", length=5 * 10**9))
    server.add("/pages/slow.html", Route(body=endless(b" "), length=10**6, pause=0.5))
    server.add("/pages/empty.html", Route(body=b""))
    server.add("/pages/loop-a.html", Route(302, headers={"Location": "/pages/loop-b.html"}))
    server.add("/pages/loop-b.html", Route(302, headers={"Location": "/pages/loop-a.html"}))
    for step in range(12):
        server.add(f"/pages/chain-{step}.html", Route(301, headers={"Location": f"/pages/chain-{step + 1}.html"}))
    server.add("/pages/dup.html", Route(body=good_page(900, server.url("/pages/dup.html"))))
    server.add("/pages/dup-other.html", Route(body=good_page(901, server.url("/pages/dup-other.html"))))
    for label, date in (("0001", "0001-01-01T00:00:00+00:00"), ("9999", "9999-12-31T23:59:59+00:00"),
                        ("junk", "2020-02-31T25:61:00+99:99"), ("words", "the day before yesterday")):
        path = f"/pages/date-{label}.html"
        server.add(path, Route(body=good_page(910 + len(server.routes), server.url(path), published=date)))
    items = [(f"Item {n}", server.url(f"/many/{n}.html"), EPOCH) for n in range(THOUSANDS)]
    server.add("/feeds/thousands.xml", Route(body=rss("Thousands", server.base, items).encode(),
                                             content_type="application/rss+xml"))
    for n in range(MAX_ARTICLES):
        server.add(f"/many/{n}.html", Route(body=good_page(2000 + n, server.url(f"/many/{n}.html"))))
    for index, case in enumerate(CASE_LIST):
        good = f"/good/{index}.html"
        server.add(good, Route(body=good_page(1000 + index, server.url(good))))
        listed = [(f"Good {index}", server.url(good), EPOCH)]
        listed += [(f"Bad {path}", server.url(path), EPOCH) for path in case.bad_pages]
        server.add(f"/feeds/good-{index}.xml", Route(body=rss(case.name, server.base, listed).encode(),
                                                     content_type="application/rss+xml"))
    return server


def config_text(server: HostileServer) -> str:
    text = """
[crawl]
delay = "0s"
autothrottle = false
timeout = "3s"
retries = 1
retry_backoff = "0.2s"
max_response_size = "4MB"
max_redirects = 5

[service]
health_port = 0
shutdown_timeout = "15s"
extract_workers = 2
"""
    for index, case in enumerate(CASE_LIST):
        feeds = [server.url(f"/feeds/good-{index}.xml")]
        sitemaps: list[str] = []
        if case.bad_feed:
            (sitemaps if case.sitemap else feeds).append(server.url(case.bad_feed))
        text += (f'\n[[sources]]\nname = "{case.name}"\nfeeds = {json.dumps(feeds)}\n'
                 f'sitemaps = {json.dumps(sitemaps)}\nevery = "1h"\n{case.extra}')
    return text


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = build_server()
    yield server
    server.stop()


def test_bad_input_is_logged_counted_and_survived_in_bounded_memory(
    hostile: HostileServer, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(config_text(hostile))
    env = service_env(redis_server_url, key_prefix)
    keys = Keys(key_prefix)
    service = ServiceProcess(["run", "--config", str(config)], env)
    try:
        port = service.health_port()
        workers = service.children()

        def all_crawled() -> bool:
            done = [redis_client.hget(keys.source_state(case.name), "last_outcome") for case in CASE_LIST]
            return all(done) and redis_client.xlen(keys.inbox) == 0

        wait_for(all_crawled, 120, "every source crawled once", lambda: service.log)
        wait_for(lambda: "source=dates url=" in service.log, 10, "decisions logged", lambda: service.log)
        peaks = {"service": service.peak_rss_mb(), **{f"worker {pid}": peak_rss_mb(pid) for pid in workers}}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert service.terminate() == 0, service.log[-4000:]
    finally:
        service.cleanup()
    log = service.log
    assert "Traceback" not in log, log[-6000:]
    assert all(0 < peak < MEMORY_LIMIT_MB for peak in peaks.values()), peaks

    listed = subprocess.run(NEWSDEDUP + ["sources", "--config", str(config), "--json"], check=False, env=env,
                                          capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}
    stream = {event["url"]: event for event in stream_events(redis_client, keys)}
    for index, case in enumerate(CASE_LIST):
        row = rows[case.name]
        assert row["last_result"] in ("ok", "partial"), (case.name, row)
        assert row["last_counts"].get(case.count, 0) >= 1, (case.name, case.count, row["last_counts"])
        assert re.search(case.log, log), (case.name, case.log)
        if case.name != "thousands":  # there, max_articles decides which of the listed pages are fetched
            assert hostile.url(f"/good/{index}.html") in stream, f"{case.name}: the good article was not decided"

    # Entities are refused, not expanded; nothing the XXE names is read or fetched.
    assert not any(path.startswith("/pages/never-fetched") for path in hostile.hits)
    dump = json.dumps(list(stream.values()))
    assert "root:x:0:" not in dump and "root:x:0:" not in log and "lollol" not in dump
    # Bombs and endless bodies: cut off at max_response_size, counted as too large.
    assert re.search(r'newsdedup_fetch_errors_total\{reason="too_large",source="gzip-bomb"\} 1\.0', metrics)
    assert re.search(r'newsdedup_fetch_errors_total\{reason="too_large",source="endless"\} 1\.0', metrics)
    assert re.search(r'newsdedup_fetch_errors_total\{reason="listing_too_large",source="huge-feed"\} 1\.0',
                     metrics)
    assert hostile.sent["/pages/endless.html"] < 64 * 2**20, hostile.sent
    assert hostile.sent["/feeds/huge.xml"] < 64 * 2**20, hostile.sent
    assert re.search(r'newsdedup_fetch_errors_total\{reason="timeout",source="slow"\} 1\.0', metrics)
    assert re.search(r'newsdedup_extraction_failures_total\{reason="no_article",source="binary"\} 1\.0', metrics)
    assert re.search(r'newsdedup_extraction_failures_total\{reason="no_article",source="empty"\} 1\.0', metrics)
    # Redirect loops and over-long chains end, counted.
    assert re.search(r"pages/chain-0\.html: fetch failed: .*max redirections reached", log)
    assert rows["redirects"]["last_counts"]["fetch_errors"] >= 1
    assert re.search(r'newsdedup_fetch_errors_total\{reason="too_many_redirects",source="redirects"\} 1\.0', metrics)
    # ... and an endless chain is remembered, not followed again on every crawl.
    inbox = Inbox(redis_client, keys, retention=86400, consumer="test:1")
    assert inbox.seen([hostile.url("/pages/chain-0.html")]) == [True]
    assert hostile.hits["/pages/chain-6.html"] == 0
    # Mis-declared and missing charsets: Windows-1252 read as such.
    for path in ("/pages/wrong-charset.html", "/pages/no-charset.html"):
        event = stream[hostile.url(path)]
        assert "Café" in event["text"] and "\ufffd" not in event["text"] and "€" in event["text"], event["text"][:200]
    # One page listed four ways under one GUID is fetched once; another page under that GUID is its own.
    assert hostile.hits["/pages/dup.html"] == 1
    assert hostile.url("/pages/dup.html") in stream and hostile.url("/pages/dup-other.html") in stream
    # Thousands listed, max_articles fetched, the rest counted as skipped.
    good = f"/good/{[case.name for case in CASE_LIST].index('thousands')}.html"
    fetched = sum(hits for path, hits in hostile.hits.items() if path.startswith("/many/") or path == good)
    assert fetched == MAX_ARTICLES
    assert rows["thousands"]["last_counts"]["extracted"] == MAX_ARTICLES
    skipped = re.search(r'newsdedup_pages_skipped_total\{reason="max_articles",source="thousands"\} (\d+)', metrics)
    assert skipped and int(skipped.group(1)) == THOUSANDS + 1 - MAX_ARTICLES, skipped
    # Absurd dates: the articles are decided, the dates are not believed.
    for label in ("0001", "9999", "junk", "words"):
        event = stream[hostile.url(f"/pages/date-{label}.html")]
        assert not event["published"].startswith(("0001", "9999")), event["published"]
