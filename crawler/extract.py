"""Article extraction: decode a fetched page into an Article with its text (trafilatura), its
publication date (htmldate) and the links the canonical policy relies on."""

from __future__ import annotations

import codecs
import logging
import re
from copy import deepcopy
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import trafilatura
from htmldate import find_date
from lxml.html import HtmlElement
from lxml.html.builder import E
from trafilatura.metadata import extract_title
from trafilatura.utils import load_html

from dedup.article import Article
from dedup.validate import InvalidArticle, shown, validate

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
"""Only this much of a body is read: a runaway page must not cost a worker its memory."""
SNIFF_BYTES = 8192
"""Prefix examined for a byte-order mark, a <meta charset> and binary content."""
MAX_CONTROL_SHARE = 0.05
"""Share of control characters above which a body is binary, whatever its Content-Type says."""
PRECISION_RESCUE_CHARS = 500
"""A precision-mode text shorter than this may have lost the article itself: retry balanced."""

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# WHATWG decodes these labels as windows-1252, and the pages that use them mean it.
_CP1252_ALIASES = frozenset({"ascii", "latin-1", "iso8859-1", "cp1252"})
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0b\x0c\r\x1b")
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_HIGH_BYTES = bytes(range(128, 256))
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_.:+-]+)"""
    rb"""|<\?xml[^>]+encoding\s*=\s*["']([a-z0-9_.:+-]+)""",
    re.IGNORECASE,
)

# Phrases with which a copy names its original: "Read Full Article", "Originally published at".
_CREDIT_PHRASE = (
    r"(read (?:the )?(?:full|complete|entire|whole|original|rest of the) "
    r"(?:article|story|post|report|piece|text)s?(?: (?:at|on|here))?"
    r"|continue reading(?: (?:at|on))?|keep reading(?: (?:at|on))?|read more (?:at|on)"
    r"|view (?:the )?original(?: (?:article|story|post))?|(?:original|full) (?:article|story|post)"
    r"|(?:originally|first) (?:published|posted|appeared|ran)(?: (?:at|on|in|by))?"
    r"|(?:article|story|post|piece) (?:was )?(?:originally|first) (?:published|posted|appeared)"
    r"(?: (?:at|on|in|by))?|(?:republished|reprinted) (?:from|with permission(?: from)?))"
)
_ANCHOR_PHRASE = re.compile(r"^\W*" + _CREDIT_PHRASE + r"\b", re.IGNORECASE)
_BEFORE_PHRASE = re.compile(r"\b" + _CREDIT_PHRASE + r"\W*$", re.IGNORECASE)
# "Source:" / "Via" as a label (with a colon, or opening its block or clause), never in prose.
_BEFORE_LABEL = re.compile(
    r"(?:(?:^|[.!?|(\[•·–—-])\s*(?:original )?(?:sources?|via)|\b(?:sources?|via)\s*:)\W*$",
    re.IGNORECASE,
)
_ANCHOR_LABEL = re.compile(r"^\W*(?:original )?(?:source|source link|via)\W*$", re.IGNORECASE)
_NOT_SOURCE = re.compile(
    r"\b(?:image|photo|picture|img|video|data|icon|open|code|cover)\s+(?:sources?|via)\W*$",
    re.IGNORECASE,
)
_SYNDICATION_META = ("syndication-source", "original-source")
_INLINE_TAGS = frozenset({"span", "strong", "b", "em", "i", "u", "small", "font", "mark", "cite"})
# Links in these are site furniture (related stories, menus), not the article's own credit line.
_FURNITURE_TAGS = frozenset({"nav", "aside", "menu"})
_FURNITURE_NAMES = re.compile(
    r"sidebar|related|comment|widget|menu|share|social|promo|recommend|newsletter|breadcrumb"
    r"|trending|popular|teaser",
    re.IGNORECASE,
)
# Where htmldate finds machine-readable dates: in <head>, and in <body> elements.
_DATE_SOURCES = (
    "//meta|//script[@type='application/ld+json']",
    "//time[@datetime]|//abbr[@title]|//*[@itemprop='datePublished']",
)
# Site chrome, where news themes print today's date: dropped before reading printed dates.
_CHROME_TAGS = frozenset({"header", "nav", "footer", "aside", "menu"})
_CHROME_NAMES = re.compile(
    r"header|masthead|top-?bar|top-?menu|navbar|today|current-date|footer", re.IGNORECASE
)

