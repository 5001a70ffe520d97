"""`newsdedup demo`: a local news web with originals and republished copies, crawled by the real service."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from crawler.config import CrawlSettings, ServiceSettings, Settings, SourceSettings
from crawler.demo.site import (
    HERE,
    Site,
    SiteServer,
    Story,
    aggregator_page,
    atom,
    load_stories,
    news_sitemap,
    publisher_page,
    rss,
)

SEED_TITLE = "US says aiming for second Trump-Kim summit early next year as Kim lashes out at sanctions"
# Lines the content farm wrapped around the Straits Times story (see seed-repost.txt).
_SEED_JUNK = re.compile(r"^(?:\w+day, \d+ \w+ \d{4}|Related Stories:|More Trump-Kim summit.*|Source: Read Full Article"
                        r"|Related Posts|" + re.escape(SEED_TITLE) + ")$")


def seed_story() -> tuple[Story, str]:
    """The Straits Times original (2018-10-31) rebuilt from the seed, and the seed's text as reposted."""
    reposted = (HERE / "seed-repost.txt").read_text(encoding="utf-8")
    body = "\n".join(line for line in reposted.splitlines() if line.strip() and not _SEED_JUNK.match(line.strip()))
    story = Story("us-says-aiming-for-second-trump-kim-summit-early-next-year", SEED_TITLE, body,
                  datetime(2018, 10, 31, 9, 0, tzinfo=UTC))
    return story, reposted


def build_demo_web() -> tuple[SiteServer, list[SourceSettings]]:
    """Three publishers, two aggregators, the seed's original and its content-farm copy."""
    stories = load_stories(HERE / "articles.json", start=datetime.now(UTC) - timedelta(hours=20))
    straits = Site("straitstimes", "127.0.0.11")
    publishers = [straits, Site("daily-ledger", "127.0.0.12"), Site("metro-herald", "127.0.0.13")]
    farm, digest = Site("newsfarm", "127.0.0.21"), Site("world-digest", "127.0.0.22")
    server = SiteServer([*publishers, farm, digest]).start()
    now = datetime.now(UTC)
    seed, reposted = seed_story()
    owned: dict[str, tuple[Site, Story]] = {}
    for number, story in enumerate(stories):
        owned[story.slug] = (publishers[number % 3], story)
    owned[seed.slug] = (straits, seed)
    for site in publishers:
        site.page("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        mine = [(story.title, site.url(f"/news/{story.slug}.html"), story.published)
                for owner, story in owned.values() if owner is site]
        for owner, story in owned.values():
            if owner is site:
                path = f"/news/{story.slug}.html"
                site.page(path, publisher_page(site.name, story, site.url(path)))
        site.feed("/rss.xml", rss(site.name, site.base, mine), "application/rss+xml", now)
        site.feed("/news-sitemap.xml", news_sitemap(site.name, mine), "application/xml", now)
    # Aggregators: every third story copied in full, every fifth as an excerpt; the farm also has the seed.
    for site, picks, excerpt in ((farm, stories[::3], False), (digest, stories[1::5], True)):
        site.page("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        items = []
        for story in picks:
            owner, _ = owned[story.slug]
            path = f"/post/{story.slug}"
            site.page(path, aggregator_page(site.name, story, owner.url(f"/news/{story.slug}.html"), excerpt=excerpt))
            items.append((story.title, site.url(path) + "?utm_source=feed", now))
        if site is farm:
            original = straits.url(f"/news/{seed.slug}.html")
            site.page("/post/trump-kim-summit", _farm_page(reposted, original))
            items.append((SEED_TITLE, site.url("/post/trump-kim-summit"), now))
        site.feed("/atom.xml", atom(site.name, site.base, items), "application/atom+xml", now)
    sources = [SourceSettings(site.name, feeds=(site.url("/rss.xml"),), sitemaps=(site.url("/news-sitemap.xml"),),
                              every=60.0) for site in publishers]
    sources += [SourceSettings(site.name, feeds=(site.url("/atom.xml"),), every=60.0) for site in (farm, digest)]
    return server, sources


def _farm_page(reposted: str, original_url: str) -> str:
    """The seed as the content farm served it: its text, and 'Source: Read Full Article' linking home."""
    import html

    lines = [line.strip() for line in reposted.splitlines() if line.strip()]
    paragraphs = []
    for line in lines:
        if line == "Source: Read Full Article":
            paragraphs.append(f'<p>Source: <a href="{original_url}">Read Full Article</a></p>')
        else:
            paragraphs.append(f"<p>{html.escape(line)}</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(SEED_TITLE) +
            " - newsfarm</title></head><body><div class='post'>" + "\n".join(paragraphs) + "</div></body></html>")


def demo_settings(settings: Settings, sources: list[SourceSettings]) -> Settings:
    """The demo's sources and brisk, still polite, crawl settings on top of the user's Redis settings."""
    crawl = replace(CrawlSettings(), delay=0.0, autothrottle=False, timeout=10.0, retries=1)
    service = replace(ServiceSettings(), health_port=0, shutdown_timeout=20.0, lease_ttl=15.0)
    return replace(settings, sources=tuple(sources), crawl=crawl, service=service)


async def run_demo(service: object, seconds: float,
                   progress: Callable[[int, int, int], None] | None = None) -> int:
    """Run the service until every source was crawled and decided (or `seconds` pass), then stop.

    progress(sources crawled, articles decided, articles waiting) is called about once a second.
    """
    from crawler.service import Service

    assert isinstance(service, Service)
    task = asyncio.ensure_future(service.run())
    deadline = asyncio.get_running_loop().time() + seconds
    names = {source.name for source in service.sources}
    reported = None
    while asyncio.get_running_loop().time() < deadline and not task.done():
        await asyncio.sleep(0.5)
        waiting = await asyncio.to_thread(service.inbox_length)
        state = (len(names & set(service.results)), len(service.decisions), waiting)
        if progress is not None and state != reported:
            progress(*state)
            reported = state
        if names <= set(service.results) and waiting == 0:
            await asyncio.sleep(1.0)
            break
    service.stop()
    return await task
