"""A generated news web of any size: publishers with originals, an aggregator with their copies.

Story n is generated from n alone (seeded words), so a page can be served for any n without storing
it: the fixed web of the reliability tests and the ever-publishing web of benchmarks/soak.py share
this module. Every third story has a copy on the aggregator, a full one or (every ninth) an excerpt,
linking back to the original; the original names itself with rel=canonical and is dated first.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache

from crawler.demo.site import Reply, Site, SiteServer, Story, aggregator_page, publisher_page, rss

_SYLLABLES = ("ka", "lo", "mi", "ten", "ra", "vo", "sul", "bex", "dor", "fin", "gra", "hu", "jet", "ko",
              "lem", "nar", "pi", "quo", "ris", "sa", "tor", "un", "vel", "wi", "xan", "yo", "zu", "ber")
_VOCABULARY = sorted({
    "".join(random.Random(i).choice(_SYLLABLES) for _ in range(1 + i % 3)) + ("s" if i % 7 == 0 else "")
    for i in range(6000)
})
_ARTICLE = re.compile(r"^/(news|copy)/(\d+)\.html$")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
"""Story n is dated EPOCH + n minutes unless a web gives its own clock."""


def story_text(number: int) -> str:
    """About 350 seeded words in six paragraphs; distinct stories share almost no 3-word shingles."""
    rng = random.Random(number * 7919 + 13)
    paragraphs = []
    for _ in range(6):
        sentences = []
        for _ in range(rng.randint(3, 5)):
            words = rng.choices(_VOCABULARY, k=rng.randint(9, 17))
            sentences.append(" ".join(words).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    return "\n".join(paragraphs)


@lru_cache(maxsize=4096)
def story(number: int, published: datetime) -> Story:
    text = story_text(number)
    title = f"Report {number}: " + " ".join(text.split()[:6]).rstrip(".")
    return Story(f"story-{number}", title, text, published)


def has_copy(number: int) -> bool:
    return number % 3 == 0


def is_excerpt(number: int) -> bool:
    return number % 9 == 0


class Newsroom:
    """Publishers (story n belongs to publisher n % len(publishers)) and one aggregator of copies.

    `listed(now)` gives the story numbers the feeds list at a moment: a fixed range for the tests,
    a growing window for the soak. Feeds answer conditional GETs and record when they were fetched.
    """

    def __init__(self, publishers: int = 2, *, listed: Callable[[float], range],
                 published: Callable[[int], datetime] | None = None, first_host: int = 41) -> None:
        self.listed = listed
        self.published = published or (lambda n: EPOCH + timedelta(minutes=n))
        self.publishers = [Site(f"pub{i}", f"127.0.0.{first_host + i}") for i in range(publishers)]
        self.aggregator = Site("aggregator", f"127.0.0.{first_host + publishers}")
        self.server = SiteServer([*self.publishers, self.aggregator])
        self.feed_fetches: dict[str, list[float]] = defaultdict(list)
        self.article_delay = 0.0
        """Seconds each article page takes to answer (a test that must catch the crawl mid-way)."""
        self._lock = threading.Lock()
        for site in self.publishers:
            site.respond = self._responder(site)  # type: ignore[method-assign]
        self.aggregator.respond = self._responder(self.aggregator)  # type: ignore[method-assign]

    def start(self) -> Newsroom:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def sites(self) -> list[Site]:
        return [*self.publishers, self.aggregator]

    def owner(self, number: int) -> Site:
        return self.publishers[number % len(self.publishers)]

    def original_url(self, number: int) -> str:
        return self.owner(number).url(f"/news/{number}.html")

    def copy_url(self, number: int) -> str:
        return self.aggregator.url(f"/copy/{number}.html")

    def expected(self, numbers: range) -> dict[str, str]:
        """article URL -> the URL of its cluster's canonical (the original), for these stories."""
        result: dict[str, str] = {}
        for number in numbers:
            original = self.original_url(number)
            result[original] = original
            if has_copy(number):
                result[self.copy_url(number)] = original
        return result

    def reset_counts(self) -> None:
        with self._lock:
            self.feed_fetches.clear()
        for site in self.sites:
            site.hits.clear()

    def sources_toml(self, every: str = "2s") -> str:
        """[[sources]] for every site's feed."""
        return "".join(
            f'\n[[sources]]\nname = "{site.name}"\nfeeds = ["{site.url("/feed.xml")}"]\nevery = "{every}"\n'
            for site in self.sites
        )

    # Serving

    def _responder(self, site: Site) -> Callable[[str, dict[str, str]], Reply]:
        def respond(path: str, headers: dict[str, str]) -> Reply:
            site.hits[path] += 1
            if path == "/feed.xml":
                with self._lock:
                    self.feed_fetches[site.name].append(time.time())
                return self._feed(site, headers)
            match = _ARTICLE.match(path)
            if match is None:
                return Reply(404, b"<html><body><h1>Not found</h1></body></html>")
            kind, number = match.group(1), int(match.group(2))
            if kind == "news" and self.owner(number) is site:
                item = story(number, self.published(number))
                return Reply(body=publisher_page(site.name, item, site.url(path)).encode(), delay=self.article_delay)
            if kind == "copy" and site is self.aggregator and has_copy(number):
                item = story(number, self.published(number))
                page = aggregator_page(site.name, item, self.original_url(number), excerpt=is_excerpt(number),
                                       reposted=self.published(number) + timedelta(hours=2))
                return Reply(body=page.encode(), delay=self.article_delay)
            return Reply(404, b"<html><body><h1>Not found</h1></body></html>")

        return respond

    def _feed(self, site: Site, headers: dict[str, str]) -> Reply:
        numbers = self.listed(time.time())
        if site is self.aggregator:
            items = [(f"Copy {n}", self.copy_url(n), self.published(n) + timedelta(hours=2))
                     for n in numbers if has_copy(n)]
        else:
            items = [(f"Report {n}", self.original_url(n), self.published(n))
                     for n in numbers if self.owner(n) is site]
        etag = f'"{numbers.start}-{numbers.stop}"'
        modified = format_datetime(self.published(max(numbers.stop - 1, 0)), usegmt=True)
        validators = {"ETag": etag, "Last-Modified": modified}
        if headers.get("if-none-match") == etag:
            return Reply(304, b"", "application/rss+xml", validators)
        body = rss(site.name, site.base, items).encode()
        return Reply(200, body, "application/rss+xml", validators)
