"""Labelled evaluation corpus of republished news, built from real article text.

Sources: the Zyte article-extraction benchmark (181 real pages with human-labelled bodies, MIT)
and the seed content-farm repost of a Straits Times story. Each real article becomes an original
page; copies are derived from its text the ways aggregators republish (see ARCHITECTURE.md), and
hard negatives and thin pages are added around them. Everything is driven by one seeded RNG per
story, so a corpus is reproducible from (seed, options) and the installed trafilatura version
(used once to decide which real pages extract well enough to serve as originals).

Originals are served three ways: the real crawled page (when it extracts to its labelled text),
a text record, or a synthetic publisher page; most synthetic ones are re-hosted on nine outlets
(OUTLETS) whose pages all carry the same in-body boilerplate, as one site's articles do. Copies go
on aggregator templates (or regional papers for wire copies), with or without rel=canonical /
og:url / a "Source:" link to the original, a later date or none, and some as text records; a
quarter of excerpts, edited and wire copies are also re-typeset (republished more than one way).

How the hard negatives are made (real same-event pairs by different outlets are rare here):
- real related pairs: the benchmark already holds ~15 groups of articles from different outlets
  on one event (e.g. NASA lunar landers on space.com, spacenews.com and aljazeera.com), found by
  shared vocabulary and shared 5-word shingles; they stay ordinary originals and are listed in
  each label's `related` so the benchmark can report whether any were merged;
- negative_same_event: another outlet's article composed of 1-3 verbatim quoted/factual sentences
  of the original (<= ~20% of its words) inside paragraphs of held-out real text;
- negative_quote: a commentary made of held-out real text that quotes one paragraph of the original;
- negative_short_boilerplate: short items (40-90 words of held-out text) on one site that all carry
  the site's long in-body boilerplate;
- thin: video pages, section fronts, error/paywall pages, several of them word-for-word identical.
Held-out text (articles not used as originals) is consumed sentence by sentence, never twice,
so no two negatives share text by accident.
"""

from __future__ import annotations

import gzip
import hashlib
import html as htmllib
import json
import os
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# ../shared/data beside the checkout; NEWSDEDUP_SHARED_DATA names it for a checkout elsewhere (a worktree).
SHARED_DATA = Path(os.environ.get("NEWSDEDUP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
BENCHMARK_DIR = SHARED_DATA / "extraction-benchmark"
SEED_REPOST = SHARED_DATA / "seed" / "repost-read-full-article.txt"

COPY_KINDS = ("full_copy", "excerpt", "edited", "typography", "redatelined", "spun")
"""spun: run through a spinner (benchmarks/spinners.py, CorpusOptions.spinners in turn), no link
back; only made when asked for (CorpusOptions.copies["spun"], make_corpus.py --spun)."""
NEGATIVE_KINDS = (
    "negative_same_event",
    "negative_quote",
    "negative_short_boilerplate",
    "thin",
)
SEED_URL = (
    "https://www.straitstimes.com/world/united-states/us-says-aiming-for-second-trump-kim-summit-"
    "early-next-year-as-kim-lashes-out-at-sanctions"
)
SEED_REPOST_URL = (
    "https://www.worldnewsera.com/news/asia/us-says-aiming-for-second-trump-kim-summit-early-"
    "next-year-as-kim-lashes-out-at-sanctions/"
)


@dataclass(frozen=True)
class SourceArticle:
    """One real article: the text every copy of its story is derived from."""

    key: str
    url: str
    title: str
    paragraphs: tuple[str, ...]
    published: datetime
    site_name: str
    page_html: str | None = None
    """The real page as crawled, when it is usable as the original's page."""

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)

    @property
    def latin(self) -> bool:
        """Mostly Latin-script text (wire datelines and English synonyms make sense)."""
        letters = [c for p in self.paragraphs for c in p if c.isalpha()]
        return sum(c < "\u0250" for c in letters) >= 0.95 * max(1, len(letters))


@dataclass
class Record:
    """One ingest record and its label."""

    url: str
    story: str
    kind: str
    canonical: bool
    site: str
    html: str | None = None
    text: str | None = None
    title: str | None = None
    published: datetime | None = None
    related: list[str] = field(default_factory=list)

    def ingest_record(self) -> dict[str, str]:
        """The JSON object `newsdedup ingest` reads."""
        if self.html is not None:
            return {"url": self.url, "html": self.html}
        record = {"url": self.url, "text": self.text or ""}
        if self.title:
            record["title"] = self.title
        if self.published:
            record["published"] = self.published.isoformat()
        return record

    def label(self) -> dict[str, object]:
        """The label line: story id (the original's URL), kind and expected canonical."""
        return {
            "url": self.url,
            "story": self.story,
            "kind": self.kind,
            "canonical": self.canonical,
            "format": "html" if self.html is not None else "text",
            "site": self.site,
            "related": self.related,
        }


# ---------------------------------------------------------------- loading real text


def split_paragraphs(body: str) -> list[str]:
    """Non-empty paragraphs of a ground-truth article body."""
    return [re.sub(r"[ \t]+", " ", p).strip() for p in body.split("\n") if p.strip()]


_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])")


def split_sentences(paragraph: str) -> list[str]:
    """Rough sentence split (good enough to cut excerpts and pick quotes)."""
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        end = match.end()
        parts.append(paragraph[start:end].strip())
        start = end
    parts.append(paragraph[start:].strip())
    return [p for p in parts if p]


def _decode(raw: bytes) -> str:
    head = raw[:4096].decode("ascii", "replace")
    match = re.search(r"charset=[\"']?([\w-]+)", head, re.IGNORECASE)
    for encoding in ([match.group(1)] if match else []) + ["utf-8", "cp1252"]:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("utf-8", "replace")


