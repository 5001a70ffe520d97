"""Validation where an article enters the engine: every field a page supplied is checked or cleaned.

A page is written by a stranger: its URLs may name port 99999, its text may hold NUL bytes, lone
surrogates, bidi overrides or five megabytes. What cannot be used is dropped with a reason (a bad
rel=canonical goes, the article is still decided); an article whose own URL is unusable cannot be
identified at all and is refused with `InvalidArticle`.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from dedup.article import Article
from dedup.urls import url_id

MAX_URL_CHARS = 4096
"""Longer URLs are refused: no real article URL comes near, and every id and log line carries it."""
MAX_TEXT_CHARS = 1_000_000
"""Text beyond this is cut: a book-length page costs about a second to fingerprint here."""
MAX_TITLE_CHARS = 1000
MAX_NAME_CHARS = 255
"""For the site and source names."""
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = 2 * 86400
"""A publication date this far ahead of now is a wrong clock or a lie, not evidence."""

# Invisible characters that carry no text: C0/C1 controls (tab and newline stay), DEL, zero-width
# spaces and joiners that only break words apart, direction marks and overrides (they reorder
# what an operator sees), interlinear annotation marks, noncharacters, and lone surrogates (what
# a broken or mixed encoding decodes to). ZWJ/ZWNJ stay: emoji and several scripts need them.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ufff9-\ufffb\ufffe\uffff\ud800-\udfff]"
)
_LINE_BREAKS = re.compile("\r\n?|[\u2028\u2029\x85]")
_URL_IGNORED = re.compile("[\t\n\r]")
_URL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


# The articles validate() returned that are still alive, by id: validation is idempotent, so one of them
# passed in again (the decider validates an inbox entry, then Engine.prepare_many does) is returned as
# it is instead of being checked a second time. Keyed by id() with an identity check, never by value.
_VALIDATED: weakref.WeakValueDictionary[int, Article] = weakref.WeakValueDictionary()


class InvalidArticle(ValueError):
    """The article cannot be decided at all (its own URL is unusable); the message says why."""


@dataclass(frozen=True)
class Validated:
    """An article with every field usable, and what was dropped or cut on the way (one reason each,
    including what an earlier validation, e.g. at extraction, dropped)."""

    article: Article
    dropped: tuple[str, ...] = ()


def validate(article: Article) -> Validated:
    """The article with bad fields dropped and text cleaned; raises InvalidArticle for a bad own URL."""
    if _VALIDATED.get(id(article)) is article:
        return Validated(article, article.dropped)
    notes: list[str] = []
    try:
        url = check_url(article.url, local=True)
    except ValueError as exc:
        raise InvalidArticle(f"url: {exc} ({shown(article.url)})") from None
    changes: dict[str, object] = {}
    if url != article.url:
        changes["url"] = url
    for name in ("final_url", "canonical_link", "source_link"):
        value = getattr(article, name)
        if value is None:
            continue
        try:
            checked: str | None = check_url(value)
        except ValueError as exc:
            checked = None
            notes.append(f"{name} dropped: {exc} ({shown(value)})")
        if checked != value:
            changes[name] = checked
    text = article.text
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
        notes.append("text: bytes decoded as UTF-8")
    elif not isinstance(text, str):
        raise InvalidArticle(f"text: not text ({type(text).__name__})")
    cleaned = clean_text(text)
    if len(cleaned) > MAX_TEXT_CHARS:
        notes.append(f"text cut from {len(cleaned)} to {MAX_TEXT_CHARS} characters")
        cleaned = cleaned[:MAX_TEXT_CHARS]
    if cleaned != text:
        changes["text"] = cleaned
    for name, limit in (("title", MAX_TITLE_CHARS), ("source", MAX_NAME_CHARS)):
        value = getattr(article, name)
        line = clean_line(value, limit) if isinstance(value, str) else ""
        if value is not None and not isinstance(value, str):
            notes.append(f"{name} dropped: not text ({type(value).__name__})")
        if line != value:
            changes[name] = line
    if article.site is not None:
        site = clean_line(article.site, MAX_NAME_CHARS) if isinstance(article.site, str) else ""
        if site != article.site:
            changes["site"] = site or None
    for name in ("published", "fetched_at"):
        value = getattr(article, name)
        if value is None:
            continue
        try:
            checked_date: datetime | None = check_date(value, future=name == "published")
        except ValueError as exc:
            checked_date = None
            notes.append(f"{name} dropped: {exc} ({shown(value)})")
        if checked_date != value:
            changes[name] = checked_date
    if notes:
        changes["dropped"] = (*article.dropped, *notes)
    valid = replace(article, **changes) if changes else article  # type: ignore[arg-type]
    _VALIDATED[id(valid)] = valid
    return Validated(valid, (*article.dropped, *notes))


def check_url(value: object, *, local: bool = False) -> str:
    """The URL, stripped, if it is an absolute http(s) URL the engine can identify; else ValueError.

    local=True also accepts a file: URL (`check FILE` names a page on disk by one).
    """
    if not isinstance(value, str):
        raise ValueError(f"not text ({type(value).__name__})")  # noqa: TRY004 - a page's bad value, like the rest
    url = value.strip()
    if not url:
        raise ValueError("empty")
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"longer than {MAX_URL_CHARS} characters")
    url = _URL_IGNORED.sub("", url)  # as browsers do: a tab or line break wrapped into an href
    if _URL_FORBIDDEN.search(url):
        raise ValueError("holds control or invisible characters")
    parts = urlsplit(url)  # ValueError: "http://[broken"
    if " " in parts.netloc:
        raise ValueError("a space in the host")
    if " " in url:
        url = url.replace(" ", "%20")  # "/a b.html" is a page that exists; "%20" is how it is fetched
        parts = urlsplit(url)
    if local and parts.scheme.lower() == "file":
        url_id(url)
        return url
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    host = parts.hostname or ""
    if not host:
        raise ValueError("no host")
    parts.port  # noqa: B018 - raises ValueError for port 99999 or "abc"
    if not host.startswith("[") and ":" not in host:
        try:
            host.encode("idna")
        except UnicodeError as exc:
            raise ValueError(f"bad host name: {exc}") from None
    # The identity the engine will compute: a URL it cannot canonicalise is no use (dedup.urls
    # raises ValueError, or its BadURL subclass, on input it refuses).
    url_id(url)
    return url


def check_date(value: object, *, future: bool = True) -> datetime:
    """An aware UTC datetime within 1990 .. now + two days (any date, future=False); else ValueError."""
    if not isinstance(value, datetime):
        raise ValueError(f"not a date ({type(value).__name__})")  # noqa: TRY004 - a page's bad value, like the rest
    try:
        aware = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        stamp = aware.timestamp()
    except (OverflowError, ValueError, OSError) as exc:
        raise ValueError(f"unusable date: {exc}") from None
    if aware < EARLIEST_DATE:
        raise ValueError("before 1990")
    if future and stamp > datetime.now(UTC).timestamp() + FUTURE_SLACK:
        raise ValueError("in the future")
    return aware


def clean_text(text: str) -> str:
    """Text with line breaks unified and invisible characters, controls and lone surrogates removed."""
    # Fast path, about five times quicker than the expressions: printable lines hold none of these
    # (only a text with, say, a no-break space or a joiner is scanned by them).
    if all(line.isprintable() for line in text.split("\n")):
        return text
    return _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", text))


def clean_line(value: str, limit: int) -> str:
    """One line of clean text (a title, a name), whitespace collapsed, at most `limit` characters."""
    # rstrip: a cut just after a space leaves one, which a second validation would take off (idempotence).
    return " ".join(clean_text(value).split())[:limit].rstrip()


def shown(value: object, limit: int = 200) -> str:
    """A value as it may appear in a log line or an error: escaped, never forging a new line."""
    text = value if isinstance(value, str) else repr(value)
    text = text[:limit] + ("..." if len(text) > limit else "")
    return text.encode("ascii", "backslashreplace").decode("ascii") if not text.isprintable() else text
