"""Reading feeds and sitemaps safely: RSS 0.9x/1.0/2.0, Atom 0.3/1.0, sitemaps (XML, text, Google News).

Documents are read as publishers really serve them: a well-formed document is parsed as it is; a
broken one gets one repair pass for the faults common in the wild (junk before the XML declaration,
Windows-1252 bytes, control characters, HTML entities, bare ampersands); one cut off mid-way keeps
the entries closed before the cut; anything else still broken is refused. Entity declarations that
refer to other entities or to anything outside the document are refused; plain ones are accepted and
never expanded. Nothing is fetched, and sizes are bounded.
"""

from __future__ import annotations

import codecs
import contextlib
import html
import logging
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from html.entities import html5 as _HTML5_ENTITIES
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from lxml import etree

log = logging.getLogger(__name__)

MAX_ENTRIES = 50_000
"""A sitemap holds at most 50,000 URLs (sitemaps.org); more is a broken or hostile document."""
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
"""Largest feed or sitemap read, after gunzip (the sitemaps.org limit)."""

_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# A declaration accepted: a general entity whose value is plain text and character references (no
# reference to another entity, which is how expansion bombs grow, and no SYSTEM or PUBLIC, which is how
# files and URLs are read).
_PLAIN_ENTITY = re.compile(
    rb"""<!ENTITY\s+[A-Za-z_][\w.-]{0,63}\s+"""
    rb"""(?:"(?:[^"&%<]|&#[0-9]{1,7};|&#x[0-9a-fA-F]{1,6};){0,4096}"|'(?:[^'&%<]|&#[0-9]{1,7};|&#x[0-9a-fA-F]{1,6};){0,4096}')"""
    rb"""\s*>""")
_MAX_ENTITIES = 256
_MAX_DOCTYPE_BYTES = 1024 * 1024
_DOCTYPE_TOKEN = re.compile(rb"""<!--.*?-->|"[^"]*"|'[^']*'|\]\s*>|[^"'<>\[\]]+|.""", re.DOTALL)
_UNEXPANDED = "{urn:newsdedup}unexpanded"
"""Marks an element whose text held a reference to a declared entity, left out: not a whole URL."""
_CONTAINERS = frozenset(("rss", "channel", "RDF", "feed", "urlset", "sitemapindex"))
"""Elements that hold the entries: still open when a document is cut off, yet kept."""
_LEADING_SPACE = re.compile(rb"(?:\s|\xef\xbb\xbf)+")
"""Blank lines and UTF-8 byte order marks before the document (both common, both fatal to libxml2)."""
_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_WIDE_ENCODINGS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
                   (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
                   (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
                   (b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"))
"""How a UTF-16 or UTF-32 document starts: a byte order mark, or "<" without one (XML 1.0 F.1)."""
# Labels read as the superset browsers use (WHATWG Encoding): "ISO-8859-1" feeds hold Windows-1252.
_SUPERSETS = {
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819",
                     "ibm819", "us-ascii", "ascii", "windows-1252", "cp1252", "x-cp1252"), "cp1252"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "gb_2312-80"), "gb18030"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987"), "cp949"),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis"), "cp932"),
}
_WINDOWS_1252_FALLBACK = "newsdedup-windows-1252"
_WINDOWS_1252 = [bytes([byte]).decode("cp1252", errors="ignore") or chr(byte) for byte in range(256)]
_INVALID_XML_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CDATA_OR_REFERENCE = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|&(?:#[0-9]{1,8};|#[xX][0-9a-fA-F]{1,6};|([A-Za-z][A-Za-z0-9]{0,31});)?",
    re.DOTALL)