_META_TAG = re.compile(r"<meta\s[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"([\w:-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _meta(page: str, *names: str) -> str | None:
    """Content of the first <meta> whose property/name/itemprop is one of names."""
    wanted = [n.lower() for n in names]
    found: dict[str, str] = {}
    for tag in _META_TAG.findall(page):
        attributes = {k.lower(): v if v or not w else w for k, v, w in _ATTRIBUTE.findall(tag)}
        key = (
            attributes.get("property") or attributes.get("name") or attributes.get("itemprop") or ""
        ).lower()
        if key in wanted and attributes.get("content") and key not in found:
            found[key] = htmllib.unescape(attributes["content"]).strip()
    return next((found[n] for n in wanted if n in found), None)


def _page_title(page: str, fallback: str) -> str:
    title = _meta(page, "og:title", "twitter:title")
    if not title:
        match = re.search(r"<title[^>]*>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
        title = htmllib.unescape(match.group(1)).strip() if match else ""
    title = re.sub(r"\s+", " ", title)
    # "Headline - WSJ", "Headline | Site": drop a short site suffix
    parts = re.split(r"\s+[|\-–—]\s+", title)
    if len(parts) > 1 and len(parts[-1]) < 40 and len(" ".join(parts[:-1])) > 15:
        title = " - ".join(parts[:-1])
    return title or fallback


def _page_date(page: str) -> datetime | None:
    raw = _meta(page, "article:published_time", "datePublished", "pubdate", "date")
    if not raw:
        match = re.search(r"\"datePublished\"\s*:\s*\"([^\"]+)\"", page)
        raw = match.group(1) if match else None
    if not raw:
        return None
    raw = raw.strip().replace("Z", "+00:00")
    raw = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", raw)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if not 1995 <= parsed.year <= 2030:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _site_name(page: str | None, url: str) -> str:
    name = _meta(page, "og:site_name") if page else None
    if name and len(name) < 40:
        return name.lstrip("@")
    host = urlsplit(url).netloc.removeprefix("www.")
    return host.split(".")[0].replace("-", " ").title()


def _page_canonical(page: str, url: str) -> str | None:
    match = re.search(
        r"<link[^>]+rel=[\"']?canonical[\"']?[^>]*href=[\"']([^\"']+)", page, re.IGNORECASE
    )
    if not match:
        match = re.search(
            r"<link[^>]+href=[\"']([^\"']+)[\"'][^>]*rel=[\"']?canonical", page, re.IGNORECASE
        )
    if not match:
        return None
    href = htmllib.unescape(match.group(1))
    same_site = urlsplit(href).netloc.removeprefix("www.") == urlsplit(url).netloc.removeprefix(
        "www."
    )
    return href if href.startswith("http") and same_site else None


def load_benchmark(directory: Path = BENCHMARK_DIR) -> list[SourceArticle]:
    """The 181 real articles: ground-truth text, page title, date and the page itself."""
    truth = json.loads((directory / "ground-truth.json").read_text("utf-8"))
    articles = []
    fallback_day = datetime(2019, 11, 18, 9, 0, tzinfo=UTC)
    for key in sorted(truth):
        url = truth[key]["url"]
        paragraphs = split_paragraphs(truth[key]["articleBody"])
        page_path = directory / "html" / f"{key}.html.gz"
        page = _decode(gzip.decompress(page_path.read_bytes())) if page_path.exists() else None
        title = _page_title(page, paragraphs[0][:80]) if page else paragraphs[0][:80]
        stable = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        published = (_page_date(page) if page else None) or fallback_day + timedelta(
            minutes=stable % 4000
        )
        url = (_page_canonical(page, url) if page else None) or url
        articles.append(
            SourceArticle(
                key, url, title, tuple(paragraphs), published, _site_name(page, url), page
            )
        )
    return articles


def load_seed(path: Path = SEED_REPOST) -> tuple[SourceArticle, str]:
    """The seed story as the Straits Times published it (2018-10-31), and the repost verbatim."""
    repost = path.read_text("utf-8")
    lines = [line.strip() for line in repost.splitlines() if line.strip()]
    title = lines[1]
    body = lines[2 : lines.index("Related Stories:")]
    body[0] = body[0].replace(") -US", ") - US")
    original = SourceArticle(
        key="seed-straitstimes",
        url=SEED_URL,
        title=title,
        paragraphs=tuple(body),
        published=datetime(2018, 10, 31, 21, 37, tzinfo=UTC) - timedelta(hours=8),
        site_name="The Straits Times",
    )
    return original, repost


# ---------------------------------------------------------------- related (same-event) originals


def _shingles(text: str, size: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def find_related(articles: Sequence[SourceArticle]) -> dict[str, list[str]]:
    """Pairs of distinct real articles on one event (shared vocabulary or quotes), by URL."""
    import math
    from collections import Counter

    def terms(text: str) -> Counter[str]:
        return Counter(re.findall(r"[A-Z][a-z]+|[a-z]{4,}", text))

    bags = {a.url: terms("\n".join(a.paragraphs)) for a in articles}
    doc_freq: Counter[str] = Counter(t for bag in bags.values() for t in bag)
    vectors: dict[str, dict[str, float]] = {}
    for url, bag in bags.items():
        vec = {t: (1 + math.log(n)) * math.log(len(bags) / doc_freq[t]) for t, n in bag.items()}
        norm = math.sqrt(sum(x * x for x in vec.values())) or 1.0
        vectors[url] = {t: x / norm for t, x in vec.items()}
    shingles = {a.url: _shingles("\n".join(a.paragraphs)) for a in articles}
    related: dict[str, list[str]] = {}
    urls = [a.url for a in articles]
    for i, first in enumerate(urls):
        for second in urls[i + 1 :]:
            cosine = sum(x * vectors[second].get(t, 0.0) for t, x in vectors[first].items())
            shared = len(shingles[first] & shingles[second])
            if cosine >= 0.33 or shared >= 15:
                related.setdefault(first, []).append(second)
                related.setdefault(second, []).append(first)
    return related


# ---------------------------------------------------------------- held-out text for negatives


class TextPool:
    """Sentences of held-out real articles, each handed out once."""

    def __init__(self, articles: Iterable[SourceArticle]) -> None:
        self._runs: list[list[str]] = []
        for article in articles:
            run = [s for p in article.paragraphs for s in split_sentences(p) if len(s.split()) >= 4]
            if run:
                self._runs.append(run)
        self._run = 0

    @property
    def remaining_words(self) -> int:
        return sum(len(s.split()) for run in self._runs for s in run)

    def paragraphs(self, words: int, rng: random.Random) -> list[str]:
        """Consecutive sentences (from one article where possible) grouped into paragraphs."""
        out: list[str] = []
        current: list[str] = []
        taken = 0
        while taken < words:
            run = self._next_run()
            if run is None:
                break
            sentence = run.pop(0)
            current.append(sentence)
            taken += len(sentence.split())
            if len(current) >= rng.randint(2, 4) or not run:
                out.append(" ".join(current))
                current = []
        if current:
            out.append(" ".join(current))
        return out

    def _next_run(self) -> list[str] | None:
        for _ in range(len(self._runs)):
            run = self._runs[self._run % len(self._runs)]
            if run:
                return run
            self._run += 1
        return None


# ---------------------------------------------------------------- sites

AGGREGATORS: tuple[tuple[str, str, str], ...] = (
    ("worldnewsera.com", "World News Era", "farm"),
    ("dailynewsfeed.press", "Daily News Feed", "farm"),
    ("headlinehub.online", "HeadlineHub", "portal"),
    ("trendingnow24.net", "Trending Now 24", "portal"),
    ("newsreader.cloud", "NewsReader", "reader"),
    ("feedpulse.io", "FeedPulse", "reader"),
    ("globalreport-live.blogspot.com", "Global Report Live", "blogspot"),
    ("breakingdigest.club", "Breaking Digest", "farm"),
    ("theinformedpost.xyz", "The Informed Post", "portal"),
    ("newsnowtoday.info", "News Now Today", "blogspot"),
)
REGIONAL_PAPERS: tuple[tuple[str, str, str], ...] = (
    ("www.harborcityledger.com", "The Harbor City Ledger", "newsroom"),
    ("www.valleytribune-news.com", "Valley Tribune", "wordpress"),
    ("www.northfieldcourier.com", "Northfield Courier", "modern"),
    ("www.lakeshoregazette.com", "The Lakeshore Gazette", "legacy"),
    ("www.prairiestarjournal.com", "Prairie Star Journal", "newsroom"),
    ("www.capitalobserver.net", "Capital Observer", "modern"),
    ("www.coastaldailypress.com", "Coastal Daily Press", "wordpress"),
    ("www.riverbendherald.com", "Riverbend Herald", "legacy"),
    ("www.mountainviewtimes.com", "Mountain View Times", "newsroom"),
)
OUTLETS: tuple[tuple[str, str, str], ...] = (
    ("www.dailymeridian.com", "The Daily Meridian", "newsroom"),
    ("www.atlanticledger.com", "Atlantic Ledger", "modern"),
    ("www.thecivicreview.com", "The Civic Review", "wordpress"),
    ("www.metroexaminer.net", "Metro Examiner", "legacy"),
    ("www.northstarpost.com", "North Star Post", "newsroom"),
    ("www.pacificwire.news", "Pacific Wire", "modern"),
    ("www.heartlandtribune.com", "Heartland Tribune", "wordpress"),
    ("www.globecourier.org", "Globe Courier", "newsroom"),
    ("www.eveningsentinel.co.uk", "Evening Sentinel", "modern"),
)
"""Nine publishers that many originals are re-hosted on, so originals share site boilerplate."""
OUTLET_HOSTS = frozenset(host for host, _, _ in OUTLETS)
PUBLISHER_FAMILIES = ("newsroom", "wordpress", "modern", "legacy")
_SITE_FAMILIES = {host: family for host, _, family in OUTLETS + REGIONAL_PAPERS}
SECTIONS = ("World", "Politics", "Business", "Tech", "Science", "Sport", "Culture", "Opinion")
AUTHORS = (
    "Jane Miller",
    "Tom Okafor",
    "Priya Raman",
    "Luis Ortega",
    "Anna Schmidt",
    "Staff Reporter",
    "Chen Wei",
    "Sarah O'Neil",
    "News Desk",
    "Mark Tanaka",
)


def family_for(host: str) -> str:
    """The page-template family a publisher's site uses (stable per host)."""
    if host in _SITE_FAMILIES:
        return _SITE_FAMILIES[host]
    digest = int(hashlib.sha256(host.encode()).hexdigest()[:8], 16)
    return PUBLISHER_FAMILIES[digest % len(PUBLISHER_FAMILIES)]


def site_boilerplate(
    host: str, site_name: str, titles: Sequence[str], rng: random.Random
) -> tuple[list[Block], list[Block]]:
    """In-body boilerplate a publisher puts in every article: the same lines on every page of the
    site (which ones is fixed per site), placed mid-body and after the text."""
    digest = int(hashlib.sha256(host.encode()).hexdigest()[:8], 16)
    middle: list[Block] = []
    tail: list[Block] = []
    if digest & 1:
        middle.append(
            Block(
                f"Sign up for {site_name}'s morning briefing: the day's top stories, "
                "straight to your inbox.",
                "junk",
            )
        )
    if digest & 2:
        middle.append(Block("Advertisement", "junk"))
    if digest & 4:
        tail.append(
            Block(
                f"Copyright {2019} {site_name}. All rights reserved. This material may not "
                "be published, broadcast, rewritten or redistributed.",
                "junk",
            )
        )
    if digest & 8:
        tail.append(
            Block(
                f"Have a story idea or a correction? Contact the {site_name} newsroom; "
                "we read every message.",
                "junk",
            )
        )
    if digest & 16:
        picked = _other_titles(titles, "", rng, 3)
        tail.append(
            Block(
                "Read more:",
                "list",
                items=tuple((t, f"https://{host}/{slugify(t, 50)}/") for t in picked),
            )
        )
    return middle, tail


def slugify(text: str, limit: int = 80) -> str:
    """A URL slug of a headline."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return (slug[:limit].rstrip("-")) or hashlib.sha1(text.encode()).hexdigest()[:10]


def copy_url(host: str, title: str, rng: random.Random, when: datetime) -> str:
    """A URL on an aggregator or paper in one of several common shapes."""
    slug = slugify(title, rng.choice((40, 60, 80)))
    number = rng.randint(10000, 999999)
    shape = rng.randrange(6)
    if shape == 0:
        return f"https://{host}/{when:%Y/%m/%d}/{slug}/"
    if shape == 1:
        return f"https://{host}/news/{number}-{slug}.html"
    if shape == 2:
        return f"https://{host}/?p={number}"
    if shape == 3:
        return f"https://{host}/{rng.choice(SECTIONS).lower()}/{slug}-{number}"
    if shape == 4:
        return f"https://{host}/{when:%Y/%m}/{slug}.html?utm_source=rss&utm_medium=feed"
    return f"https://{host}/article/{hashlib.sha1(f'{slug}{number}'.encode()).hexdigest()[:12]}"


# ---------------------------------------------------------------- body blocks and junk


@dataclass(frozen=True)
class Block:
    """One block of an article body as a page shows it."""

    text: str
    role: str = "p"
    """p (article text), junk (aggregator line), link (junk with a link), quote, list, date."""
    href: str | None = None
    items: tuple[tuple[str, str], ...] = ()
    """(title, url) entries of a list block."""


def body_text(blocks: Sequence[Block], rng: random.Random) -> str:
    """The plain text of a body, as a text record carries it."""
    lines: list[str] = []
    for block in blocks:
        lines.append(block.text)
        lines.extend(title for title, _ in block.items)
    return ("\n\n" if rng.random() < 0.7 else "\n").join(line for line in lines if line)


def scrape_date_header(rng: random.Random) -> str:
    """A scrape-date header such as "Sunday, 14 Apr 2024" (not a publication date)."""
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(
        days=rng.randrange(1600), minutes=rng.randrange(1440)
    )
    return rng.choice(
        (
            f"{when:%A, %d %b %Y}",
            f"{when:%A, %B} {when.day}, {when:%Y}",
            f"{when:%d/%m/%Y %H:%M}",
            f"Last updated: {when:%b} {when.day}, {when:%Y}",
            f"{when:%a %b %d %Y}",
            f"Updated {when:%H:%M} GMT, {when:%d %B %Y}",
        )
    )


def _front_meta(host: str, title: str) -> str:
    """The section and age a site's fronts show next to a headline (the same on every front)."""
    digest = int(hashlib.sha1(f"{host}{title}".encode()).hexdigest()[:8], 16)
    return f"{SECTIONS[digest % len(SECTIONS)]} | {digest % 23 + 1} hours ago"


def _other_titles(titles: Sequence[str], exclude: str, rng: random.Random, count: int) -> list[str]:
    pool = [t for t in titles if t != exclude]
    return rng.sample(pool, min(count, len(pool)))


def related_block(titles: Sequence[str], exclude: str, rng: random.Random, host: str) -> Block:
    """A "Related Posts"/"Related Stories:" list of other stories' headlines."""
    heading = rng.choice(
        (
            "Related Posts",
            "Related Stories:",
            "You may also like",
            "Read more:",
            "More from this category",
            "RELATED ARTICLES",
            "Also on " + host,
        )
    )
    picked = _other_titles(titles, exclude, rng, rng.choice((0, 2, 3, 5)))
    items = tuple((t, f"https://{host}/{slugify(t, 50)}/") for t in picked)
    return Block(heading, "list", items=items)


SHARE_LINES = (
    "Share this:",
    "Click to share on Twitter (Opens in new window)",
    "Click to share on Facebook (Opens in new window)",
    "Share on WhatsApp",
    "Like this:",
    "Like Loading...",
    "Subscribe to our newsletter for the latest updates",
    "Follow us on Google News",
    "Share Tweet Pin Email",
    "SHARE THIS ARTICLE",
    "Don't miss out: subscribe to our daily briefing.",
    "Join our Telegram channel",
    "Get the latest news delivered to your inbox. Sign up now!",
)
SOURCE_LINES = (
    "Source: Read Full Article",
    "Source link",
    "Read Full Article",
    "Source: {site}",
    "Originally published at {site}",
    "Read the original article on {site}",
    "Credit: {site}",
    "Read More",
)
DISCLAIMERS = (
    (
        "Disclaimer: This story is auto-generated from a syndicated feed; only the image and "
        "headline may have been reworked by our staff."
    ),
    "All content is copyright of the respective owners. We do not claim ownership.",
    "This article was automatically imported from our partner feed.",
)


def junk_blocks(
    source: SourceArticle,
    titles: Sequence[str],
    host: str,
    rng: random.Random,
    *,
    source_link: bool,
) -> tuple[list[Block], list[Block]]:
    """Aggregator junk to put before and after the copied text (varied every time)."""
    head: list[Block] = []
    tail: list[Block] = []
    if rng.random() < 0.5:
        head.append(Block(scrape_date_header(rng), "date"))
    if rng.random() < 0.15:
        head.append(Block(rng.choice(SHARE_LINES), "junk"))
    if rng.random() < 0.1:
        head.append(Block(f"By {rng.choice(AUTHORS)}", "junk"))
    if rng.random() < 0.45:
        tail.append(related_block(titles, source.title, rng, host))
    if rng.random() < 0.3:
        section = rng.choice(SECTIONS)
        tail.append(
            Block(
                rng.choice(
                    (
                        f"More {section} special reports and analyses here",
                        f"More {section} news",
                        f"Latest {section} updates",
                    )
                )
            )
        )
    if source_link or rng.random() < 0.5:
        line = rng.choice(SOURCE_LINES).format(site=source.site_name)
        tail.append(Block(line, "link", href=source.url if source_link else None))
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        tail.append(Block(rng.choice(SHARE_LINES), "junk"))
    if rng.random() < 0.15:
        tail.append(Block(rng.choice(DISCLAIMERS), "junk"))
    if rng.random() < 0.35:
        tail.append(related_block(titles, source.title, rng, host))
    rng.shuffle(tail)
    return head, tail


# ---------------------------------------------------------------- text transformations


def excerpt_paragraphs(
    paragraphs: Sequence[str], rng: random.Random, low: float = 0.32, high: float = 0.75
) -> list[str]:
    """The first part of an article (a fraction in [low, high] of its characters)."""
    total = sum(len(p) for p in paragraphs)
    target = total * rng.uniform(low, high)
    out: list[str] = []
    taken = 0
    for paragraph in paragraphs:
        if taken + len(paragraph) <= target:
            out.append(paragraph)
            taken += len(paragraph)
            continue
        sentences = split_sentences(paragraph)
        partial: list[str] = []
        for sentence in sentences:
            partial.append(sentence)
            taken += len(sentence) + 1
            if taken >= target:
                break
        text = " ".join(partial)
        if partial != sentences and rng.random() < 0.4:
            text += rng.choice((" […]", "...", " [...]", "…"))
        out.append(text)
        break
    while sum(len(p) for p in out) < total * low and len(out) < len(paragraphs):
        out.append(paragraphs[len(out)])
    return out


EXCERPT_ENDINGS = (
    "Read Full Article",
    "Continue reading at {site}",
    "Continue reading...",
    "Read more at {site}",
    "The post {title} appeared first on {site}.",
    "Read the full story at {site}",
    "Click here to read the full article.",
    "Source: {site} | Read Full Article",
    "Keep reading on {site} »",
)

SYNONYMS: dict[str, tuple[str, ...]] = {
    "said": ("stated", "told reporters", "noted", "added"),
    "says": ("stated", "notes"),
    "also": ("additionally", "as well"),
    "big": ("large", "huge"),
    "large": ("big", "sizeable"),
    "about": ("around", "roughly"),
    "began": ("started",),
    "start": ("begin",),
    "help": ("assist",),
    "many": ("numerous", "several"),
    "very": ("extremely", "really"),
    "people": ("individuals", "persons"),
    "buy": ("purchase",),
    "use": ("utilise", "utilize"),
    "get": ("obtain", "receive"),
    "after": ("following",),
    "because": ("since", "as"),
    "important": ("crucial", "key"),
    "found": ("discovered",),
    "told": ("informed",),
    "think": ("believe",),
    "including": ("such as",),
    "nearly": ("almost",),
    "almost": ("nearly",),
    "percent": ("per cent", "%"),
    "show": ("reveal",),
    "however": ("but",),
    "new": ("fresh", "latest"),
    "major": ("key", "significant"),
    "before": ("prior to",),
    "announced": ("revealed", "unveiled"),
    "will": ("is set to",),
    "company": ("firm",),
    "children": ("kids",),
    "week": ("weekend",),
    "first": ("initial",),
    "show's": ("programme's",),
    "city": ("town",),
    "government": ("administration",),
}


def change_words(paragraphs: list[str], rng: random.Random, count: int) -> list[str]:
    """A few words changed: synonym swaps, else small deletions."""
    out = list(paragraphs)
    places = [
        (i, m)
        for i, p in enumerate(out)
        for m in re.finditer(r"\b[a-z']+\b", p)
        if m.group(0) in SYNONYMS
    ]
    rng.shuffle(places)
    chosen = sorted(places[:count], key=lambda im: (im[0], -im[1].start()))
    for index, match in chosen:
        text = out[index]
        out[index] = (
            text[: match.start()] + rng.choice(SYNONYMS[match.group(0)]) + text[match.end() :]
        )
    for _ in range(max(0, count - len(chosen))):
        index = rng.randrange(len(out))
        words = out[index].split(" ")
        if len(words) > 8:
            del words[rng.randrange(1, len(words) - 1)]
            out[index] = " ".join(words)
    return out


def reheadline(title: str, rng: random.Random) -> str:
    """A new headline for the same story."""
    choice = rng.randrange(7)
    if choice == 0:
        return rng.choice(("BREAKING: ", "WATCH: ", "Report: ", "UPDATED: ", "Exclusive: ")) + title
    if choice == 1:
        return title + rng.choice(
            (": report", " - here's what we know", " (VIDEO)", " | Full story", ", officials say")
        )
    if choice == 2 and ":" in title:
        return title.split(":", 1)[1].strip().capitalize() or title
    if choice == 3:
        words = title.split()
        return " ".join(words[: max(4, len(words) * 2 // 3)]) + "..."
    if choice == 4:
        return title.title()
    words = title.split()
    for i, word in enumerate(words):
        if word.lower() in SYNONYMS:
            words[i] = rng.choice(SYNONYMS[word.lower()])
            return " ".join(words)
    return rng.choice(("", "Watch: ", "Latest: ")) + title + rng.choice(("", " - report"))


def edit_copy(
    paragraphs: Sequence[str], titles: Sequence[str], title: str, rng: random.Random
) -> list[Block]:
    """A lightly edited copy: words changed, a paragraph dropped or swapped, lines inserted."""
    out = list(paragraphs)
    total = sum(len(p) for p in out)
    words = sum(len(p.split()) for p in out)
    edits = rng.sample(("words", "drop", "swap", "insert", "insert2"), rng.randint(2, 4))
    if "words" in edits or len(edits) < 2:  # "a few words": about one per 100 words
        out = change_words(out, rng, rng.randint(1, max(1, min(8, words // 100))))
    if "drop" in edits and len(out) >= 5:
        candidates = [i for i in range(1, len(out)) if len(out[i]) <= 0.15 * total]
        if candidates:
            del out[rng.choice(candidates)]
    if "swap" in edits and len(out) >= 4:
        i = rng.randrange(1, len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    blocks = [Block(p) for p in out]
    inserts = 1 + ("insert" in edits and words > 250) + ("insert2" in edits and words > 600)
    for _ in range(inserts):
        line = rng.choice(
            (
                "ADVERTISEMENT",
                "Advertisement",
                "Also read: {other}",
                "READ MORE: {other}",
                "Advertisement - Continue Reading Below",
                "Also Read | {other}",
                "[Sponsored]",
                "Story continues below advertisement",
                "RELATED: {other}",
            )
        ).format(other=rng.choice(_other_titles(titles, title, rng, 3) or [title]))
        blocks.insert(rng.randrange(1, max(2, len(blocks))), Block(line, "junk"))
    return blocks


_SMART = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "„": '"', "«": '"', "»": '"'})


def smarten(text: str) -> str:
    """Straight quotes to curly ones, as word processors do."""
    text = re.sub(r'(^|[\s(\[])"', "\\1“", text)
    text = text.replace('"', "”")
    text = re.sub(r"(^|[\s(\[])'", "\\1‘", text)
    return text.replace("'", "’")


def retypeset(paragraphs: Sequence[str], title: str, rng: random.Random) -> tuple[list[str], str]:
    """Typography changes: quotes, dashes, non-breaking spaces, case, ellipses, line breaks."""
    out = list(paragraphs)
    steps = rng.sample(
        ("quotes", "dashes", "nbsp", "case", "ellipsis", "rebreak", "nfd", "spaces"),
        rng.randint(2, 4),
    )
    for step in steps:
        if step == "quotes":
            curly = any(c in "“”’" for p in out for c in p)
            out = [p.translate(_SMART) if curly else smarten(p) for p in out]
            title = title.translate(_SMART) if curly else smarten(title)
        elif step == "dashes":
            style = rng.choice((" - ", " -- ", "—", " – "))
            out = [re.sub(r"\s*[—–]\s*| - ", style, p) for p in out]
        elif step == "nbsp":
            share = rng.choice((0.2, 0.5, 1.0))
            out = [
                re.sub(r"\b(\w{1,3}) (?=\w)", "\\1\u00a0", p) if rng.random() < share else p
                for p in out
            ]
        elif step == "case":
            which = rng.randrange(3)
            if which == 0:
                title = title.upper()
            elif which == 1:
                out[0] = out[0].upper()
            else:
                words = out[0].split(" ")
                cut = min(len(words), rng.randint(3, 6))
                out[0] = " ".join(w.upper() for w in words[:cut]) + " " + " ".join(words[cut:])
        elif step == "ellipsis":
            out = [p.replace("…", "...") if "…" in p else p.replace("...", "…") for p in out]
        elif step == "rebreak" and len(out) > 2:
            i = rng.randrange(len(out) - 1)
            out[i : i + 2] = [out[i] + " " + out[i + 1]]
        elif step == "nfd":
            out = [unicodedata.normalize("NFD", p) for p in out]
        elif step == "spaces":
            out = [re.sub(r"([.!?]) (?=[A-Z])", r"\1  ", p) for p in out]
    return out, title


DATELINE = re.compile(
    r"^(?P<city>[A-Z][A-Za-z.'\- ]{1,40}?(?:, [A-Z][A-Za-z.\- ]{1,30})?)\s*"
    r"(?P<agency>\([^)]{1,40}\))?\s*(?:[-—–]+|:)\s*"
)
AGENCIES = ("(Reuters)", "(AP)", "(AFP)", "(Bloomberg)", "(dpa)", "(UPI)", "(Xinhua)", "(IANS)")
CITIES = (
    "WASHINGTON",
    "NEW YORK",
    "LONDON",
    "BRUSSELS",
    "BEIJING",
    "TOKYO",
    "PARIS",
    "SAN FRANCISCO",
    "Hong Kong",
    "NEW DELHI",
    "SYDNEY",
    "BERLIN",
    "MOSCOW",
    "GENEVA",
)
CREDITS = (
    "(Reporting by {a}; additional reporting by {b}; Editing by {c})",
    (
        "Copyright {year} The Associated Press. All rights reserved. This material may not be "
        "published, broadcast, rewritten or redistributed."
    ),
    "— AFP",
    "(With inputs from agencies)",
    "© {year} Reuters",
    "This story has been published from a wire agency feed without modifications to the text.",
    "{a} contributed to this report.",
    "Bloomberg's {a} contributed.",
)


def redateline(paragraphs: Sequence[str], rng: random.Random, year: int) -> list[Block]:
    """A wire story as another paper runs it: dateline added or changed, agency credits."""
    out = list(paragraphs)
    match = DATELINE.match(out[0]) if out[0][:1].isupper() else None
    dash = rng.choice((" - ", " — ", " -- ", ": "))
    city = rng.choice(CITIES)
    agency = rng.choice(AGENCIES)
    if match and (match.group("agency") or match.group("city").isupper()):
        rest = out[0][match.end() :]
        city = match.group("city") if rng.random() < 0.6 else city.title()
        out[0] = f"{city} {agency if rng.random() < 0.8 else ''}".rstrip() + dash + rest
    else:
        out[0] = f"{city} {agency}{dash}{out[0]}"
    blocks = [Block(p) for p in out]
    if rng.random() < 0.3:
        blocks.insert(
            0,
            Block(f"By {rng.choice(('The Associated Press', 'Reuters', 'AFP', 'Staff'))}", "junk"),
        )
    for _ in range(rng.choice((1, 1, 2))):
        credit = rng.choice(CREDITS).format(
            a=rng.choice(AUTHORS), b=rng.choice(AUTHORS), c=rng.choice(AUTHORS), year=year
        )
        blocks.append(Block(credit, "junk"))
    return blocks


# ---------------------------------------------------------------- HTML pages


@dataclass(frozen=True)
class PageMeta:
    """What a page says about itself in its <head>."""

    canonical: str | None = None
    og_url: str | None = None
    published: datetime | None = None
    json_ld: bool = False
    author: str | None = None
    description: str | None = None


COMMENTS = (
    "Great article, thanks for sharing!",
    "Who writes this stuff?",
    "Very informative.",
    "This is exactly what I was saying last week.",
    "First!",
    "Interesting read, but the headline is misleading.",
    "Thanks for the update.",
    "Can't believe this is happening.",
)
ENTITIES = {
    "’": "&#8217;",
    "‘": "&#8216;",
    "“": "&#8220;",
    "”": "&#8221;",
    "—": "&mdash;",
    "–": "&ndash;",
    "\u00a0": "&nbsp;",
    "…": "&hellip;",
}


def _esc(text: str, entities: bool = False) -> str:
    out = htmllib.escape(text, quote=False)
    if entities:
        for char, entity in ENTITIES.items():
            out = out.replace(char, entity)
    return out


def _render_block(block: Block, family: str, rng: random.Random, entities: bool) -> str:
    text = _esc(block.text, entities)
    if block.role == "list":
        items = "".join(
            f'<li><a href="{htmllib.escape(u)}">{_esc(t)}</a></li>' for t, u in block.items
        )
        return f'<div class="related"><h3>{text}</h3><ul>{items}</ul></div>'
    if block.role == "date":
        return f'<div class="{rng.choice(("date", "post-date", "header-date"))}">{text}</div>'
    if block.role == "quote":
        return f"<blockquote><p>{text}</p></blockquote>"
    if block.role == "link" and block.href:
        href = htmllib.escape(block.href)
        if ": " in block.text:
            label, rest = block.text.split(": ", 1)
            link = f'<a href="{href}" rel="nofollow">{_esc(rest)}</a>'
            return f'<p class="source">{_esc(label)}: {link}</p>'
        return f'<p class="source"><a href="{href}" target="_blank">{text}</a></p>'
    if block.role == "junk":
        if block.text.upper().startswith("ADVERTISEMENT") or "advertisement" in block.text.lower():
            return f'<div class="ad-slot"><span>{text}</span></div>'
        return f"<p><strong>{text}</strong></p>" if rng.random() < 0.3 else f"<p>{text}</p>"
    if family == "legacy":
        return f"{text}<br><br>\n"
    return f"<p>{text}</p>\n"


def _head(title: str, site_name: str, meta: PageMeta, url: str) -> str:
    parts = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)} | {_esc(site_name)}</title>",
        f'<meta property="og:title" content="{htmllib.escape(title)}">',
        f'<meta property="og:site_name" content="{htmllib.escape(site_name)}">',
        '<meta property="og:type" content="article">',
    ]
    if meta.description:
        parts.append(f'<meta name="description" content="{htmllib.escape(meta.description)}">')
    if meta.canonical:
        parts.append(f'<link rel="canonical" href="{htmllib.escape(meta.canonical)}">')
    if meta.og_url:
        parts.append(f'<meta property="og:url" content="{htmllib.escape(meta.og_url)}">')
    if meta.published:
        parts.append(
            f'<meta property="article:published_time" content="{meta.published.isoformat()}">'
        )
    if meta.author:
        parts.append(f'<meta name="author" content="{htmllib.escape(meta.author)}">')
    if meta.json_ld:
        data: dict[str, object] = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": title,
            "mainEntityOfPage": meta.canonical or url,
            "publisher": {"@type": "Organization", "name": site_name},
        }
        if meta.published:
            data["datePublished"] = meta.published.isoformat()
        if meta.author:
            data["author"] = {"@type": "Person", "name": meta.author}
        parts.append(f'<script type="application/ld+json">{json.dumps(data)}</script>')
    parts.append('<link rel="stylesheet" href="/static/css/main.css">')
    return "<head>\n" + "\n".join(parts) + "\n</head>"


def _nav(site_name: str, host: str) -> str:
    links = "".join(f'<li><a href="https://{host}/{s.lower()}/">{s}</a></li>' for s in SECTIONS)
    return (
        f'<header class="site-header"><a class="logo" href="https://{host}/">{_esc(site_name)}</a>'
        f'<nav class="main-nav"><ul>{links}</ul></nav>'
        '<form class="search"><input type="search" placeholder="Search"></form></header>'
    )


def _link_list(heading: str, titles: Sequence[str], host: str, css: str) -> str:
    items = "".join(
        f'<li><a href="https://{host}/{slugify(t, 50)}/">{_esc(t)}</a></li>' for t in titles
    )
    return f'<aside class="{css}"><h2>{heading}</h2><ol>{items}</ol></aside>'


def _footer(site_name: str, year: int) -> str:
    return (
        f'<footer class="site-footer"><p>&copy; {year} {_esc(site_name)}. All rights reserved.</p>'
        '<ul><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li>'
        '<li><a href="/privacy">Privacy Policy</a></li><li><a href="/terms">Terms of Use</a></li>'
        "</ul><p>Cookies help us deliver our services. By using our services, you agree to our use "
        "of cookies.</p></footer>"
    )


def render_page(
    family: str,
    host: str,
    site_name: str,
    url: str,
    title: str,
    blocks: Sequence[Block],
    meta: PageMeta,
    *,
    sidebar: Sequence[str],
    rng: random.Random,
    entities: bool = False,
    visible_date: datetime | None = None,
    byline: str | None = None,
) -> str:
    """A whole page of one template family around an article body."""
    body = "".join(_render_block(b, family, rng, entities) for b in blocks)
    h1 = _esc(title, entities)
    year = (meta.published or visible_date or datetime(2019, 11, 20, tzinfo=UTC)).year
    when = visible_date or meta.published
    shown = f"{when:%B} {when.day}, {when:%Y} {when:%H:%M}" if when else ""
    time_tag = f'<time datetime="{when.isoformat()}">{shown}</time>' if when else ""
    by = f'<span class="byline">By {_esc(byline)}</span>' if byline else ""
    side = _link_list(
        rng.choice(("Most Read", "Trending", "Popular Now", "Top Stories")),
        sidebar,
        host,
        "sidebar",
    )
    comments = ""
    if family in ("wordpress", "farm", "blogspot") and rng.random() < 0.5:
        picked = rng.sample(COMMENTS, rng.randint(1, 3))
        comments = (
            '<div id="comments"><h3>Comments</h3>'
            + "".join(
                f'<div class="comment"><b>{rng.choice(AUTHORS)}</b><p>{_esc(c)}</p></div>'
                for c in picked
            )
            + "<h3>Leave a Reply</h3><p>Your email address will not be published. Required fields "
            "are marked *</p></div>"
        )
    if family == "newsroom":
        main = (
            f'<main><article class="story"><div class="breadcrumb"><a href="/">Home</a> &rsaquo; '
            f'{rng.choice(SECTIONS)}</div><h1 class="headline">{h1}</h1><div class="meta">{by} '
            f'{time_tag}</div><div class="article-body">{body}</div>'
            '<div class="share">Share: Facebook | Twitter | Email | Print</div></article>'
            f"{side}</main>"
        )
    elif family == "wordpress":
        main = (
            '<div id="content" class="site-content"><main id="main">'
            '<article class="post type-post"><header class="entry-header">'
            f'<h1 class="entry-title">{h1}</h1><div class="entry-meta">'
            f'Posted on {time_tag} {by}</div></header><div class="entry-content">{body}</div>'
            f'<footer class="entry-footer">Posted in {rng.choice(SECTIONS)}</footer></article>'
            f'{comments}</main><div id="secondary" class="widget-area">{side}</div></div>'
        )
    elif family == "modern":
        main = (
            f'<div id="__next"><main><div class="ArticleHeader"><span class="kicker">'
            f'{rng.choice(SECTIONS)}</span><h1 data-testid="headline">{h1}</h1>'
            f'<div class="Byline">{by} {time_tag}</div></div><section class="ArticleBody" '
            f'data-component="text-block"><div class="paywall">{body}</div></section>'
            '<div class="Newsletter"><h4>Sign up for our newsletter</h4><p>The best stories of the '
            f"day, delivered to your inbox.</p></div>{side}</main></div>"
        )
    elif family == "legacy":
        main = (
            f'<table width="100%"><tr><td class="leftnav">{side}</td><td class="story">'
            f'<font size="5"><b>{h1}</b></font><br><font size="2">{by} {shown}</font><br><br>'
            f'<div class="storytext">{body}</div></td></tr></table>'
        )
    elif family == "farm":
        main = (
            f'<div class="td-container"><div class="td-post-header"><h1 class="entry-title">{h1}'
            f'</h1><div class="td-post-date">{time_tag}</div></div><div class="td-post-content">'
            f'{body}</div>{comments}</div><div class="td-sidebar">{side}'
            '<div class="widget">Advertisement</div></div>'
        )
    elif family == "portal":
        trending = _link_list(
            "Trending Now", _other_titles(sidebar, title, rng, 4), host, "trending"
        )
        main = (
            f'<div class="cookie-banner">We use cookies to improve your experience.</div>'
            f'<div class="layout">{trending}<div class="col-main"><h1>{h1}</h1>'
            f'<div class="info">{time_tag}</div><div class="ad">Advertisement</div>'
            f'<div class="article-text">{body}</div></div>{side}</div>'
        )
    elif family == "reader":
        main = (
            f'<div class="feed-item"><h2 class="item-title">{h1}</h2><div class="item-meta">'
            f'{time_tag}</div><div class="item-content">{body}</div></div>{side}'
        )
    else:  # blogspot
        main = (
            f'<div class="post-outer"><div class="post"><h3 class="post-title entry-title">{h1}'
            f'</h3><div class="post-header">{time_tag}</div><div class="post-body entry-content">'
            f'{body}</div><div class="post-footer">Posted by admin at {shown or "10:31 PM"} '
            "No comments: Email ThisBlogThis!Share to TwitterShare to Facebook</div></div>"
            f"{comments}</div>{side}"
        )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n{_head(title, site_name, meta, url)}\n<body>\n'
        f"{_nav(site_name, host)}\n{main}\n{_footer(site_name, year)}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class CorpusOptions:
    """What to generate."""

    seed: int = 20240414
    copies: dict[str, float] = field(
        default_factory=lambda: {
            "full_copy": 3.0,
            "excerpt": 2.0,
            "edited": 2.0,
            "typography": 1.5,
            "redatelined": 1.0,
        }
    )
    """Mean number of copies of each kind per story."""
    reserve_fraction: float = 0.22
    """Share of the real articles held out as text for the hard negatives."""
    real_page_fraction: float = 0.4
    """Share of originals served as their real crawled page (when it extracts cleanly)."""
    text_record_fraction: float = 0.2
    """Share of copies (and half as many originals) emitted as text records."""
    same_event_rate: float = 0.4
    quote_rate: float = 0.3
    boilerplate_sites: int = 6
    thin_rate: float = 0.6
    section_front_sites: int = 4
    """Sites that get three section fronts each, listing overlapping runs of latest headlines."""
    outlet_fraction: float = 0.8
    """Share of synthetic originals re-hosted on the nine OUTLETS (shared site boilerplate)."""
    max_stories: int | None = None
    only_stories: tuple[str, ...] = ()
    """When set, only these original URLs become stories (the rest can still be held out)."""
    include_seed: bool = True
    spinners: tuple[str, ...] = ("A", "B")
    """The spinners (benchmarks/spinners.py SPINNERS) that make spun copies, in turn."""


class CorpusBuilder:
    """Builds records and labels from real articles."""

    def __init__(
        self,
        articles: Sequence[SourceArticle],
        options: CorpusOptions,
        seed_story: tuple[SourceArticle, str] | None = None,
    ) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.related = find_related(articles)
        wanted = set(options.only_stories)
        eligible = [
            a
            for a in articles
            if a.url not in self.related and a.url not in wanted and a.words >= 200
        ]
        self.rng.shuffle(eligible)
        reserved = eligible[: int(len(articles) * options.reserve_fraction)]
        reserved_keys = {a.key for a in reserved}
        self.stories = [a for a in articles if a.key not in reserved_keys]
        if wanted:
            self.stories = [a for a in self.stories if a.url in wanted]
        self.rng.shuffle(self.stories)
        if options.max_stories is not None:
            self.stories = self.stories[: options.max_stories]
        self.modes: dict[str, str] = {}
        """How each original is served: real (its crawled page), text, outlet or own (templates)."""
        moved: dict[str, str] = {}
        for index, article in enumerate(self.stories):
            rng = self._story_rng(article, "original")
            if rng.random() < options.real_page_fraction and self._real_page_usable(article):
                mode = "real"
            elif rng.random() < options.text_record_fraction / 2:
                mode = "text"
            elif rng.random() < options.outlet_fraction:
                mode = "outlet"
                self.stories[index] = self._rehost(article, rng)
                moved[article.url] = self.stories[index].url
            else:
                mode = "own"
            self.modes[article.key] = mode
        self.related = {
            moved.get(url, url): [moved.get(o, o) for o in others]
            for url, others in self.related.items()
        }
        self.seed_story = seed_story if options.include_seed else None
        if self.seed_story:
            self.stories.insert(0, self.seed_story[0])
            self.modes[self.seed_story[0].key] = "seed"
        self.pool = TextPool(reserved)
        self.titles = [a.title for a in self.stories]
        self.records: list[Record] = []
        self._urls: set[str] = set()

    # -- helpers

    def _rehost(self, article: SourceArticle, rng: random.Random) -> SourceArticle:
        """The article as one of the nine outlets publishes it (new URL and site name)."""
        host, name, _ = rng.choice(OUTLETS)
        slug = slugify(article.title, 70)
        url = rng.choice(
            (
                f"https://{host}/{rng.choice(SECTIONS).lower()}/{article.published:%Y/%m/%d}/{slug}/",
                f"https://{host}/news/{slug}-{rng.randint(100000, 999999)}",
                f"https://{host}/{article.published:%Y/%m/%d}/{slug}.html",
            )
        )
        return replace(article, url=url, site_name=name, page_html=None)

    def _story_rng(self, article: SourceArticle, salt: str = "") -> random.Random:
        return random.Random(f"{self.options.seed}:{article.key}:{salt}")

    def _add(self, record: Record) -> None:
        if record.url in self._urls:
            return
        self._urls.add(record.url)
        self.records.append(record)

    def _unique_url(self, url: str, rng: random.Random) -> str:
        while url in self._urls:
            url = f"{url}{'&' if '?' in url else '?'}id={rng.randint(100, 99999)}"
        return url

    def _sidebar(self, rng: random.Random, exclude: str) -> list[str]:
        return _other_titles(self.titles, exclude, rng, rng.randint(3, 6))

    # -- originals

    def _real_page_usable(self, article: SourceArticle) -> bool:
        """The real page extracts to (mostly) its labelled text, so it can serve as the original."""
        if not article.page_html:
            return False
        import trafilatura

        extracted = trafilatura.extract(article.page_html, url=article.url) or ""
        truth = _shingles("\n".join(article.paragraphs), 3)
        found = _shingles(extracted, 3)
        return (
            bool(truth)
            and len(truth & found) / len(truth) >= 0.85
            and len(truth & found) / max(1, len(found)) >= 0.6
        )

    def add_original(self, article: SourceArticle) -> None:
        rng = self._story_rng(article, "original")
        host = urlsplit(article.url).netloc
        common: dict[str, Any] = {
            "url": article.url,
            "story": article.url,
            "kind": "original",
            "canonical": True,
            "site": host,
            "related": sorted(self.related.get(article.url, [])),
        }
        mode = self.modes[article.key]
        if mode == "real":
            self._add(Record(html=article.page_html, **common))
            return
        if mode == "text":
            self._add(
                Record(
                    text="\n\n".join(article.paragraphs),
                    title=article.title,
                    published=article.published,
                    **common,
                )
            )
            return
        author = rng.choice(AUTHORS)
        if mode == "seed":
            meta = PageMeta(
                canonical=article.url,
                og_url=article.url,
                published=article.published,
                json_ld=True,
                author=author,
            )
            page = render_page(
                "newsroom",
                host,
                article.site_name,
                article.url,
                article.title,
                [Block(p) for p in article.paragraphs],
                meta,
                sidebar=self._sidebar(rng, article.title),
                rng=rng,
                visible_date=article.published,
                byline=author,
            )
            self._add(Record(html=page, **common))
            return
        meta = PageMeta(
            canonical=article.url if rng.random() < 0.9 else None,
            og_url=article.url if rng.random() < 0.7 else None,
            published=article.published,
            json_ld=rng.random() < 0.4,
            author=author if rng.random() < 0.5 else None,
            description=split_sentences(article.paragraphs[0])[0][:160]
            if rng.random() < 0.5
            else None,
        )
        blocks = [Block(p) for p in article.paragraphs]
        if mode == "outlet":
            middle, tail = site_boilerplate(host, article.site_name, self.titles, rng)
            at = min(3, len(blocks))
            blocks = blocks[:at] + middle + blocks[at:] + tail
        page = render_page(
            family_for(host),
            host,
            article.site_name,
            article.url,
            article.title,
            blocks,
            meta,
            sidebar=self._sidebar(rng, article.title),
            rng=rng,
            visible_date=article.published,
            byline=author,
        )
        self._add(Record(html=page, **common))

    def original_is_dated(self, article: SourceArticle) -> bool:
        """Whether the original's record will carry a publication date the engine can read."""
        record = next(r for r in self.records if r.url == article.url)
        return (
            record.html is None
            or _page_date(record.html) is not None
            or "datePublished" in record.html
        )

    # -- copies

    def add_copy(self, article: SourceArticle, kind: str, index: int) -> None:
        rng = self._story_rng(article, f"{kind}{index}")
        paper = kind == "redatelined" or (kind == "edited" and rng.random() < 0.3)
        host, site_name, family = rng.choice(REGIONAL_PAPERS if paper else AGGREGATORS)
        dated_original = self.original_is_dated(article)
        as_text = rng.random() < self.options.text_record_fraction
        date_roll = rng.random()
        own_date: datetime | None = None
        if date_roll < 0.45 or (paper and date_roll < 0.8):
            own_date = article.published + timedelta(minutes=rng.randint(20, 60 * 24 * 6))
        link_roll = rng.random()
        names_original = link_roll < 0.3 and kind != "spun"
        source_link = not as_text and (rng.random() < (0.6 if kind == "excerpt" else 0.35)) and kind != "spun"
        if date_roll >= 0.9 and not as_text and not paper:
            own_date = article.published  # feed pubDate copied verbatim: needs a link to decide
            source_link = True
        if not dated_original and not (names_original or source_link):
            own_date = None  # nothing would tell the engine which page came first
        title = article.title
        paragraphs = list(article.paragraphs)
        if kind in ("excerpt", "edited", "redatelined") and rng.random() < 0.25:
            paragraphs, title = retypeset(paragraphs, title, rng)  # republished more than one way
        head: list[Block] = []
        tail: list[Block] = []
        entities = False
        if kind == "full_copy":
            head, tail = junk_blocks(article, self.titles, host, rng, source_link=source_link)
            body = [Block(p) for p in paragraphs]
            if self.modes.get(article.key) == "outlet" and rng.random() < 0.3:
                # scraped with the publisher's own in-body lines
                middle, own_tail = site_boilerplate(
                    urlsplit(article.url).netloc, article.site_name, self.titles, rng
                )
                at = min(3, len(body))
                body = body[:at] + middle + body[at:] + own_tail
            if len(body) > 6 and rng.random() < 0.2:
                body.insert(
                    rng.randrange(2, len(body) - 2), related_block(self.titles, title, rng, host)
                )
        elif kind == "excerpt":
            cut = excerpt_paragraphs(paragraphs, rng)
            ending = rng.choice(EXCERPT_ENDINGS).format(site=article.site_name, title=title)
            body = [Block(p) for p in cut]
            tail = [Block(ending, "link", href=article.url if source_link else None)]
            if rng.random() < 0.4:
                extra_head, extra_tail = junk_blocks(
                    article, self.titles, host, rng, source_link=False
                )
                head, tail = extra_head, tail + [b for b in extra_tail if b.role != "link"]
        elif kind == "edited":
            title = reheadline(title, rng)
            body = edit_copy(paragraphs, self.titles, article.title, rng)
            if rng.random() < 0.4:
                head, tail = junk_blocks(article, self.titles, host, rng, source_link=source_link)
        elif kind == "typography":
            paragraphs, title = retypeset(paragraphs, title, rng)
            body = [Block(p) for p in paragraphs]
            entities = rng.random() < 0.5
            if rng.random() < 0.4:
                head, tail = junk_blocks(article, self.titles, host, rng, source_link=source_link)
        elif kind == "spun":
            from benchmarks.spinners import SPINNERS

            names = self.options.spinners
            spinner = SPINNERS[names[index % len(names)]]  # a story's copies take them in turn
            title, spun = spinner.spin(article.title, paragraphs, rng)
            body = [Block(p) for p in spun]
            if rng.random() < 0.4:
                head, tail = junk_blocks(article, self.titles, host, rng, source_link=False)
        else:  # redatelined
            if rng.random() < 0.4:
                title = rng.choice(("UPDATE 1-", "UPDATE 2-", "", "")) + title
            body = redateline(paragraphs, rng, article.published.year)
        if source_link and not any(b.role == "link" and b.href for b in tail):
            tail.append(
                Block(
                    rng.choice(SOURCE_LINES).format(site=article.site_name),
                    "link",
                    href=article.url,
                )
            )
        blocks = head + body + tail
        url = self._unique_url(copy_url(host, title, rng, own_date or article.published), rng)
        common: dict[str, Any] = {
            "url": url,
            "story": article.url,
            "kind": kind,
            "canonical": False,
            "site": host,
        }
        if as_text:
            self._add(
                Record(text=body_text(blocks, rng), title=title, published=own_date, **common)
            )
            return
        meta = PageMeta(
            canonical=article.url if names_original else (url if link_roll < 0.6 else None),
            og_url=article.url
            if names_original and rng.random() < 0.5
            else (url if rng.random() < 0.4 else None),
            published=own_date,
            json_ld=rng.random() < 0.2,
            author=rng.choice(AUTHORS) if rng.random() < 0.3 else None,
        )
        page = render_page(
            family,
            host,
            site_name,
            url,
            title,
            blocks,
            meta,
            sidebar=self._sidebar(rng, article.title),
            rng=rng,
            entities=entities,
            visible_date=own_date,
            byline=rng.choice(AUTHORS) if paper and rng.random() < 0.5 else None,
        )
        self._add(Record(html=page, **common))

    def add_url_dated_copy(self, article: SourceArticle) -> None:
        """A bare full copy whose only date is the original's day in its URL path (day precision:
        read as midnight it looks earlier than the original's own timestamp)."""
        rng = self._story_rng(article, "url-dated")
        host, site_name, family = rng.choice(AGGREGATORS)
        url = self._unique_url(
            f"https://{host}/{article.published:%Y/%m/%d}/{slugify(article.title, 60)}/", rng
        )
        head, tail = junk_blocks(article, self.titles, host, rng, source_link=False)
        tail = [b for b in tail if b.role != "link"]
        page = render_page(
            family,
            host,
            site_name,
            url,
            article.title,
            head + [Block(p) for p in article.paragraphs] + tail,
            PageMeta(),
            sidebar=self._sidebar(rng, article.title),
            rng=rng,
        )
        self._add(
            Record(
                url=url, story=article.url, kind="full_copy", canonical=False, site=host, html=page
            )
        )

    def add_seed_repost(self, article: SourceArticle, repost: str) -> None:
        """The seed repost exactly as the content farm served it, as a text record."""
        self._add(
            Record(
                url=SEED_REPOST_URL,
                story=article.url,
                kind="full_copy",
                canonical=False,
                site=urlsplit(SEED_REPOST_URL).netloc,
                text=repost,
                title=article.title,
            )
        )

    # -- hard negatives

    def _publisher_site(self, rng: random.Random, avoid: str) -> tuple[str, str, str]:
        others = [
            (urlsplit(a.url).netloc, a.site_name)
            for a in self.stories
            if urlsplit(a.url).netloc != avoid
        ]
        if others and rng.random() < 0.5:
            host, name = rng.choice(others)
            return host, name, family_for(host)
        return rng.choice(REGIONAL_PAPERS)

    def _negative_page(
        self,
        kind: str,
        article: SourceArticle | None,
        host: str,
        name: str,
        family: str,
        title: str,
        blocks: list[Block],
        rng: random.Random,
        when: datetime,
    ) -> None:
        if host in OUTLET_HOSTS:
            middle, tail = site_boilerplate(host, name, self.titles, rng)
            at = min(3, len(blocks))
            blocks = blocks[:at] + middle + blocks[at:] + tail
        url = self._unique_url(copy_url(host, title, rng, when), rng)
        related = [article.url] if article else []
        common: dict[str, Any] = {
            "url": url,
            "story": url,
            "kind": kind,
            "canonical": True,
            "site": host,
            "related": related,
        }
        if rng.random() < self.options.text_record_fraction:
            self._add(Record(text=body_text(blocks, rng), title=title, published=when, **common))
            return
        meta = PageMeta(
            canonical=url if rng.random() < 0.8 else None,
            published=when,
            json_ld=rng.random() < 0.3,
        )
        page = render_page(
            family,
            host,
            name,
            url,
            title,
            blocks,
            meta,
            sidebar=self._sidebar(rng, title),
            rng=rng,
            visible_date=when,
            byline=rng.choice(AUTHORS),
        )
        self._add(Record(html=page, **common))

    def add_same_event(self, article: SourceArticle) -> None:
        """Another outlet's own story on the event: shares a few quoted/factual sentences."""
        rng = self._story_rng(article, "same-event")
        sentences = [
            s for p in article.paragraphs[1:] for s in split_sentences(p) if len(s.split()) >= 8
        ]
        quoted = (
            [s for s in sentences if re.search(r"[\"“”]", s)]
            or [s for s in sentences if re.search(r"\d", s)]
            or sentences
        )
        if not quoted:
            return
        target = max(180, min(650, int(article.words * rng.uniform(0.5, 1.1))))
        shared: list[str] = []
        for sentence in rng.sample(quoted, min(len(quoted), rng.randint(1, 3))):
            if sum(len(s.split()) for s in shared) + len(sentence.split()) <= 0.2 * target:
                shared.append(sentence)
        if not shared:
            shared = [min(quoted, key=len)]
            target = max(target, 6 * len(shared[0].split()))
        own = self.pool.paragraphs(target - sum(len(s.split()) for s in shared), rng)
        if len(own) < 2:
            return
        blocks = [Block(p) for p in own]
        for sentence in shared:
            blocks.insert(rng.randrange(1, len(blocks) + 1), Block(sentence))
        host, name, family = self._publisher_site(rng, urlsplit(article.url).netloc)
        when = article.published + timedelta(minutes=rng.randint(-600, 1440))
        if rng.random() < 0.5:
            title = reheadline(article.title, rng)
        else:  # a few of the original headline's words, the rest the outlet's own
            title = " ".join(article.title.split()[: rng.randint(2, 4)] + own[0].split()[:6])
        self._negative_page(
            "negative_same_event",
            article,
            host,
            name,
            family,
            title.rstrip(".,;:"),
            blocks,
            rng,
            when,
        )

    def add_quote(self, article: SourceArticle) -> None:
        """A commentary that quotes one paragraph of the original."""
        rng = self._story_rng(article, "quote")
        total = article.words
        candidates = [
            p for p in article.paragraphs[1:] if 25 <= len(p.split()) <= max(30, 0.2 * total)
        ]
        if not candidates:
            return
        quoted = rng.choice(candidates)
        own = self.pool.paragraphs(rng.randint(180, 400), rng)
        if len(own) < 2:
            return
        intro = rng.choice(
            (
                "As {site} reported:",
                "{site} reported on the story:",
                "Here is how {site} put it:",
                "According to {site}:",
            )
        )
        at = rng.randrange(1, len(own))
        blocks = [Block(p) for p in own[:at]]
        blocks += [Block(intro.format(site=article.site_name)), Block(quoted, "quote")]
        blocks += [Block(p) for p in own[at:]]
        host, name, family = self._publisher_site(rng, urlsplit(article.url).netloc)
        title = rng.choice(("Opinion: ", "Commentary: ", "Analysis: ", "")) + " ".join(
            own[0].split()[: rng.randint(5, 10)]
        ).rstrip(".,;:")
        when = article.published + timedelta(hours=rng.randint(2, 96))
        self._negative_page("negative_quote", article, host, name, family, title, blocks, rng, when)

    def add_boilerplate_site(self, index: int) -> None:
        """Short items on one site that share only the site's long in-body boilerplate."""
        rng = random.Random(f"{self.options.seed}:boilerplate:{index}")
        host, name, family = rng.choice(REGIONAL_PAPERS + AGGREGATORS)
        host = (
            f"{rng.choice(('local', 'metro', 'county', 'city'))}{index}.{host.removeprefix('www.')}"
        )
        boiler = [
            (
                f"About {name}: {name} is an independent, reader-supported newsroom covering local "
                "government, schools, business and sport across the region since "
                f"{rng.randint(1990, 2015)}. Our reporters live in the communities they cover."
            ),
            (
                f"Have a news tip or a correction? Email the newsroom at tips@{host} or call our "
                "24-hour news line. We read every message and respond to as many as we can."
            ),
            (
                "Follow us on Facebook, Twitter and Instagram for breaking news alerts, and sign "
                "up for our free morning newsletter to get the day's top stories in your inbox."
            ),
            (
                f"Copyright {rng.choice((2018, 2019))} {name}. All rights reserved. This material "
                "may not be published, broadcast, rewritten or redistributed without permission."
            ),
        ]
        rng.shuffle(boiler)
        boiler = boiler[: rng.randint(2, 4)]
        start = datetime(2019, 11, 18, 6, 0, tzinfo=UTC) + timedelta(hours=rng.randint(0, 48))
        for item in range(rng.randint(3, 6)):
            own = self.pool.paragraphs(rng.randint(40, 90), rng)
            if not own:
                return
            title = " ".join(own[0].split()[: rng.randint(6, 11)]).rstrip(".,;:")
            blocks = [Block(p) for p in own] + [Block(b, "junk") for b in boiler]
            if rng.random() < 0.4:
                blocks.insert(
                    0, Block(rng.choice(("BREAKING NEWS", "Local News", "Community")), "junk")
                )
            self._negative_page(
                "negative_short_boilerplate",
                None,
                host,
                name,
                family,
                title,
                blocks,
                rng,
                start + timedelta(hours=item * rng.randint(1, 9)),
            )

    def add_thin(self, index: int, style: str | None = None, site: int | None = None) -> None:
        """A page with little or no article text (never to be merged with anything)."""
        rng = random.Random(f"{self.options.seed}:thin:{index}:{style}:{site}")
        sites = REGIONAL_PAPERS + AGGREGATORS
        host, name, family = sites[site % len(sites)] if site is not None else rng.choice(sites)
        style = style or rng.choice(
            ("video", "section", "error", "error", "paywall", "gallery", "js")
        )
        other = rng.choice(self.titles)
        if style == "video":
            title = f"Video: {other}"
            blocks = [
                Block(f"Watch: {other}"),
                Block(f"Duration {rng.randint(0, 4)}:{rng.randint(10, 59)}", "junk"),
                Block("Video unavailable in your region? Try again later.", "junk"),
            ]
            url = f"https://{host}/video/{slugify(other, 50)}-{rng.randint(1000, 99999)}"
        elif style == "section":
            section = rng.choice(SECTIONS)
            title = f"{section} News"
            # a site's fronts list its latest headlines, so they overlap heavily with one another
            latest = sorted(self.titles, key=lambda t: hashlib.sha1(f"{host}{t}".encode()).digest())
            start = rng.randint(0, 3)
            picked = latest[start : start + rng.randint(8, 12)]
            blocks = [
                Block(
                    f"Latest {section} headlines",
                    "list",
                    items=tuple(
                        (f"{t} | {_front_meta(host, t)}", f"https://{host}/{slugify(t, 40)}/")
                        for t in picked
                    ),
                )
            ]
            url = f"https://{host}/{section.lower()}/?page={rng.randint(1, 30)}"
        elif style == "error":
            title = "Page not found"
            blocks = [
                Block("404 - Page Not Found"),
                Block("Sorry, the page you are looking for doesn't exist or has been moved."),
                Block("Go back to the homepage", "link", href=f"https://{host}/"),
            ]
            url = f"https://{host}/{slugify(other, 40)}-{rng.randint(1000, 99999)}"
        elif style == "paywall":
            title = other
            blocks = [
                Block("Subscribe to continue reading."),
                Block("Already a subscriber? Log in. Get unlimited digital access for $1 a week."),
            ]
            url = f"https://{host}/premium/{slugify(other, 50)}"
        elif style == "gallery":
            title = f"In pictures: {other}"
            blocks = [Block(f"Photo {i + 1} of 12", "junk") for i in range(3)]
            url = f"https://{host}/gallery/{rng.randint(1000, 99999)}"
        else:
            title = name
            blocks = [Block("Please enable JavaScript to view this page.")]
            url = f"https://{host}/app/{rng.randint(1000, 99999)}"
        url = self._unique_url(url, rng)
        common: dict[str, Any] = {
            "url": url,
            "story": url,
            "kind": "thin",
            "canonical": True,
            "site": host,
        }
        if rng.random() < 0.15:
            self._add(Record(text=body_text(blocks, rng), title=title, **common))
            return
        page = render_page(
            family,
            host,
            name,
            url,
            title,
            blocks,
            PageMeta(canonical=url),
            sidebar=self._sidebar(rng, ""),
            rng=rng,
        )
        self._add(Record(html=page, **common))

    # -- all together

    def build(self) -> list[Record]:
        """Originals, copies, hard negatives and thin pages, in generation order."""
        for article in self.stories:
            self.add_original(article)
        if self.seed_story:
            self.add_seed_repost(*self.seed_story)
        for article in self.stories:
            rng = self._story_rng(article, "plan")
            for kind in COPY_KINDS:
                mean = self.options.copies.get(kind, 0.0)
                if (kind == "excerpt" and article.words < 120) or (
                    kind in ("redatelined", "edited") and not article.latin
                ):
                    continue
                count = int(mean) + (rng.random() < mean - int(mean))
                for index in range(count):
                    self.add_copy(article, kind, index)
        for index in range(self.options.boilerplate_sites):
            self.add_boilerplate_site(index)
        for article in self.stories:
            rng = self._story_rng(article, "negatives")
            if rng.random() < self.options.same_event_rate:
                self.add_same_event(article)
            if rng.random() < self.options.quote_rate and len(article.paragraphs) >= 6:
                self.add_quote(article)
        for index in range(round(len(self.stories) * self.options.thin_rate)):
            self.add_thin(index)
        for site in range(self.options.section_front_sites):  # one site's overlapping fronts
            for index in range(3):
                self.add_thin(index, "section", site)
        return self.records


def build_corpus(options: CorpusOptions) -> list[Record]:
    """The whole corpus from the shared data directory."""
    seed = load_seed() if options.include_seed else None
    return CorpusBuilder(load_benchmark(), options, seed).build()


def write_corpus(records: Sequence[Record], directory: Path) -> dict[str, object]:
    """records.jsonl (ingest input), labels.jsonl and stats.json; returns the statistics."""
    from collections import Counter

    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "records.jsonl").open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.ingest_record(), ensure_ascii=False) + "\n")
    with (directory / "labels.jsonl").open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.label(), ensure_ascii=False) + "\n")
    stories = Counter(r.story for r in records)
    stats: dict[str, object] = {
        "records": len(records),
        "kinds": dict(Counter(r.kind for r in records)),
        "formats": dict(Counter("html" if r.html is not None else "text" for r in records)),
        "stories_with_copies": sum(1 for n in stories.values() if n > 1),
        "sites": len({r.site for r in records}),
        "true_pairs": sum(n * (n - 1) // 2 for n in stories.values()),
        "real_related_originals": sum(1 for r in records if r.kind == "original" and r.related),
    }
    (directory / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", "utf-8")
    return stats


def read_labels(directory: Path) -> dict[str, dict[str, object]]:
    """url -> label of a corpus directory."""
    labels = {}
    with (directory / "labels.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            label = json.loads(line)
            labels[label["url"]] = label
    return labels
