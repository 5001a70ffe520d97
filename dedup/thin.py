"""Which thin pages are still articles: a dated article page whose body is a list.

A page with too little running text is thin: recorded, never compared. Most thin pages are
section fronts, tag pages, error and paywall pages, which consumers must not get. But an article
whose body is a list ("Grammys: the winners list": a headline, a date and a list of names) has
little running text too, and consumers want it. Such a page is not thin: it is fingerprinted and
decided like any article, so it becomes a canonical of its own (or joins a copy of itself).

A list article here: a publication date, a headline, an article-like URL (a slug of several
words, a long number or a date in the path; no tag, topic, section, author, search or paging
path), and a body of at least MIN_ITEMS mostly distinct lines, most of them short like list items
rather than headlines, holding at least MIN_WORDS words. Error and paywall pages fail the line
count; section fronts fail the URL and the length of their lines (headlines).
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

MIN_ITEMS = 5
MIN_WORDS = 30
MAX_ITEM_WORDS = 9
"""The median line of a list of names or results is this short; a front's headlines are longer."""
# Path segments that open listings rather than articles.
_LISTING_SEGMENTS = frozenset(
    "tag tags topic topics category categories section sections author authors search page archive "
    "archives index feed rss latest".split()
)
_PAGING_PARAMS = frozenset("page p pg offset start".split())
_DATE_PATH = re.compile(r"/(?:19|20)\d\d/\d{1,2}/")
_LONG_NUMBER = re.compile(r"\d{5,}")


def article_like_url(url: str) -> bool:
    """True for a URL shaped like one article's page rather than a listing of many."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    segments = [s for s in parts.path.lower().split("/") if s]
    if not segments or any(s in _LISTING_SEGMENTS for s in segments):
        return False
    if any(key.lower() in _PAGING_PARAMS for key, _ in parse_qsl(parts.query)):
        return False
    last = re.sub(r"\.\w{2,5}$", "", segments[-1])
    words = [w for w in re.split(r"[-_]+", last) if w]
    return len(words) >= 3 or bool(_LONG_NUMBER.search(parts.path)) or bool(_DATE_PATH.search(parts.path))


def is_list_article(url: str, title: str, clean_text: str, published: datetime | None) -> bool:
    """True when a thin page is a dated article whose body is a list (see the module docstring)."""
    if published is None or len(title.split()) < 2 or not article_like_url(url):
        return False
    lines = [line for line in clean_text.split("\n") if line.strip()]
    if len(lines) < MIN_ITEMS or len(set(lines)) < 0.8 * len(lines):
        return False
    lengths = [line.count(" ") + 1 for line in lines]
    if sum(lengths) < MIN_WORDS:
        return False
    return statistics.median(lengths) <= MAX_ITEM_WORDS