_XML_ENTITIES = frozenset((b"amp", b"lt", b"gt", b"quot", b"apos"))
_URL_LINE = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_ALTERNATE = ("alternate", "", "http://www.iana.org/assignments/relation/alternate")
_TAG = re.compile(r"<[A-Za-z/!][^<>]*>")
_REFERENCE = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_RSS_DATES = ("pubdate", "date", "published", "issued", "created", "updated", "modified")
_ATOM_DATES = ("published", "issued", "updated", "modified", "created", "date")
_ISO_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?|[A-Za-z]{2,5})?", re.IGNORECASE)
_ZONE_OFFSET = re.compile(r"(?:GMT|UTC|UT)?([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
# Month names of the languages news feeds are most often written in, for RFC 822 dates.
_MONTHS = {name: english for english, names in {
    "jan": "janv janvier januar jänner jän januari enero ene gennaio gen janeiro",
    "feb": "févr fevr février fevrier februar februari febrero febbraio fevereiro fev",
    "mar": "mars märz maerz mär mrz maart mrt marzo março marco",
    "apr": "avr avril abril abr aprile",
    "may": "mai mei mayo maggio mag maio",
    "jun": "juin juni junio giugno giu junho",
    "jul": "juil juillet juli julio luglio lug julho",
    "aug": "août aout augustus agosto ago",
    "sep": "sept septembre september septiembre settembre set setembro",
    "oct": "octobre okt oktober octubre ottobre ott outubro out",
    "nov": "novembre november noviembre novembro",
    "dec": "déc décembre decembre dez dezember december diciembre dic dicembre dezembro",
}.items() for name in names.split()}
# Zone abbreviations with their offsets (the email parser knows only the US ones and reads others as
# UTC, hours off; ISO dates with one are read here too).
_ZONES = {
    "UT": "+0000", "EST": "-0500", "EDT": "-0400", "CST": "-0600", "CDT": "-0500", "MST": "-0700",
    "MDT": "-0600", "PST": "-0800", "PDT": "-0700", "AST": "-0400", "ADT": "-0300", "WAT": "+0100",
    "CAT": "+0200", "SAST": "+0200", "EAT": "+0300", "WET": "+0000", "BST": "+0100", "WEST": "+0100", "CET": "+0100", "MET": "+0100", "MEZ": "+0100",
    "CEST": "+0200", "MEST": "+0200", "MESZ": "+0200", "EET": "+0200", "EEST": "+0300", "MSK": "+0300",
    "IST": "+0530", "PKT": "+0500", "WIB": "+0700", "ICT": "+0700", "HKT": "+0800", "SGT": "+0800",
    "PHT": "+0800", "AWST": "+0800", "JST": "+0900", "KST": "+0900", "ACST": "+0930", "ACDT": "+1030",
    "AEST": "+1000", "AEDT": "+1100", "NZST": "+1200", "NZDT": "+1300", "HST": "-1000", "AKST": "-0900",
    "AKDT": "-0800", "NST": "-0330", "NDT": "-0230", "BRT": "-0300", "ART": "-0300",
}
# Zones named without saying whether summer time applies: the offset is the one in force on the date.
_REGIONAL_ZONES = {"ET": "America/New_York", "CT": "America/Chicago", "MT": "America/Denver",
                   "PT": "America/Los_Angeles", "AKT": "America/Anchorage", "HT": "Pacific/Honolulu"}
_CLOCK = re.compile(r"(\d{1,2})(:\d{2}(?::\d{2})?)")


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
    """"rss", "rdf", "atom", "urlset", "sitemapindex" or "text" (a sitemap of one URL a line)."""
    entries: list[Entry] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    """Child sitemaps of a sitemap index."""
    truncated: bool = False
    """The document was cut off: these are the entries closed before the cut."""
    skipped: int = 0
    """Entries left out for want of a usable URL (a text sitemap's lines that are not URLs among them)."""


def _windows_1252_fallback(error: UnicodeError) -> tuple[str, int]:
    # Bytes that are not UTF-8 in a UTF-8 feed are nearly always Windows-1252 pasted in from a CMS.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(_WINDOWS_1252[byte] for byte in error.object[error.start:error.end]), error.end


codecs.register_error(_WINDOWS_1252_FALLBACK, _windows_1252_fallback)


# Entities stay unexpanded, nothing is fetched, and libxml2's size limits stay on. The body is always
# UTF-8 by the time it is parsed (see _to_utf8), whatever its declaration says.
_PARSER_OPTIONS: dict[str, object] = {
    "resolve_entities": False, "no_network": True, "huge_tree": False, "load_dtd": False,
    "dtd_validation": False, "recover": False, "remove_comments": True, "remove_pis": True, "encoding": "utf-8",
}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(**_PARSER_OPTIONS)


def gunzip_limited(body: bytes, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """Decompress a gzipped sitemap, refusing more than `limit` bytes (gzip bombs). A stream cut off
    gives what it held before the cut (the parser then keeps the entries closed in it)."""
    output = bytearray()
    rest = body
    while rest[:2] == b"\x1f\x8b":  # one gzip member after another, as gzip -c a b > c makes
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        output += inflater.decompress(rest, limit + 1 - len(output))
        if len(output) > limit:
            raise FeedError(f"gzipped document larger than {limit} bytes when decompressed")
        if not inflater.eof:
            break
        rest = inflater.unused_data
    return bytes(output)


def parse_listing(body: bytes, base_url: str, *, max_entries: int = MAX_ENTRIES) -> Listing:
    """Parse a feed or sitemap document; entry URLs are made absolute against base_url."""
    if body[:2] == b"\x1f\x8b":
        # .xml.gz files are served without Content-Encoding, so they arrive still compressed.
        try:
            body = gunzip_limited(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise FeedError(f"bad gzip data: {exc}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise FeedError(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
    body = _to_utf8(body)
    if not body:
        raise FeedError("empty document")
    declares_entities = _check_entity_declarations(body)
    if not body.startswith(b"<"):
        declaration = body.find(b"<?xml", 0, 4096)
        if declaration < 0:
            entries, skipped = _text_sitemap(body, base_url, max_entries)
            return Listing("text", entries, skipped=skipped)
        body = body[declaration:]  # a PHP warning or other junk printed before the document
    root, truncated = _parse(body, base_url)
    if declares_entities:
        _leave_out_entity_references(root)
    kind = _local(root.tag)
    sitemaps: list[str] = []
    if kind in ("rss", "RDF"):
        entries, skipped = _rss_items(root, base_url, max_entries)
    elif kind == "feed":
        entries, skipped = _atom_entries(root, base_url, max_entries)
    elif kind == "urlset":
        entries, skipped = _sitemap_urls(root, base_url, max_entries)
    elif kind == "sitemapindex":
        entries, (sitemaps, skipped) = [], _sitemap_children(root, base_url, max_entries)
    else:
        raise FeedError(f"not a feed or sitemap: root element <{kind}>")
    if truncated and not entries and not sitemaps:
        raise FeedError("malformed XML: cut off before its first complete entry")
    names = {"RDF": "rdf", "feed": "atom"}
    return Listing(names.get(kind, kind), entries, sitemaps, truncated=truncated, skipped=skipped)


def _check_entity_declarations(body: bytes) -> bool:
    """Whether the DOCTYPE declares entities; FeedError unless every one is plain text."""
    start = body[:65536].upper().find(b"<!DOCTYPE")
    if start < 0:
        return False
    doctype = _doctype(body, start)
    declared = len(_ENTITY_DECLARATION.findall(doctype))
    if declared and (declared > _MAX_ENTITIES or len(_PLAIN_ENTITY.findall(doctype)) != declared):
        raise FeedError("document declares entities that refer to other entities, files or URLs "
                        "(refused: entity expansion and external entity attacks)")
    return declared > 0


def _doctype(body: bytes, start: int) -> bytes:
    """The DOCTYPE declaration at `start`, its internal subset included (quotes and comments skipped)."""
    end = start + len(b"<!DOCTYPE")
    in_subset = False
    for token in _DOCTYPE_TOKEN.finditer(body, end, start + _MAX_DOCTYPE_BYTES):
        text = token.group()
        if text == b"[":
            in_subset = True
        elif text == b">" and not in_subset or text.startswith(b"]") and text.endswith(b">"):
            return body[start:token.end()]
    raise FeedError(f"DOCTYPE unfinished or longer than {_MAX_DOCTYPE_BYTES} bytes")


def _leave_out_entity_references(root: etree._Element) -> None:
    """Drop references to declared entities from the text, marking the elements that held one."""
    for reference in list(root.iter(etree.Entity)):
        parent = reference.getparent()
        if parent is None:
            continue
        parent.set(_UNEXPANDED, "")
        tail = reference.tail or ""
        previous = reference.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
        parent.remove(reference)


def _to_utf8(body: bytes) -> bytes:
    """The document in UTF-8 without leading whitespace or byte order mark."""
    for start, encoding in _WIDE_ENCODINGS:
        if body.startswith(start):
            return body.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n").encode("utf-8")
    leading = _LEADING_SPACE.match(body)
    if leading:
        body = body[leading.end():]
    declared = _DECLARED_ENCODING.match(body[:256])
    label = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    if label in ("utf-8", "utf8") or label.startswith(("utf-16", "utf-32")):
        # libxml2 checks the UTF-8; a feed that breaks it gets the Windows-1252 reading in _repair.
        return body
    try:
        body.decode("utf-8")
        return body  # valid UTF-8 declared as something else: a common mistake, hardly ever chance
    except UnicodeDecodeError:
        pass
    try:
        return body.decode(_SUPERSETS.get(label, label), errors=_WINDOWS_1252_FALLBACK).encode("utf-8")
    except (LookupError, ValueError):  # a label Python does not know, or a codec for another use (idna)
        return body.decode("utf-8", errors=_WINDOWS_1252_FALLBACK).encode("utf-8")


def _parse(body: bytes, base_url: str) -> tuple[etree._Element, bool]:
    """The document's root element, and whether it was cut off; a broken document gets one repair
    pass, then what a cut-off one closed before the cut, before it is refused."""
    try:
        return _root(body, base_url), False
    except etree.XMLSyntaxError as exc:
        repaired = _repair(body)
        if repaired != body:
            with contextlib.suppress(etree.XMLSyntaxError):
                root = _root(repaired, base_url)
                log.debug("url=%s: read after repair (%s)", base_url, exc)
                return root, False
        root = _closed_part(repaired, base_url)
        if root is not None:
            log.debug("url=%s: cut off (%s); kept what was closed", base_url, exc)
            return root, True
        # What recovery mode would guess from a broken document (half a URL) is worse than nothing.
        raise FeedError(f"malformed XML: {exc}") from None


def _closed_part(body: bytes, base_url: str) -> etree._Element | None:
    """A document cut off mid-way with its unclosed entries removed; None if it is broken before its
    end (libxml2 reads all of it without complaint, and only finds it unfinished when told it ends)."""
    parser = etree.XMLPullParser(events=("start", "end"), base_url=base_url, **_PARSER_OPTIONS)
    try:
        parser.feed(body)
    except etree.XMLSyntaxError:
        return None
    open_elements: list[etree._Element] = []
    root = None
    events = list(parser.read_events())
    with contextlib.suppress(etree.XMLSyntaxError):
        parser.close()
    for event, element in [*events, *parser.read_events()]:
        if event == "start":
            root = element if root is None else root
            open_elements.append(element)
        else:
            open_elements.pop()
    if root is None:
        return None
    for element in open_elements:  # outermost first: removing an entry removes what it held
        parent = element.getparent()
        if parent is not None and _local(element.tag) not in _CONTAINERS and _local(parent.tag) in _CONTAINERS:
            parent.remove(element)
    return root


def _root(body: bytes, base_url: str) -> etree._Element:
    root = etree.fromstring(body, parser=_parser(), base_url=base_url)
    if root is None:
        raise FeedError("not XML: no root element")
    return root


def _repair(body: bytes) -> bytes:
    """Undo what publishers' software commonly gets wrong; CDATA sections are left as they are."""
    declaration = body.find(b"<?xml", 1, 4096)
    if declaration > 0:
        body = body[declaration:]
    body = body.decode("utf-8", errors=_WINDOWS_1252_FALLBACK).encode("utf-8")
    return _CDATA_OR_REFERENCE.sub(_repair_reference, _INVALID_XML_BYTES.sub(b"", body))


def _repair_reference(match: re.Match[bytes]) -> bytes:
    text = match.group()
    if text.startswith(b"<"):  # a CDATA section: nothing in it is markup
        return text
    if text.startswith(b"&#"):
        code = int(text[3:-1], 16) if text[2:3] in (b"x", b"X") else int(text[2:-1])
        return text if _is_xml_char(code) else b""
    name = match.group(1)
    if name is None:  # a bare ampersand, as in unescaped URLs
        return b"&amp;"
    if name in _XML_ENTITIES:
        return text
    replacement = _HTML5_ENTITIES.get(name.decode("ascii") + ";")
    if replacement is None:
        return b"&amp;" + text[1:]
    return "".join(f"&#{ord(character)};" for character in replacement).encode("ascii")


def _is_xml_char(code: int) -> bool:
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def _text_sitemap(body: bytes, base_url: str, limit: int) -> tuple[list[Entry], int]:
    """A sitemap of one absolute URL a line, which Google accepts; a line that is not a URL is left out,
    but a text mostly of other lines is no sitemap."""
    lines = [line.strip() for line in body.decode("utf-8", errors=_WINDOWS_1252_FALLBACK).splitlines()]
    lines = [line for line in lines if line]
    absolute = [_absolute(line, base_url) if _URL_LINE.fullmatch(line) else None for line in lines]
    urls = [url for url in absolute if url]
    if not urls or len(urls) < len(lines) - len(urls):
        raise FeedError("not a feed or sitemap: neither XML nor a list of URLs")
    return [Entry(url) for url in urls[:limit]], len(lines) - len(urls)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag.split(":")[-1]


def _namespace(tag: object) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    """Children named `name`, those in the element's own namespace first (title before media:title)."""
    own = _namespace(element.tag)
    matches = [child for child in element if _local(child.tag) == name]
    return sorted(matches, key=lambda child: _namespace(child.tag) != own)


def _text(element: etree._Element) -> str:
    return "".join(element.itertext()).strip()


def _child_text(element: etree._Element, *names: str) -> str:
    for name in names:
        for child in _children(element, name):
            text = _text(child)
            if text:
                return text
    return ""


def _descendants(root: etree._Element, name: str) -> list[etree._Element]:
    return [element for element in root.iter() if _local(element.tag) == name]


def _base(element: etree._Element, base_url: str) -> str:
    """The URL links in `element` are relative to: the document's, through any xml:base on the way."""
    for node in reversed([element, *element.iterancestors()]):
        xml_base = node.get(_XML_BASE)
        if xml_base and xml_base.strip():
            try:
                base_url = urljoin(base_url, xml_base.strip())
            except ValueError:
                pass
    return base_url


def _absolute(url: str, base_url: str) -> str | None:
    """`url` made absolute, or None unless it is a well-formed http(s) URL."""
    url = url.strip()
    if not url:
        return None
    try:
        absolute = urljoin(base_url, url)
        parts = urlsplit(absolute)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.port == 0:
            return None
    except ValueError:  # an unbalanced IPv6 bracket, a port that is not a number
        return None
    return absolute


def _first_url(candidates: list[tuple[str, etree._Element]], base_url: str) -> str | None:
    for link, element in candidates:
        if element.get(_UNEXPANDED) is not None:
            continue  # a reference to an entity was left out of it: not the whole URL
        url = _absolute(link, _base(element, base_url))
        if url:
            return url
    return None


def _title(element: etree._Element) -> str:
    """An entry's title as plain text: markup, (doubly) escaped references and extra spaces undone."""
    title = _child_text(element, "title")
    if "<" in title:
        title = _TAG.sub("", title)
    if "&" in title:
        title = _REFERENCE.sub(lambda match: html.unescape(match.group()), title)
    return " ".join(title.split())


def _date(element: etree._Element, names: tuple[str, ...]) -> datetime | None:
    """The first readable date among the children named `names` (in any case: <pubdate> is common)."""
    for name in names:
        for child in element:
            if _local(child.tag).lower() == name:
                published = parse_date(_text(child))
                if published:
                    return published
    return None


def _rss_items(root: etree._Element, base_url: str, limit: int) -> tuple[list[Entry], int]:
    entries: list[Entry] = []
    items = _descendants(root, "item")[:limit]
    for item in items:
        # Feedburner's origLink is the publisher's URL; its <link> is a redirect through feedproxy.
        candidates = [(_text(child), child) for child in _children(item, "origLink")]
        for link in _children(item, "link"):
            text = _text(link)
            if text:
                candidates.append((text, link))
            elif link.get("rel", "alternate").strip().lower() in _ALTERNATE:  # an atom:link
                candidates.append((link.get("href", ""), link))
        for guid in _children(item, "guid"):
            permalink = guid.get("isPermaLink", "").strip().lower()
            text = _text(guid)
            # A guid is a permalink unless it says otherwise, but "48213" is an id, not a relative URL.
            looks_like_url = text.lower().startswith(("http://", "https://", "/"))
            if permalink == "true" or (permalink != "false" and looks_like_url):
                candidates.append((text, guid))
        candidates.append((item.get(_RDF_ABOUT, ""), item))
        url = _first_url(candidates, base_url)
        if url:
            entries.append(Entry(url, _title(item), _date(item, _RSS_DATES)))
    return entries, len(items) - len(entries)


def _atom_entries(root: etree._Element, base_url: str, limit: int) -> tuple[list[Entry], int]:
    entries: list[Entry] = []
    items = _children(root, "entry")[:limit]
    for item in items:
        candidates = [(_text(child), child) for child in _children(item, "origLink")]
        alternates = [link for link in _children(item, "link")
                      if link.get("rel", "alternate").strip().lower() in _ALTERNATE]
        # The HTML page first: an alternate may also be JSON, or the same page in another language.
        alternates.sort(key=lambda link: link.get("type", "text/html").split(";")[0].strip().lower()
                        not in _HTML_TYPES)
        candidates += [(link.get("href") or _text(link), link) for link in alternates]
        for entry_id in _children(item, "id"):
            text = _text(entry_id)
            if text.lower().startswith(("http://", "https://")):
                candidates.append((text, entry_id))
        url = _first_url(candidates, base_url)
        if url:
            entries.append(Entry(url, _title(item), _date(item, _ATOM_DATES)))
    return entries, len(items) - len(entries)


def _sitemap_urls(root: etree._Element, base_url: str, limit: int) -> tuple[list[Entry], int]:
    entries: list[Entry] = []
    items = _children(root, "url")[:limit]
    for item in items:
        url = _loc(item, base_url)
        if not url:
            continue
        title, published = "", None
        for news in _children(item, "news"):
            title = _title(news)
            published = _date(news, ("publication_date",))
        if published is None:
            published = _date(item, ("lastmod",))
        entries.append(Entry(url, title, published))
    return entries, len(items) - len(entries)


def _loc(item: etree._Element, base_url: str) -> str | None:
    """A sitemap entry's URL: its first non-empty <loc>, made absolute."""
    for loc in _children(item, "loc"):
        text = _text(loc)
        if text:
            return None if loc.get(_UNEXPANDED) is not None else _absolute(text, base_url)
    return None


def _sitemap_children(root: etree._Element, base_url: str, limit: int) -> tuple[list[str], int]:
    sitemaps = _children(root, "sitemap")[:limit]
    children = [_loc(item, base_url) for item in sitemaps]
    found = [url for url in children if url]
    return found, len(sitemaps) - len(found)


def parse_date(value: str) -> datetime | None:
    """An RFC 822 (RSS) or ISO 8601 (Atom, sitemaps) date, timezone-aware; None when unreadable.

    Dates without a zone are taken as UTC, without a time as midnight, a year alone as its January 1.
    RFC 822 dates may name days and months in the main European languages and use zone abbreviations
    (ET and PT with the offset in force on the day) or "GMT+1" offsets, as feeds in the wild do.
    """
    value = value.strip()
    if not value:
        return None
    try:
        match = _ISO_DATE.fullmatch(value)
        if match:
            year, month, day, hour, minute, second, zone = match.groups()
            return _in_zone(datetime(int(year), int(month or 1), int(day or 1), int(hour or 0),
                                     int(minute or 0), int(second or 0)), zone)
        words = _english_rfc822(value)
        zone = words.pop() if words and words[-1].upper() in _REGIONAL_ZONES else None
        parsed = parsedate_to_datetime(" ".join(words))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo:
        return parsed
    try:
        return _in_zone(parsed, zone)
    except (ValueError, OverflowError):
        return None


def _in_zone(naive: datetime, zone: str | None) -> datetime:
    """A wall-clock time in `zone` (None: UTC), with the zone's offset on that day."""
    if zone and zone.upper() in _REGIONAL_ZONES:
        local = naive.replace(tzinfo=ZoneInfo(_REGIONAL_ZONES[zone.upper()]))
        offset = local.utcoffset()
        return naive.replace(tzinfo=timezone(offset) if offset else UTC)
    return naive.replace(tzinfo=_zone(zone))


def _zone(zone: str | None) -> timezone:
    if not zone or zone.upper() in ("Z", "UTC", "GMT"):
        return UTC
    zone = _ZONES.get(zone.upper(), zone)
    match = _ZONE_OFFSET.fullmatch(zone)
    if not match:
        raise ValueError(f"unknown zone {zone!r}")
    sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return timezone(-offset if sign == "-" else offset)


def _english_rfc822(value: str) -> list[str]:
    """An RFC 822 date as the email parser reads it: no day name, English month, a time (midnight if
    none), numeric zone (except ET-style ones, read by parse_date), 24-hour clock."""
    words = [word.rstrip(".") for word in value.replace(",", " ").split()]
    if len(words) >= 3 and words[0].isalpha() and words[1].isdigit() and words[2].isalpha():
        del words[0]  # a day name ("Mar" is Tuesday in French, Spanish and Italian), in any language
    words = [_MONTHS.get(word.lower(), word) for word in words]
    for index, word in enumerate(words[1:], start=1):  # "10:00 PM" (parsed as a zone otherwise)
        clock = _CLOCK.fullmatch(words[index - 1])
        if word.upper() in ("AM", "PM") and clock:
            hour = int(clock.group(1)) % 12 + (12 if word.upper() == "PM" else 0)
            words[index - 1] = f"{hour:02d}{clock.group(2)}"
            del words[index]
            break
    if len(words) >= 3 and not any(":" in word for word in words):
        words.insert(3, "00:00:00")  # a date without a time: "Mon, 02 Mar 2026"
    if words:
        zone = _ZONE_OFFSET.fullmatch(words[-1])
        if words[-1].upper() in _ZONES:
            words[-1] = _ZONES[words[-1].upper()]
        elif zone:  # "GMT+1", "UTC-03:00", "+05:30"
            sign, hours, minutes = zone.groups()
            words[-1] = f"{sign}{int(hours):02d}{minutes or '00'}"
    return words