_WORD = re.compile(r"\w+")
_TITLE_SEPARATOR = re.compile(r"\s+[|\-–—:·»]\s+")
# Widget lines trafilatura sometimes keeps after the article: counters, tag and share boxes.
_TAIL_JUNK = re.compile(
    r"^(?:\d*\s*comments?|tags?:?|filed under:?.*|you may also like.*|related (?:posts?|stories"
    r"|articles?):?|share (?:this|it)\b.*|like this (?:story|article)\?.*|tell us what you think.*"
    r"|advertisement)$",
    re.IGNORECASE,
)


def extract_article(
    body: bytes | str,
    url: str,
    *,
    final_url: str | None = None,
    headers_encoding: str | None = None,
    fetched_at: datetime | None = None,
    source: str = "",
) -> Article | None:
    """Extract one fetched page into an Article, or None (logged) when it holds no article text."""
    try:
        html = decode_html(body, headers_encoding)
        tree = load_html(html) if html is not None else None
        if tree is None:
            logger.info("empty, binary or unparsable body, no article: %s", url)
            return None
        page_url = final_url or url
        title = _title(tree)
        text = _article_text(tree, page_url, title)  # trafilatura works on its own copy of the tree
        if not text:
            logger.info("no article text: %s", url)
            return None
        base_url = _base_url(tree, page_url)
        own_pages = {_page_key(url), _page_key(page_url)}
        article = Article(
            url=url,
            text=text,
            title=title,
            final_url=final_url,
            published=_published(tree, page_url, fetched_at),
            canonical_link=_canonical_link(tree, base_url, own_pages),
            source_link=_source_link(tree, base_url, own_pages),
            site=urlsplit(page_url).hostname,
            fetched_at=fetched_at,
            source=source,
        )
        try:
            checked = validate(article)  # a bad link or date goes here, with its reason, not to the engine
        except InvalidArticle:
            # The URL is the caller's, not the page's: the caller's boundary refuses it and says which record.
            return article
        for note in checked.dropped:
            logger.info("%s: %s", shown(url), note)
        return checked.article
    except Exception:  # one bad page must not stop a crawl: log it and move on
        logger.warning("extraction failed: %s", url, exc_info=True)
        return None


def decode_html(body: bytes | str, headers_encoding: str | None = None) -> str | None:
    """Decode a response body (first MAX_BODY_BYTES) to text; None when it is empty or binary.

    Order: byte-order mark, then the declared charsets (HTTP header, then <meta>) when the bytes
    are valid in them, then UTF-8, then Windows-1252. Valid UTF-8 labelled Latin-1 is UTF-8.
    """
    if isinstance(body, str):
        sample = body[:SNIFF_BYTES]
        controls = len(_CONTROL_CHARS.findall(sample))
        binary = "\x00" in sample or controls > MAX_CONTROL_SHARE * len(sample)
        text = body[:MAX_BODY_BYTES]
        return None if binary or not text or text.isspace() else text
    truncated = len(body) > MAX_BODY_BYTES
    data = bytes(body[:MAX_BODY_BYTES])
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = _decode(data[len(bom) :], encoding, truncated, "replace")
            return text if text.strip() else None
    head = data[:SNIFF_BYTES]
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if not data or data.isspace() or b"\x00" in head or controls > MAX_CONTROL_SHARE * len(head):
        return None
    meta = _META_CHARSET.search(head)
    meta_charset = (meta.group(1) or meta.group(2)).decode("ascii", "replace") if meta else None
    declared = [_encoding(headers_encoding), _encoding(meta_charset)]
    for encoding in filter(None, declared):
        # A server default of Latin-1 is often wrong: bytes that are valid UTF-8 are UTF-8.
        utf8 = _strict(data, "utf-8", truncated) if encoding == "cp1252" else None
        if decoded := utf8 or _strict(data, encoding, truncated):
            return decoded
    non_ascii = len(data) - len(data.translate(None, _HIGH_BYTES))
    if not non_ascii:
        return data.decode("ascii")
    utf8 = _decode(data, "utf-8", truncated, "replace")
    # UTF-8 with a few stray bytes stays UTF-8; mostly-invalid UTF-8 is a legacy single-byte
    # page, most often Windows-1252, which maps nearly every byte to a character.
    if utf8.count("\ufffd") * 10 < non_ascii:
        return utf8
    fallback = next((e for e in declared if e and e != "utf-8"), "cp1252")
    return _decode(data, fallback, truncated, "replace")


