"""URL canonicalisation: one form per page, so ids and "names this page" links agree."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|igshid|_ga|_gl"
    r"|ocid|cmpid|cmp|icid|ncid|sr_share|smid|smtyp|ito|itm_\w+|ref|ref_src|ref_url|referrer"
    r"|share|shared|feature|src|source|spm|trk|trkcampaign|mkt_tok|rss|rssfeed|partner|via)$",
    re.IGNORECASE,
)


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, fragment or tracking parameters, sorted query."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    path = quote(unquote(parts.path or "/"), safe="/%:@!$&'()*+,;=-._~")
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k))
    )
    return urlunsplit((scheme, netloc, path, query, ""))


def site_of(url: str) -> str:
    """The host of a URL without "www.", with its port if not the default (the unit for same-site
    rules: two servers on one address but different ports are different sites)."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:
        return ""
    if host.startswith("www."):
        host = host[4:]
    return f"{host}:{port}" if port not in (None, 80, 443) else host


def url_id(url: str) -> str:
    """Stable short id of a page: 16 hex digits of the SHA-256 of its scheme-less canonical URL."""
    canonical = canonical_url(url)
    key = canonical.split("://", 1)[-1]
    if key.startswith("www."):
        key = key[4:]
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# Labels that say nothing about who publishes a site.
_GENERIC_LABELS = frozenset(
    "www www1 www2 m mobile amp edition editions news blog blogs media online web home en int intl "
    "com org net gov edu info biz co ac go gob nic mil int news tv fm".split()
)


def _publisher_labels(site: str) -> set[str]:
    host = site.rsplit(":", 1)[0] if site.count(":") == 1 else site
    if not any(ch.isalpha() for ch in host) or ":" in site:
        return set()  # an IP address, or a non-default port: only the identical site is the same
    labels = host.lower().rstrip(".").split(".")
    return {label for label in labels[:-1] if len(label) >= 3 and label not in _GENERIC_LABELS}


def same_publisher(url_a: str, url_b: str) -> bool:
    """True for the same host, or hosts that share a distinctive label (cnn.com and edition.cnn.com,
    jaraguadosul.com.br and jaraguadosul.sc.gov.br): a link between them is not syndication."""
    host_a, host_b = site_of(url_a), site_of(url_b)
    if not host_a or not host_b:
        return False
    return host_a == host_b or bool(_publisher_labels(host_a) & _publisher_labels(host_b))
