"""URL canonicalisation: one form per page, so ids and "names this page" links agree.

Built on w3lib's canonicalisation (IDNA hosts, percent-encoding, sorted query, dot segments, IPv6)
and the public suffix list bundled with tldextract (never fetched over the network). A URL that names
no web page raises BadURL, and only BadURL; site_of and same_publisher never raise.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

if TYPE_CHECKING:
    import tldextract

URL_ID_FORMAT = 2
"""Version of the scheme url_id computes ids with (1: the hand-written one before w3lib); recorded with
the index parameters, since ids computed two ways must never share an index."""
MAX_URL_LENGTH = 8192
"""Longest URL accepted: what common servers accept in a request line; anything longer is hostile."""

_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|igshid|_ga|_gl"
    r"|ocid|cmpid|cmp|icid|ncid|sr_share|smid|smtyp|ito|itm_\w+|ref|ref_src|ref_url|referrer"
    r"|share|shared|feature|src|source|spm|trk|trkcampaign|mkt_tok|rss|rssfeed|partner|via)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = ("http", "https", "file")
# Browsers (WHATWG URL) drop tabs and newlines anywhere and C0 controls and spaces around a URL.
_STRIPPED = "".join(map(chr, range(0x21)))
_TABS_AND_NEWLINES = str.maketrans("", "", "\t\n\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class BadURL(ValueError):
    """A URL that names no web page: unparsable, not http(s) (file: is kept for local pages the CLI
    reads), no or a malformed host, a port out of range, a bad IPv6 address, control characters or a
    lone surrogate, or longer than MAX_URL_LENGTH."""


def canonical_url(url: str) -> str:
    """Lower-case scheme and host (IDNA), no default port, user, fragment or tracking parameters,
    sorted query, normalised percent-encoding; a URL without a scheme is taken as http."""
    if not isinstance(url, str):
        raise BadURL(f"not a string: {type(url).__name__}")
    return _canonical(url)


# A page's URL is canonicalised several times on its way (listing, seen-set, decision, links to it).
@functools.lru_cache(maxsize=8192)
def _canonical(url: str) -> str:
    text = _clean(url)
    try:
        parts = urlsplit(text)
        if not parts.scheme:
            parts = urlsplit(("http:" if text.startswith("//") else "http://") + text)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise BadURL(f"not a web URL (scheme {scheme!r}): {_short(text)}")
        if scheme != "file" and not parts.netloc:  # "http:/x", "http:///x": read in too many ways
            raise BadURL(f"no host: {_short(text)}")
        port = parts.port  # a ValueError when out of range or not a number
        if port == 0:
            raise BadURL(f"port 0: {_short(text)}")
        host = _bare_host(parts.netloc)
        if scheme != "file" and not host:
            raise BadURL(f"no host: {_short(text)}")
        if port is not None and port != _DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
        canonical = canonicalize_url(urlunsplit((scheme, host, parts.path, _without_tracking(parts.query), "")))
        hostname = urlsplit(canonical).hostname or ""
    except BadURL:
        raise
    except (ValueError, UnicodeError) as exc:  # UnicodeError is a ValueError; named for the reader
        raise BadURL(f"unreadable URL ({exc}): {_short(text)}") from None
    if scheme != "file" and not _valid_host(hostname):
        raise BadURL(f"no valid host: {_short(text)}")
    return canonical


def url_id(url: str) -> str:
    """Stable short id of a page: 16 hex digits of the SHA-256 of its canonical URL without scheme
    or "www." (BadURL when it names no page)."""
    key = canonical_url(url).split("://", 1)[-1]
    key = key.removeprefix("www.")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def site_of(url: str) -> str:
    """The host of a URL without "www.", with its port if not the default (the unit for same-site
    rules: two servers on one address but different ports are different sites); "" for a bad URL."""
    try:
        netloc = urlsplit(canonical_url(url)).netloc
    except BadURL:
        return ""
    return netloc.removeprefix("www.")


# Labels that say nothing about who publishes a site.
_GENERIC_LABELS = frozenset(
    "www www1 www2 m mobile amp edition editions news blog blogs media online web home en int intl "
    "com org net gov edu info biz co ac go gob nic mil int news tv fm".split()
)


def same_publisher(url_a: str, url_b: str) -> bool:
    """True for the same host, or hosts that share a distinctive label left of their public suffix
    (cnn.com and edition.cnn.com, jaraguadosul.com.br and jaraguadosul.sc.gov.br): a link between them
    is not syndication. Private suffixes count: alice.blogspot.com and bob.blogspot.com are two."""
    site_a, site_b = site_of(url_a), site_of(url_b)
    if not site_a or not site_b:
        return False
    return site_a == site_b or bool(_publisher_labels(site_a) & _publisher_labels(site_b))


@functools.lru_cache(maxsize=4096)
def _publisher_labels(site: str) -> frozenset[str]:
    if site.startswith("[") or ":" in site or not any(ch.isalpha() for ch in site):
        return frozenset()  # an IP address, or a non-default port: only the identical site is the same
    parts = _suffix_list()(site)
    if parts.suffix:
        labels = [*parts.subdomain.split("."), parts.domain]
    else:  # a name the list does not know ("intranet", ".example"): its last label stands for one
        labels = site.split(".")[:-1]
    return frozenset(label for label in labels if len(label) >= 3 and label not in _GENERIC_LABELS)


@functools.cache
def _suffix_list() -> tldextract.TLDExtract:
    # Imported on first use: it brings requests and urllib3 (a tenth of a second), which only this needs.
    import tldextract

    # The snapshot bundled with the package: no download (suffix_list_urls=()), no cache directory.
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True,
                                 include_psl_private_domains=True)


def _clean(url: str) -> str:
    """The URL as a browser reads it, or BadURL for what no browser would send."""
    text = url.strip(_STRIPPED).translate(_TABS_AND_NEWLINES)
    if not text:
        raise BadURL("empty URL")
    if len(text) > MAX_URL_LENGTH:
        raise BadURL(f"URL longer than {MAX_URL_LENGTH} characters: {_short(text)}")
    if _CONTROL.search(text):
        raise BadURL(f"control character in URL: {_short(text)}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadURL(f"lone surrogate in URL: {_short(text)}") from None
    # Browsers read a backslash as a slash in web URLs; a "%" that starts no escape stands for itself
    # (written "%25", so that decoding a later escape cannot make it one: "%%41" is not "%A").
    return _STRAY_PERCENT.sub("%25", text.replace("\\", "/"))


def _bare_host(netloc: str) -> str:
    """The host of a netloc as written: no user, password or port; IPv6 in brackets."""
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.partition(":")[0].rstrip(".")


def _without_tracking(query: str) -> str:
    """The query without tracking parameters or empty pairs, the others left as they were written."""
    if not query:
        return ""
    kept = (pair for pair in query.split("&") if pair)
    return "&".join(pair for pair in kept if not _TRACKING.match(unquote_plus(pair.partition("=")[0])))


def _valid_host(host: str) -> bool:
    """A DNS name (letters, digits, hyphens, underscores; IDNA already applied), IPv4, or IPv6."""
    if not host:
        return False
    if "%" in host:  # a zone id (fe80::1%eth0) names an interface of this machine, not a site
        return False
    if ":" in host:  # urlsplit's hostname drops the brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in host.split("."))


def _short(text: str, limit: int = 200) -> str:
    """A URL fit for an error message: bounded, control characters shown escaped."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return shown.encode("unicode_escape", "backslashreplace").decode("ascii")


__all__ = ["MAX_URL_LENGTH", "URL_ID_FORMAT", "BadURL", "canonical_url", "same_publisher", "site_of", "url_id"]