def _encoding(label: str | None) -> str | None:
    """Python's codec name for a charset label (Latin-1, ASCII: cp1252); None when unknown."""
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name if label else None
    except LookupError:
        return None
    return "cp1252" if name in _CP1252_ALIASES else name


def _decode(data: bytes, encoding: str, truncated: bool, errors: str) -> str:
    """Decode, tolerating a multi-byte character cut in half by the size cap."""
    return codecs.getincrementaldecoder(encoding)(errors).decode(data, final=not truncated)


def _strict(data: bytes, encoding: str, truncated: bool) -> str | None:
    """data decoded, or None when it is not valid in this encoding."""
    try:
        return _decode(data, encoding, truncated, "strict")
    except (UnicodeDecodeError, LookupError):
        return None


def _article_text(tree: HtmlElement, url: str, title: str) -> str:
    """The article body as plain text, one paragraph a line."""
    # Precision mode drops more boilerplate (bios, newsletter boxes) at little cost in recall;
    # on the rare page where it prunes the article itself, balanced mode gets it back.
    text = _trafilatura_text(tree, url, favor_precision=True)
    if len(text) < PRECISION_RESCUE_CHARS:
        balanced = _trafilatura_text(tree, url, favor_precision=False)
        if len(balanced) > 2 * len(text):
            text = balanced
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # The headline is Article.title; repeated as the first line it would count as body text.
    headlines = _headlines(tree) | {_words(title)}
    while lines and _words(lines[0]) in headlines:
        lines.pop(0)
    while lines and _TAIL_JUNK.match(lines[-1]):
        lines.pop()
    return "\n".join(lines)


def _trafilatura_text(tree: HtmlElement, url: str, *, favor_precision: bool) -> str:
    """trafilatura's plain-text extraction of the main content, without comments."""
    text = trafilatura.extract(
        tree, url=url, favor_precision=favor_precision, include_comments=False, include_tables=True
    )
    return text or ""


def _title(tree: HtmlElement) -> str:
    """The headline: trafilatura's pick (a lone <h1>, else metadata) unless it is the site name."""
    title = " ".join((extract_title(tree) or "").split())
    page_title = " ".join("".join(tree.xpath("//head/title//text()")).split())
    # Some sites wrap their logo in the page's only <h1>: then og:title or <title> names the story.
    site_names = {_words(name) for name in tree.xpath("//meta[@property='og:site_name']/@content")}
    parts = _TITLE_SEPARATOR.split(page_title)
    if len(parts) > 1:
        site_names.add(_words(parts[-1]))  # "Headline | Site"
    if _words(title) in site_names:
        alternatives = tree.xpath("//meta[@property='og:title']/@content")
        alternatives.append(parts[0])
        for alternative in alternatives:
            if alternative.strip() and _words(alternative) not in site_names:
                return " ".join(alternative.split())
    return title


def _headlines(tree: HtmlElement) -> set[str]:
    """Every form of the headline a page shows (h1, og:title, <title>), as compared words."""
    texts = [h1.text_content() for h1 in tree.iter("h1")]
    texts += tree.xpath("//meta[@property='og:title']/@content|//head/title/text()")
    return {_words(text) for text in texts if text.strip()}


def _words(text: str) -> str:
    """Lower-cased words only, to compare lines regardless of punctuation and spacing."""
    return " ".join(_WORD.findall(text.lower()))


