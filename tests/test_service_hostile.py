"""The real service against a hostile source: pages whose links name port 99999, NUL bytes, encoded
surrogates, a 5 MB text and binary next to good pages, and inbox entries no decision can be made for.

The good pages are all decided and queued, the bad records are dead-lettered and counted, and the
decider never stops (it used to die on the first port-99999 link, with crawling going on).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from crawler.demo.site import aggregator_page, publisher_page, rss
from crawler.inbox import GROUP, Inbox
from dedup.article import Article
from dedup.deadletter import DeadLetters
from dedup.keys import Keys
from dedup.urls import url_id
from tests.conftest import _start_private_redis
from tests.service_process import NEWSDEDUP, ServiceProcess, service_env, stream_events, wait_for
from tests.sites.hostile import HostileServer, Route
from tests.sites.newsroom import EPOCH, story, story_text

BAD_PORT = "http://example.org:99999/x"
GOOD = 4


def page(number: int, own_url: str, *, canonical: str | None = None, og_url: str | None = None) -> bytes:
    """A publisher's page for story `number`, its rel=canonical and og:url replaced when given."""
    html = publisher_page("Hostile News", story(number, EPOCH + timedelta(minutes=number)), own_url)
    if canonical is not None:
        html = html.replace(f'<link rel="canonical" href="{own_url}">', f'<link rel="canonical" href="{canonical}">')
    if og_url is not None:
        html = html.replace(f'<link rel="canonical" href="{own_url}">', "")
        html = html.replace(f'<meta property="og:url" content="{own_url}">', f'<meta property="og:url" content="{og_url}">')
    return html.encode()


def build_server() -> HostileServer:
    server = HostileServer("127.0.0.62").start()
    pages: dict[str, bytes] = {f"/good/{n}.html": page(100 + n, server.url(f"/good/{n}.html")) for n in range(GOOD)}
    pages["/bad/canonical.html"] = page(201, server.url("/bad/canonical.html"), canonical=BAD_PORT)
    pages["/bad/og-url.html"] = page(202, server.url("/bad/og-url.html"), og_url="http://example.org:abc/y")
    copy = aggregator_page("Digest", story(100, EPOCH), "http://example.org:99999/original")
    pages["/bad/source-link.html"] = copy.encode()
    text = story_text(203).replace(" ", " \u200b\u202e ", 5)
    pages["/bad/surrogates.html"] = (page(203, server.url("/bad/surrogates.html")).decode()
                                     .replace(story_text(203).split("\n")[0], text.split("\n")[0])
                                     .encode().replace(b"Report 203", b"Report \xed\xa0\x80 203"))
    paragraphs = "".join(f"<p>{story_text(300 + n % 40)}</p>\n" for n in range(2300))
    pages["/bad/huge.html"] = (f"<html><head><title>Huge</title></head><body><article><h1>Huge</h1>{paragraphs}"
                               "</article></body></html>").encode()
    pages["/bad/nul.html"] = page(204, server.url("/bad/nul.html")).replace(b"<main>", b"<main>\x00\x00")
    pages["/bad/binary.html"] = random.Random(5).randbytes(50_000)
    for path, body in pages.items():
        server.add(path, Route(body=body))
    items = [(path, server.url(path), EPOCH) for path in pages]
    server.add("/feed.xml", Route(body=rss("Hostile", server.base, items).encode(), content_type="application/rss+xml"))
    return server


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = build_server()
    yield server
    server.stop()


def seed_inbox(client: redis.Redis, keys: Keys) -> None:
    """Entries an older crawler could have left: one handed out 7 times without a decision (each
    process deciding it died), one with a port-99999 own URL, one without a URL, one with a bad date,
    and one whose canonical link names port 99999 (that one is decided)."""
    inbox = Inbox(client, keys, retention=86400, consumer="test:1")
    inbox.ensure_group()
    poison = inbox.put(Article(url="https://poison.example/x", text=story_text(400), source="hostile"),
                       "https://poison.example/x")
    client.xreadgroup(GROUP, "elsewhere:1", {keys.inbox: ">"}, count=1)
    for _ in range(6):
        client.xclaim(keys.inbox, GROUP, "elsewhere:1", 0, [poison])
    inbox.put(Article(url=BAD_PORT, text=story_text(401), source="hostile"), "https://seed.example/1")
    client.xadd(keys.inbox, {"text": "no url at all", "source": "hostile"})
    client.xadd(keys.inbox, {"url": "https://seed.example/date", "text": "x", "published": "yesterday-ish"})
    inbox.put(Article(url="https://seed.example/linked", text=story_text(402), canonical_link=BAD_PORT,
                      source_link="http://[::1", source="hostile"), "https://seed.example/linked")


def config_text(server: HostileServer) -> str:
    return f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "10s"
retries = 0
max_response_size = "8MB"

[service]
health_port = 0
shutdown_timeout = "20s"
extract_workers = 2
claim_idle = "1s"

