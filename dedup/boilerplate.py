"""Per-site boilerplate, learned from what each site publishes and discounted before fingerprinting.

A site that puts the same appeal, newsletter pitch or disclaimer paragraph into every article body
makes any two of its short items look alike. No list of phrases can know every site's wording, so
the lines are counted: every line of MIN_LINE_WORDS words or more is hashed, and a per-site Redis
hash counts on how many of the site's pages each line appeared. A line seen on at least MIN_PAGES
pages and on at least MIN_SHARE of the site's pages is boilerplate, and the article is compared
(and judged thin or not) without it.

Memory is bounded per site: when a site's hash holds more than `capacity` lines, every count
(and the page count) is halved and lines that fall to zero are dropped, so one-off lines leave
and recurring ones stay, their share of the site's pages kept. The hash expires with retention
when the site publishes nothing more.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from dedup.cluster import run_script
from dedup.keys import Keys
from dedup.normalize import fold
from dedup.recent import RecentTexts

MIN_LINE_WORDS = 6
"""Shorter lines are not counted: they carry few shingles, and datelines and headings vary."""
MIN_LINE_CHARS = 60
"""A line this long counts whatever its spaces (Chinese, Japanese, Thai are written without)."""
MIN_PAGES = 4
MIN_SHARE = 0.1
CAPACITY = 256
"""Lines counted per site before the counts are halved (a Redis hash this size stays small)."""
PAGES_FIELD = b"#pages"
"""The field holding the site's page count (line hashes are 8 bytes, so never this)."""

# Halve every count of one site's hash; lines that reach zero go. Runs on one key (cluster-safe).
_HALVE = """
local fields = redis.call('HGETALL', KEYS[1])
local dropped = 0
for i = 1, #fields, 2 do
  local n = math.floor(tonumber(fields[i + 1]) / 2)
  if n == 0 then
    redis.call('HDEL', KEYS[1], fields[i])
    dropped = dropped + 1
  else
    redis.call('HSET', KEYS[1], fields[i], n)
  end
end
return dropped
"""
# Count one page on its site's hash and keep the hash for the retention (ARGV[1], seconds): the page
# count (ARGV[2] is PAGES_FIELD), then each of its lines. Returns the hash's size, then the new counts in
# that order. One command per page instead of one per line, plus EXPIRE and HLEN (one key: cluster-safe).
_COUNT = """
local counts = {0}
for i = 2, #ARGV do
  counts[i] = redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
counts[1] = redis.call('HLEN', KEYS[1])
return counts
"""


_WORD = re.compile(r"[^\W_]+")
# For an ASCII line, the same words by translation: every ASCII character but a letter or digit
# (what [\W_] matches among them) becomes a space. About twice as quick as the expression.
_ASCII_NON_WORD = str.maketrans({code: " " for code in range(128) if not chr(code).isalnum()})


def line_hash(line: str) -> bytes:
    """The 8-byte hash of a line's words (case, punctuation and spacing ignored)."""
    folded = fold(line).casefold()
    words = folded.translate(_ASCII_NON_WORD).split() if folded.isascii() else _WORD.findall(folded)
    return hashlib.blake2b(" ".join(words).encode("utf-8", "replace"), digest_size=8).digest()


def _countable(line: str) -> bool:
    # Scripts written without spaces have no words to count: their long lines count instead.
    return line.count(" ") + 1 >= MIN_LINE_WORDS or len(line) >= MIN_LINE_CHARS


def countable_lines(clean_text: str) -> list[bytes]:
    """The distinct hashes of a clean text's lines long enough to count, in text order."""
    seen: dict[bytes, None] = {}
    for line in clean_text.split("\n"):
        if _countable(line):
            seen.setdefault(line_hash(line), None)
    return list(seen)


@dataclass(frozen=True)
class Discounted:
    """A clean text with its site's boilerplate lines taken out."""

    text: str
    lines: int
    """How many lines were taken out."""
    words: int
    """How many words they held."""


def discount(clean_text: str, boilerplate: frozenset[bytes]) -> Discounted:
    """The text without the lines whose hashes are the site's boilerplate."""
    if not boilerplate:
        return Discounted(clean_text, 0, 0)
    kept, lines, words = [], 0, 0
    for line in clean_text.split("\n"):
        if _countable(line) and line_hash(line) in boilerplate:
            lines += 1
            words += line.count(" ") + 1
        else:
            kept.append(line)
    return Discounted("\n".join(kept), lines, words)


def is_boilerplate(count: int, pages: int, min_pages: int = MIN_PAGES, min_share: float = MIN_SHARE) -> bool:
    """A line seen on `count` of a site's `pages` pages is boilerplate when both are high enough."""
    return count >= min_pages and count >= min_share * pages


class BoilerplateLearner:
    """Counts each site's lines in Redis and tells which lines of a page are its site's boilerplate."""

    def __init__(self, client: redis.Redis, keys: Keys, retention: float, capacity: int = CAPACITY,
                 min_pages: int = MIN_PAGES, min_share: float = MIN_SHARE) -> None:
        self.client = client
        self.keys = keys
        self.ttl = max(1, int(retention))
        self.capacity = capacity
        self.min_pages = min_pages
        self.min_share = min_share
        self._halve = client.register_script(_HALVE)
        self._count = client.register_script(_COUNT)
        self._lines: RecentTexts[list[bytes]] = RecentTexts()
        """countable_lines of the texts met last (an exact copy's lines are hashed once)."""

    def observe(self, pages: Sequence[tuple[str, str]]) -> list[frozenset[bytes]]:
        """Count each (site, clean text) page's lines, in order, in one round trip; return per
        page the hashes of its lines that are, with it counted, its site's boilerplate."""
        texts = [clean_text for _, clean_text in pages]
        hashes = self._lines.many(texts, [len(text) for text in texts],
                                  lambda indices: [countable_lines(texts[i]) for i in indices])
        plan = [(site, lines) for (site, _), lines in zip(pages, hashes, strict=True)]
        calls = [([self.keys.boilerplate(site)], [self.ttl, PAGES_FIELD, *lines]) for site, lines in plan if lines]
        if len(calls) == 1:  # one page (an extraction worker's): no pipeline, whose scripts cost a SCRIPT EXISTS
            results = iter([self._count(keys=calls[0][0], args=calls[0][1])])
        else:
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                run_script(self._count, keys, args, pipe)
            results = iter(pipe.execute() if calls else [])
        found: list[frozenset[bytes]] = []
        sizes: dict[str, int] = {}
        for site, lines in plan:
            if not lines:
                found.append(frozenset())
                continue
            size, site_pages, *counts = next(results)
            sizes[site] = int(size)  # the last page's: the site's hash after the whole batch
            found.append(frozenset(
                line for line, count in zip(lines, counts, strict=True)
                if is_boilerplate(int(count), int(site_pages), self.min_pages, self.min_share)
            ))
        for site, size in sizes.items():
            if size > self.capacity:
                self._halve(keys=[self.keys.boilerplate(site)])
        return found

    def known(self, site: str, clean_text: str) -> frozenset[bytes]:
        """The hashes of a text's lines that are its site's boilerplate now (read only)."""
        lines = countable_lines(clean_text)
        if not lines:
            return frozenset()
        values = self.client.hmget(self.keys.boilerplate(site), [PAGES_FIELD, *lines])
        pages = int(values[0] or 0)
        return frozenset(
            line for line, count in zip(lines, values[1:], strict=True)
            if count is not None and is_boilerplate(int(count), pages, self.min_pages, self.min_share)
        )