def _base_url(tree: HtmlElement, page_url: str) -> str:
    """The URL relative links resolve against: <base href> when the page sets one."""
    hrefs = tree.xpath("//base/@href")
    return (_absolute(hrefs[0], page_url) or page_url) if hrefs else page_url


def _absolute(href: str | None, base_url: str) -> str | None:
    """An absolute http(s) URL for href, or None."""
    if not href or not href.strip():
        return None
    try:
        absolute = urljoin(base_url, href.strip())
        is_web = urlsplit(absolute).scheme in ("http", "https")
    except ValueError:  # "http://[broken": one bad href must not cost the article
        return None
    return absolute if is_web else None


def _page_key(url: str) -> str:
    """What identifies a page in a URL: host without www., path without end slash, query."""
    parts = urlsplit(url.strip())
    page = f"{(parts.hostname or '').removeprefix('www.')}{parts.path.rstrip('/')}"
    return f"{page}?{parts.query}" if parts.query else page


def _is_site_root(url: str) -> bool:
    """Whether a URL is a bare home page, which is never an article."""
    parts = urlsplit(url)
    return not parts.path.strip("/") and not parts.query


def _canonical_link(tree: HtmlElement, base_url: str, own_pages: set[str]) -> str | None:
    """rel=canonical (else og:url) when it names another page than the one fetched."""
    rels = [
        link for link in tree.iter("link") if "canonical" in (link.get("rel") or "").lower().split()
    ]
    if rels:
        candidate = _absolute(rels[0].get("href"), base_url)
    else:
        og_urls = tree.xpath("//meta[@property='og:url' or @name='og:url']/@content")
        candidate = _absolute(og_urls[0], base_url) if og_urls else None
    if candidate is None or _page_key(candidate) in own_pages:
        return None
    # Misconfigured sites point every article's canonical at their home page: no evidence.
    return None if _is_site_root(candidate) else candidate


def _source_link(tree: HtmlElement, base_url: str, own_pages: set[str]) -> str | None:
    """The link a republished copy gives to its original ("Source: Read Full Article")."""
    for name in _SYNDICATION_META:
        for content in tree.xpath(f"//meta[@name='{name}']/@content|//link[@rel='{name}']/@href"):
            link = _absolute(content, base_url)
            if link and _page_key(link) not in own_pages and not _is_site_root(link):
                return link
    candidates: list[tuple[int, str, str]] = []  # (strength, phrase, link), in page order
    for anchor in tree.iter("a"):
        credit = _credit(anchor)
        link = _absolute(anchor.get("href"), base_url) if credit else None
        if credit is None or link is None or _page_key(link) in own_pages or _is_site_root(link):
            continue
        if not _in_furniture(anchor):
            candidates.append((*credit, link))
    # A phrase that points at several pages is a teaser list ("Full Story" under each headline).
    targets: dict[str, set[str]] = {}
    for _, phrase, link in candidates:
        targets.setdefault(phrase, set()).add(_page_key(link))
    credible = [
        (strength, link) for strength, phrase, link in candidates if len(targets[phrase]) == 1
    ]
    if not credible:
        return None
    strongest = max(strength for strength, _ in credible)
    # The credit line closes the article: among equals, the last one wins.
    return [link for strength, link in credible if strength == strongest][-1]


def _credit(anchor: HtmlElement) -> tuple[int, str] | None:
    """How a link credits an original, as (strength, phrase): "Source: Read Full Article" is 3,
    "Read Full Article" or "Originally published at" 2, "Source:" alone 1; None for other links."""
    anchor_text = " ".join(anchor.text_content().split())
    before = _text_before(anchor)
    labelled = bool(_ANCHOR_LABEL.match(anchor_text)) or bool(
        _BEFORE_LABEL.search(before) and not _NOT_SOURCE.search(before)
    )
    # "Read Full Article", "Originally published at <a>", "Read <a>the full article</a>".
    for text, pattern in (
        (anchor_text[:100], _ANCHOR_PHRASE),
        (before, _BEFORE_PHRASE),
        (f"{before[-30:]} {anchor_text[:60]}", _BEFORE_PHRASE),
    ):
        if match := pattern.search(text):
            phrase = _words(match.group(1))
            return (3, f"source: {phrase}") if labelled else (2, phrase)
    return (1, "source") if labelled else None