[[sources]]
name = "hostile"
feeds = ["{server.url('/feed.xml')}"]
every = "1h"
"""


def test_hostile_pages_never_stop_the_decider(
    hostile: HostileServer, tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    keys = Keys(key_prefix)
    seed_inbox(redis_client, keys)
    config = tmp_path / "sources.toml"
    config.write_text(config_text(hostile))
    env = service_env(redis_server_url, key_prefix)
    decided_urls = [hostile.url(f"/good/{n}.html") for n in range(GOOD)] + [
        hostile.url(path) for path in ("/bad/canonical.html", "/bad/og-url.html", "/bad/surrogates.html",
                                       "/bad/huge.html", "/bad/source-link.html")
    ] + ["https://seed.example/linked"]
    service = ServiceProcess(["run", "--config", str(config)], env)
    try:
        port = service.health_port()

        def settled() -> bool:
            assert service.alive(), service.log[-4000:]
            done = redis_client.hget(keys.source_state("hostile"), "last_outcome")
            return bool(done) and redis_client.xlen(keys.inbox) == 0 and redis_client.xlen(keys.dead_letters) >= 4

        wait_for(settled, 180, "the crawl decided and the bad entries dead-lettered", lambda: service.log)
        # After the bad records: one more good entry, decided by the same (still running) decider.
        Inbox(redis_client, keys, retention=86400, consumer="test:1").put(
            Article(url="https://late.example/x", text=story_text(500), source="hostile"), "https://late.example/x")
        wait_for(lambda: redis_client.xlen(keys.inbox) == 0 and redis_client.exists(keys.article(_id("late"))), 60,
                 "the late entry decided", lambda: service.log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            health = json.loads(response.read())
        wait_for(lambda: "newsdedup_dead_letters_waiting 4.0" in _metrics(port), 15, "the dead-letter gauge")
        metrics = _metrics(port)
        assert service.terminate() == 0, service.log[-4000:]
    finally:
        service.cleanup()
    log = service.log
    assert "Traceback" not in log, log[-6000:]
    assert health["decider"] is True and health["status"] == "ok", health

    # Every good page decided; every canonical among them queued on the stream.
    listed = subprocess.run(NEWSDEDUP + ["export", "--config", str(config)], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    rows = {row["url"]: row for row in map(json.loads, listed.stdout.splitlines())}
    missing = [url for url in [*decided_urls, "https://late.example/x"] if url not in rows]
    assert not missing, missing
    stream = {event["url"]: event for event in stream_events(redis_client, keys)}
    for url in [*decided_urls, "https://late.example/x"]:
        if rows[url]["is_canonical"]:
            assert url in stream, f"{url} decided canonical but not queued"
    assert rows[hostile.url("/bad/source-link.html")]["canonical_url"] == hostile.url("/good/0.html")
    assert len(stream[hostile.url("/bad/huge.html")]["text"]) <= 1_000_000
    surrogates = stream[hostile.url("/bad/surrogates.html")]
    assert "\u202e" not in surrogates["text"] and "\u200b" not in surrogates["text"]
    assert re.search(r"/bad/canonical\.html: canonical_link dropped: Port out of range", log), log[-4000:]
    assert re.search(r"url=https://seed\.example/linked: canonical_link dropped: Port out of range", log)

    # The records no decision could be made for: dead-lettered once each, with their reasons, counted.
    letters = {letter.stage + ":" + (letter.url or letter.error): letter
               for letter in DeadLetters(redis_client, keys).read()}
    assert len(letters) == 4, sorted(letters)
    assert f"validate:{BAD_PORT}" in letters and "Port out of range" in letters[f"validate:{BAD_PORT}"].error
    assert "decide:https://poison.example/x" in letters
    assert "delivered" in letters["decide:https://poison.example/x"].error
    inbox_letters = [letter for key, letter in letters.items() if key.startswith("inbox:")]
    assert len(inbox_letters) == 2 and all("malformed inbox entry" in letter.error for letter in inbox_letters)
    assert re.search(r'newsdedup_dead_letters_total\{source="hostile",stage="validate"\} 1\.0', metrics)
    assert re.search(r'newsdedup_dead_letters_total\{source="hostile",stage="decide"\} 1\.0', metrics)
    assert re.search(r'newsdedup_dead_letters_total\{source="",stage="inbox"\} 2\.0', metrics)
    assert re.search(r'newsdedup_extraction_failures_total\{reason="no_article",source="hostile"\} 2\.0', metrics)
    status = subprocess.run(NEWSDEDUP + ["status", "--json", "--config", str(config)], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert status.returncode == 0 and json.loads(status.stdout)["dead_letters"] == 4, status.stderr


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _id(name: str) -> str:
    return url_id(f"https://{name}.example/x")



def test_redis_refusing_writes_is_no_bad_record(tmp_path: Path, hostile: HostileServer) -> None:
    """While Redis is out of memory the decider waits and retries; nothing good is dead-lettered, and
    once Redis has room every entry is decided (only the truly bad one is a dead letter)."""
    proc, url = _start_private_redis(tmp_path)
    client = redis.Redis.from_url(url)
    keys = Keys("oom:")
    inbox = Inbox(client, keys, retention=86400, consumer="test:1")
    good = [f"https://oom.example/{n}" for n in range(3)]
    for n, page_url in enumerate(good):
        inbox.put(Article(url=page_url, text=story_text(600 + n), source="hostile"), page_url)
    inbox.put(Article(url=BAD_PORT, text=story_text(610), source="hostile"), "https://oom.example/bad")
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")
    config = tmp_path / "sources.toml"
    config.write_text(config_text(hostile))
    service = ServiceProcess(["run", "--config", str(config)], service_env(url, keys.prefix))
    try:
        service.health_port()
        wait_for(lambda: "Redis refuses work" in service.log, 60, "the decider to meet the full Redis",
                 lambda: service.log)
        assert client.xlen(keys.dead_letters) == 0 and client.xlen(keys.inbox) == 4
        client.config_set("maxmemory", "0")
        wait_for(lambda: client.xlen(keys.inbox) == 0 and client.xlen(keys.dead_letters) == 1, 90,
                 "the entries decided once Redis has room", lambda: service.log)
        assert service.alive()
        assert service.terminate() == 0, service.log[-4000:]
        assert all(client.exists(keys.article(url_id(page_url))) for page_url in good)
        [letter] = DeadLetters(client, keys).read()
        assert letter.url == BAD_PORT and letter.stage == "validate"
    finally:
        service.cleanup()
        client.close()
        proc.kill()
        proc.wait(10)
