"""Reading feeds and sitemaps safely: RSS 0.9x/1.0/2.0, Atom, sitemaps, sitemap indexes, Google News."""

from __future__ import annotations

import gzip
import io
import logging
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from lxml import etree

log = logging.getLogger(__name__)

MAX_ENTRIES = 50_000
"""A sitemap holds at most 50,000 URLs (sitemaps.org); more is a broken or hostile document."""
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
"""Largest feed or sitemap read, after gunzip (the sitemaps.org limit)."""

# Any entity declaration is refused outright (billion laughs, external entities), as defusedxml does.
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ISO_DATE = re.compile(
    r"^(\d{4})-(\d{2})(?:-(\d{2}))?(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


class FeedError(ValueError):
    """A feed or sitemap that cannot be read (the message says why)."""


@dataclass(frozen=True)
class Entry:
    """One article a feed or sitemap lists."""

    url: str
    title: str = ""
    published: datetime | None = None


@dataclass(frozen=True)
class Listing:
    """What one feed or sitemap document holds."""

    kind: str
    """"rss", "rdf", "atom", "urlset" or "sitemapindex"."""
    entries: list[Entry] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    """Child sitemaps of a sitemap index."""


def _parser(recover: bool = False) -> etree.XMLParser:
    # Entities stay unexpanded, nothing is fetched, and libxml2's size limits stay on.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
        dtd_validation=False, recover=recover, remove_comments=True, remove_pis=True,
    )


def gunzip_limited(body: bytes, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """Decompress a gzipped sitemap, refusing more than `limit` bytes (gzip bombs)."""
    with gzip.GzipFile(fileobj=io.BytesIO(body)) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FeedError(f"gzipped document larger than {limit} bytes when decompressed")
    return data


def parse_listing(body: bytes, base_url: str, *, max_entries: int = MAX_ENTRIES) -> Listing:
    """Parse a feed or sitemap document; entry URLs are made absolute against base_url."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gunzip_limited(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise FeedError(f"bad gzip data: {exc}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise FeedError(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
    if _ENTITY_DECLARATION.search(body[:65536]) or (b"<!DOCTYPE" in body[:65536].upper() and b"[" in _doctype(body)):
        raise FeedError("document declares entities (refused: entity expansion attacks)")
    stripped = body.lstrip()
    if not stripped:
        raise FeedError("empty document")
    try:
        root = etree.fromstring(stripped, parser=_parser(), base_url=base_url)
    except etree.XMLSyntaxError as exc:
        # A malformed document is refused: what recovery would guess from it (half a URL) is worse.
        raise FeedError(f"malformed XML: {exc}") from None
    if root is None:
        raise FeedError("not XML: no root element")
    kind = _local(root.tag)
    if kind == "rss":
        return Listing("rss", _rss_items(root, base_url, max_entries))
    if kind == "RDF":
        return Listing("rdf", _rss_items(root, base_url, max_entries))
    if kind == "feed":
        return Listing("atom", _atom_entries(root, base_url, max_entries))
    if kind == "urlset":
        return Listing("urlset", _sitemap_urls(root, base_url, max_entries))
    if kind == "sitemapindex":
        return Listing("sitemapindex", sitemaps=_sitemap_children(root, base_url, max_entries))
    raise FeedError(f"not a feed or sitemap: root element <{kind}>")


def _doctype(body: bytes) -> bytes:
    start = body[:65536].upper().find(b"<!DOCTYPE")
    end = body.find(b">", start)
    return body[start:end] if start >= 0 else b""


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag.split(":")[-1]


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element if _local(child.tag) == name]


def _child_text(element: etree._Element, *names: str) -> str:
    for name in names:
        for child in element:
            if _local(child.tag) == name:
                text = "".join(child.itertext()).strip()
                if text:
                    return text
    return ""


def _descendants(root: etree._Element, name: str) -> list[etree._Element]:
    return [element for element in root.iter() if _local(element.tag) == name]


def _absolute(url: str, base_url: str) -> str | None:
    url = url.strip()
    if not url:
        return None
    absolute = urljoin(base_url, url)
    return absolute if absolute.startswith(("http://", "https://")) else None


def _rss_items(root: etree._Element, base_url: str, limit: int) -> list[Entry]:
    entries: list[Entry] = []
    for item in _descendants(root, "item")[:limit]:
        link = _child_text(item, "link")
        if not link:
            guid = next(iter(_children(item, "guid")), None)
            if guid is not None and guid.get("isPermaLink", "true").lower() != "false":
                link = (guid.text or "").strip()
        if not link:
            link = item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about", "")
        url = _absolute(link, base_url)
        if url:
            published = parse_date(_child_text(item, "pubDate", "date", "published", "updated"))
            entries.append(Entry(url, _child_text(item, "title"), published))
    return entries


def _atom_entries(root: etree._Element, base_url: str, limit: int) -> list[Entry]:
    entries: list[Entry] = []
    for item in _children(root, "entry")[:limit]:
        href = ""
        for link in _children(item, "link"):
            rel = link.get("rel", "alternate")
            if rel == "alternate" and (not href or link.get("type", "text/html") in ("text/html", "application/xhtml+xml")):
                href = link.get("href", "")
        base = item.get("{http://www.w3.org/XML/1998/namespace}base") or base_url
        url = _absolute(href, urljoin(base_url, base))
        if url:
            published = parse_date(_child_text(item, "published", "updated", "issued", "modified"))
            entries.append(Entry(url, _child_text(item, "title"), published))
    return entries


def _sitemap_urls(root: etree._Element, base_url: str, limit: int) -> list[Entry]:
    entries: list[Entry] = []
    for item in _children(root, "url")[:limit]:
        url = _absolute(_child_text(item, "loc"), base_url)
        if not url:
            continue
        title, published = "", None
        for news in _children(item, "news"):
            title = _child_text(news, "title")
            published = parse_date(_child_text(news, "publication_date"))
        if published is None:
            published = parse_date(_child_text(item, "lastmod"))
        entries.append(Entry(url, title, published))
    return entries


def _sitemap_children(root: etree._Element, base_url: str, limit: int) -> list[str]:
    children = (_absolute(_child_text(item, "loc"), base_url) for item in _children(root, "sitemap")[:limit])
    return [url for url in children if url]


def parse_date(value: str) -> datetime | None:
    """An RFC 822 (RSS) or ISO 8601 (Atom, sitemaps) date, timezone-aware; None when unreadable."""
    value = value.strip()
    if not value:
        return None
    match = _ISO_DATE.match(value)
    if match:
        year, month, day, hour, minute, second, zone = match.groups()
        try:
            parsed = datetime(int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0),
                              int(second or 0), tzinfo=UTC)
            if zone and zone != "Z":
                parsed = datetime.fromisoformat(parsed.strftime("%Y-%m-%dT%H:%M:%S") + _zone(zone))
        except ValueError:
            return None
        return parsed
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _zone(zone: str) -> str:
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
