"""The test web: a publisher, an aggregator and an awkward site, with every failure a crawler meets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler.demo.site import (
    Reply, Request, Site, SiteServer, aggregator_page, atom, load_stories, news_sitemap, publisher_page, rss,
    sitemap, sitemap_index,
)

HERE = Path(__file__).parent
STORIES = load_stories(HERE / "articles.json", start=datetime.now(UTC) - timedelta(hours=30))
BINARY = bytes(range(256)) * 64


def build_web() -> SiteServer:
    """Start the sites; every route is known before the first request."""
    publisher = Site("publisher", "127.0.0.2")
    aggregator = Site("aggregator", "127.0.0.3")
    awkward = Site("awkward", "127.0.0.4")
    server = SiteServer([publisher, aggregator, awkward]).start()
    now = datetime.now(UTC)
    originals = STORIES[:5]
    # Publisher: originals behind an RSS feed and a Google News sitemap; robots.txt hides /private/.
    publisher.page("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    items = []
    for story in originals:
        path = f"/news/{story.slug}.html"
        publisher.page(path, publisher_page("Daily Publisher", story, publisher.url(path)))
        items.append((story.title, publisher.url(path) + "?utm_source=rss&utm_medium=feed", story.published))
    secret = STORIES[5]
    publisher.page("/private/secret.html", publisher_page("Daily Publisher", secret, publisher.url("/private/secret.html")))
    items.append((secret.title, publisher.url("/private/secret.html"), secret.published))
    # A redirect to an original (the feed lists the short link).
    publisher.add("/r/first", Reply(301, b"", "text/html", {"Location": f"/news/{originals[0].slug}.html"}))
    items.append(("short link", publisher.url("/r/first"), originals[0].published))
    publisher.feed("/feed.xml", rss("Daily Publisher", publisher.base, items), "application/rss+xml", now)
    publisher.feed("/news-sitemap.xml", news_sitemap("Daily Publisher", [
        (s.title, publisher.url(f"/news/{s.slug}.html"), s.published) for s in originals[2:]
    ]), "application/xml", now)

    # Aggregator: copies (full and excerpt) behind Atom and a sitemap index; one malformed feed.
    entries, copies = [], []
    for number, story in enumerate(originals[:4]):
        path = f"/copy/{number}"
        original = publisher.url(f"/news/{story.slug}.html")
        aggregator.page(path, aggregator_page("Aggregator", story, original, excerpt=number == 3))
        entries.append((story.title, aggregator.url(path) + "?fbclid=abc", now))
        copies.append(aggregator.url(path))
    aggregator.feed("/atom.xml", atom("Aggregator", aggregator.base, entries[:2]), "application/atom+xml", now)
    aggregator.feed("/sitemap-1.xml", sitemap(copies[2:]), "application/xml", now)
    aggregator.feed("/sitemap_index.xml", sitemap_index([aggregator.url("/sitemap-1.xml")]), "application/xml", now)
    aggregator.page("/bad.xml", '<?xml version="1.0"?><rss><channel><item><link>http://x', "application/rss+xml")

    # Awkward: every way a page can fail, plus one good story reached only after retries.
    good = STORIES[6]
    awkward.page("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")

    def flaky(request: Request) -> Reply:
        if request.hits == 1:
            return Reply(503, b"busy", "text/plain", {"Retry-After": "1"})
        if request.hits == 2:
            return Reply(429, b"slow down", "text/plain")
        return Reply(200, publisher_page("Awkward", good, awkward.url("/flaky")).encode())

    awkward.add("/flaky", flaky)
    awkward.add("/slow", Reply(200, publisher_page("Awkward", STORIES[7], awkward.url("/slow")).encode(), delay=4))
    awkward.add("/error", Reply(500, b"<h1>Internal error</h1>"))
    awkward.add("/huge", Reply(200, b"<html><body><p>" + b"word " * 1_000_000 + b"</p></body></html>"))
    awkward.add("/binary", Reply(200, BINARY, "text/html"))
    awkward.add("/report.pdf", Reply(200, b"%PDF-1.4 " + BINARY, "application/pdf"))
    odd = ["/flaky", "/slow", "/error", "/missing", "/huge", "/binary", "/report.pdf"]
    awkward.feed("/feed.xml", rss("Awkward", awkward.base, [(p, awkward.url(p), now) for p in odd]),
                 "application/rss+xml", now)
    return server


def start_up_only() -> str:
    """A cron schedule whose next tick is a year away (midnight of yesterday's date): a service started
    with it crawls each source once, at start-up, whatever the time of day. (An hourly schedule ticks
    at the top of every hour, and "*/30" at half past: one more crawl for a test that counts fetches.)"""
    yesterday = datetime.now(UTC) - timedelta(days=1)
    return f"0 0 {yesterday.day} {yesterday.month} *"


def config_text(server: SiteServer, *, every: str = "1h", cron: str | None = None, extra: str = "") -> str:
    """A sources.toml for the test web (timeouts and backoff short enough for tests); with `cron`,
    every source is scheduled by it (see start_up_only), else publisher and aggregator `every`."""
    publisher, aggregator, awkward = server["publisher"], server["aggregator"], server["awkward"]
    schedule = f'cron = "{cron}"' if cron else f'every = "{every}"'
    return f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "2s"
retries = 2
retry_backoff = "0.2s"
retry_backoff_max = "1s"
max_response_size = "1MB"

[service]
health_port = 0
shutdown_timeout = "20s"
extract_workers = 2
lease_ttl = "10s"
claim_idle = "2s"
{extra}

[[sources]]
name = "publisher"
feeds = ["{publisher.url('/feed.xml')}"]
sitemaps = ["{publisher.url('/news-sitemap.xml')}"]
{schedule}

[[sources]]
name = "aggregator"
feeds = ["{aggregator.url('/atom.xml')}", "{aggregator.url('/bad.xml')}"]
sitemaps = ["{aggregator.url('/sitemap_index.xml')}"]
{schedule}

[[sources]]
name = "awkward"
feeds = ["{awkward.url('/feed.xml')}"]
cron = "{cron or '*/30 * * * *'}"
"""