def _text_before(anchor: HtmlElement, limit: int = 80) -> str:
    """The text just before a link within its block, e.g. "Source:" or "Originally published at"."""
    parts: list[str] = []
    node = anchor
    while True:
        previous = node.getprevious()
        while previous is not None and sum(map(len, parts)) < limit:
            parts += [previous.tail or "", previous.text_content()]
            previous = previous.getprevious()
        parent = node.getparent()
        if parent is None:
            break
        parts.append(parent.text or "")
        # Climb out of inline wrappers (<strong><a>), never past the enclosing block.
        if sum(map(len, parts)) >= limit or parent.tag not in _INLINE_TAGS:
            break
        node = parent
    return " ".join(" ".join(reversed(parts)).split())[-limit:]


def _in_furniture(anchor: HtmlElement) -> bool:
    """Whether a link sits in a menu, sidebar, related-stories or comments block."""
    return any(
        ancestor.tag in _FURNITURE_TAGS
        or _FURNITURE_NAMES.search(f"{ancestor.get('class', '')} {ancestor.get('id', '')}")
        for ancestor in anchor.iterancestors()
    )


def _published(tree: HtmlElement, page_url: str, fetched_at: datetime | None) -> datetime | None:
    """The publication date (aware, UTC): from the metadata, else a date the page prints, else None.

    Metadata wins: meta tags and JSON-LD, then a date in the URL path, then <time datetime> and
    microformats. Without any, htmldate's fast mode reads the dates the page prints (date-classed
    elements, headline) once the site's header bar, menus and footer are gone, as that is where
    news themes print today's date ("Sunday, 14 Apr 2024"). A printed date within a day of the
    fetch is still refused: it cannot be told from such a "today" line. No free-text search.
    """
    published = _find_date(_date_metadata(tree), page_url)
    if published is not None:
        return published
    printed = _find_date(_without_chrome(tree), None)
    fetched = (fetched_at or datetime.now(UTC)).date()
    if printed is None or abs((printed.date() - fetched).days) <= 1:
        return None
    return printed


def _find_date(tree: HtmlElement, url: str | None) -> datetime | None:
    """htmldate's original (not last-modified) date of a tree, as an aware UTC datetime."""
    found = find_date(
        tree,
        extensive_search=False,
        original_date=True,
        outputformat="%Y-%m-%dT%H:%M:%S%z",
        url=url,
        deferred_url_extractor=True,
    )
    if not found:
        return None
    published = datetime.fromisoformat(found)
    # Always aware, so the canonical policy can compare the dates of any two pages.
    return published.astimezone(UTC) if published.tzinfo else published.replace(tzinfo=UTC)


def _date_metadata(tree: HtmlElement) -> HtmlElement:
    """A page reduced to its machine-readable date sources, without any visible text."""
    skeleton = E.HTML(E.HEAD(), E.BODY())
    for parent, sources in zip(skeleton, _DATE_SOURCES, strict=True):
        for element in tree.xpath(sources):
            copied = deepcopy(element)
            copied.tail = None  # the text after the element is page text
            parent.append(copied)
    return skeleton


def _without_chrome(tree: HtmlElement) -> HtmlElement:
    """A copy of the page without its site header bar, menus, sidebars and footer."""
    copied = deepcopy(tree)
    for element in list(copied.iter(*_CHROME_TAGS)) + copied.xpath("//body//*[@class or @id]"):
        names = f"{element.get('class', '')} {element.get('id', '')}"
        if element.tag not in _CHROME_TAGS and not _CHROME_NAMES.search(names):
            continue
        # An article's own header (headline, byline, date) stays: that is where its date is.
        in_article = any(a.tag in ("article", "main") for a in element.iterancestors())
        if not in_article and element.find(".//h1") is None and element.getparent() is not None:
            element.drop_tree()
    return copied
