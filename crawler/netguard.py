"""SSRF guard: the crawler fetches URLs that third-party feeds name, so it refuses internal ones.

A feed or sitemap is content written by someone else. Without a guard, an entry (or a
redirect from an entry) pointing at http://169.254.169.254/ or http://127.0.0.1:6379/ makes
the crawler fetch the cloud metadata service or a local admin port from inside our network.

Rules, applied by `check_url` to every URL and by `SSRFGuardMiddleware` to every request
Scrapy downloads (redirect targets included):

* only http and https, and no ``user:password@`` in the URL (Twisted and urllib split such
  netlocs differently, which is a classic guard bypass);
* a URL on the same host as the feed or sitemap that lists it (any port) is allowed: the
  operator chose that host when configuring the source;
* otherwise every address the host is (an IP literal, in any notation inet_aton accepts:
  ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``; IPv6, IPv4-mapped ``::ffff:a.b.c.d``,
  6to4 and Teredo forms) or resolves to must be globally routable: loopback, private,
  link-local (``169.254.0.0/16`` with the metadata address, ``fe80::/10``), unique-local
  (``fc00::/7``), carrier-grade NAT, unspecified, multicast, reserved and documentation
  ranges are refused, unless the address is inside one of the source's ``allow_networks``;
* a host that does not resolve is refused, with the reason.

DNS rebinding, what is and is not covered:

* `check_url` resolves with ``socket.getaddrinfo``; whoever connects afterwards resolves
  again. A name whose owner answers "public" to the check and "private" to the connection
  (short TTL) gets through. `check_url` alone is therefore a policy check, not a barrier.
* `SSRFGuardMiddleware` resolves through the reactor's name resolver, the one Scrapy's HTTP
  handler connects with. The service (``crawler.service``) installs `crawler.resolver`'s
  PinnedResolver there: the guard pins each answer it allows, and a connection to a pinned host
  gets that answer and never asks DNS again, so the address checked is the address connected
  to, however long the request waited in between (tested through ``newsdedup run`` with a DNS
  server that rebinds, tests/test_service_dns.py). Under a plain ``CrawlerProcess`` Scrapy's
  own DNS cache (``DNSCACHE_ENABLED``) gives the same for the life of a cache entry. When a
  proxy (``HTTP_PROXY``/``meta["proxy"]``) resolves names on our behalf, the gap is open again.
* The same-host rule trusts the feed's host name: a feed owner who points their own name at
  an internal address defeats it. Only a network egress policy (the Kubernetes
  NetworkPolicy in deploy/k8s, ``IPAddressDeny=`` in the systemd unit) is a real barrier;
  this module is the first line, not the only one.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from crawler.resolver import PinnedResolver

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""(host, port) -> the addresses it resolves to; raises OSError when it does not resolve."""

FEED_URL_META = "feed_url"
"""Request.meta key: URL of the feed or sitemap that listed this request's URL."""
ALLOW_NETWORKS_META = "allow_networks"
"""Request.meta key: the source's allow_networks CIDRs (else the spider's attribute)."""
MIDDLEWARE_PRIORITY = 40
"""Before OffsiteMiddleware (50) and RobotsTxtMiddleware (100): no robots.txt for a refused host."""

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# 100.64.0.0/10 is neither "private" nor "global" in the ipaddress module.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
DNS_PORT = 53
_INET_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*", re.ASCII)


def check_url(
    url: str,
    *,
    feed_url: str | None,
    allow_networks: Sequence[str],
    resolve: Resolver | None = None,
) -> str | None:
    """None when the crawler may fetch `url`, else the reason it may not."""
    target = _parse_target(url)
    if isinstance(target, str):
        return target
    if feed_url is not None and target.same_host_as(feed_url):
        return None
    networks = parse_networks(tuple(allow_networks))
    if target.literal is not None:
        return _judge(target, [target.literal], networks)
    try:
        addresses = list((resolve or resolve_host)(target.host, target.port))
    except (OSError, UnicodeError) as exc:
        return f"host {target.host!r} does not resolve: {exc}"
    return _judge(target, addresses, networks)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address getaddrinfo gives for host (a connection may try any of them)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@lru_cache(maxsize=256)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The allow_networks strings as networks; ValueError names the first bad one."""
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"allow_networks: not a CIDR network: {cidr!r} ({exc})") from None
    return tuple(networks)


def parse_dns_servers(text: str) -> list[tuple[str, int]]:
    """ "10.0.0.2, 10.0.0.3:5353, [fd00::53]:53" as (address, port) pairs; ValueError names a bad one."""
    servers: list[tuple[str, int]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, port = item, DNS_PORT
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest:
                if not rest.startswith(":") or not rest[1:].isdigit():
                    raise ValueError(f"not a DNS server (address or address:port): {item!r}")
                port = int(rest[1:])
        elif item.count(":") == 1:
            host, _, text_port = item.partition(":")
            if not text_port.isdigit():
                raise ValueError(f"not a DNS server (address or address:port): {item!r}")
            port = int(text_port)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"not a DNS server address (an IP address is needed): {item!r}") from None
        if not 1 <= port <= 65535:
            raise ValueError(f"not a port number in DNS server {item!r}")
        servers.append((host, port))
    return servers



def forbidden_reason(address: IPAddress) -> str | None:
    """Why the crawler must not connect to `address` on a feed's say-so, or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        # Forms that carry an IPv4 address the packet (or the kernel) ends up at.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            if inner is not None:
                return f"{inner} (IPv4 {embedded} inside)"
            return None
    if address in METADATA_ADDRESSES:
        return "cloud metadata service"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address"
    if address.is_multicast:
        return "multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE:
        return "shared address space (carrier-grade NAT)"
    if address.is_reserved:
        return "reserved address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "non-global address"
    return None


@dataclass(frozen=True)
class _Target:
    """The parts of a URL the guard decides on."""

    host: str
    port: int
    literal: IPAddress | None
    """The host as an address when the URL names one (any notation), else None."""

    def same_host_as(self, other_url: str) -> bool:
        """The same host (name or address, any port or scheme): the feed's publisher vouches for
        its own host, as the rule reads; another name for the same address is not the same host."""
        other = _parse_trusted(other_url)
        return isinstance(other, _Target) and other.host == self.host


def _parse_target(url: str) -> _Target | str:
    """The URL's host, port and literal address, or the reason the URL is refused outright."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"malformed URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return f"scheme {scheme or '(none)'!r} is not crawled (http and https only)"
    if "@" in parts.netloc:
        return "URL carries credentials (user@host)"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "URL has no host"
    return _Target(host, port or DEFAULT_PORTS[scheme], parse_ip_literal(host))


_parse_trusted = lru_cache(maxsize=256)(_parse_target)
"""_parse_target for the listing URLs requests are judged against: a crawl's few feeds and sitemaps, each
compared with every article it lists (a frozen result, safe to share)."""


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells, in the notations resolvers accept; None for a host name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id (fe80::1%eth0)
    except ValueError:
        pass
    return _inet_aton(host)


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """inet_aton's reading: 1-4 parts, each decimal, 0-octal or 0x-hex; the last fills the rest.

    getaddrinfo and gethostbyname accept these ("2130706433", "0x7f.1", "127.1"), so a guard
    that only knows dotted quads would wave them through to 127.0.0.1.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_ATON_PART.fullmatch(part) for part in parts):
        return None
    values = [
        int(part, 0) if part[:2].lower() == "0x" else int(part, 8 if part.startswith("0") else 10)
        for part in parts
    ]
    *leading, last = values
    if any(value > 0xFF for value in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _judge(
    target: _Target, addresses: Iterable[str | IPAddress], networks: Sequence[IPNetwork]
) -> str | None:
    """The first reason any address is refused; a refused address inside networks is allowed."""
    seen = False
    for raw in addresses:
        seen = True
        address = raw if not isinstance(raw, str) else parse_ip_literal(raw)
        if address is None:
            return f"host {target.host!r} resolved to something that is not an address: {raw!r}"
        reason = forbidden_reason(address)
        if reason is None or _allowed(address, networks):
            continue
        if target.literal is not None:
            return f"{address}: {reason}"
        return f"host {target.host!r} resolves to {address}: {reason}"
    if not seen:
        return f"host {target.host!r} does not resolve"
    return None


def _allowed(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    # Membership across IP versions is simply False, so mixed lists need no special case.
    return any(candidate in network for candidate in candidates for network in networks)


class SSRFGuardMiddleware:
    """Scrapy downloader middleware: IgnoreRequest for every request `check_url` would refuse.

    Enable with ``DOWNLOADER_MIDDLEWARES = {"crawler.netguard.SSRFGuardMiddleware": 40}``
    (MIDDLEWARE_PRIORITY).
    Redirects are covered because RedirectMiddleware returns a new Request, which the engine
    schedules and which then passes every downloader middleware's process_request again
    (scrapy/core/engine.py, ``_handle_downloader_output`` -> ``crawl``); the new request keeps
    the original's meta, so its feed_url is still the listing feed.

    Per request it reads ``meta["feed_url"]`` and ``meta["allow_networks"]``. A request without
    feed_url (a configured feed itself, or robots.txt) counts as same-host when it is on the
    host of any URL in the spider's ``feed_urls`` attribute; a request without allow_networks
    uses the spider's ``allow_networks`` attribute. Set ``SSRF_GUARD_ENABLED = False`` to turn
    it off (tests only).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        if _pinning_resolver() is None and not crawler.settings.getbool("DNSCACHE_ENABLED", True):
            log.warning("no pinning resolver and DNSCACHE_ENABLED is off: the SSRF guard cannot pin the address "
                        "it checked")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        from scrapy.exceptions import NotConfigured

        if not crawler.settings.getbool("SSRF_GUARD_ENABLED", True):
            raise NotConfigured
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        """Raise IgnoreRequest with the reason when the request's URL is refused."""
        reason = await self._reason(request)
        if reason is None:
            return
        from scrapy.exceptions import IgnoreRequest

        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("netguard/refused")
        origin = f"listed by {request.meta.get(FEED_URL_META) or 'a configured URL'}"
        if request.meta.get("redirect_urls"):
            origin += f", redirected from {request.meta['redirect_urls'][-1]}"
        log.warning("refused %s (%s): %s", request.url, origin, reason)
        raise IgnoreRequest(f"SSRF guard: {reason}")

    async def _reason(self, request: Request) -> str | None:
        target = _parse_target(request.url)
        if isinstance(target, str):
            return target
        spider = self.crawler.spider
        feed_url = request.meta.get(FEED_URL_META)
        trusted = [feed_url] if feed_url else list(getattr(spider, "feed_urls", ()) or ())
        if any(target.same_host_as(url) for url in trusted):
            return None
        allow = request.meta.get(ALLOW_NETWORKS_META)
        if allow is None:
            allow = getattr(spider, "allow_networks", ()) or ()
        try:
            networks = parse_networks(tuple(allow))
        except ValueError as exc:
            return str(exc)
        if target.literal is not None:
            return _judge(target, [target.literal], networks)
        from scrapy.utils.defer import maybe_deferred_to_future

        pinning = _pinning_resolver()
        if pinning is None:
            addresses = await maybe_deferred_to_future(_reactor_resolve(target.host, target.port))
            return _judge(target, addresses, networks)
        addresses = await maybe_deferred_to_future(pinning.checked_addresses(target.host, target.port))
        reason = _judge(target, addresses, networks)
        if reason is None:
            pinning.pin(target.host, addresses)  # what the connection will use, and nothing else
        return reason


def _pinning_resolver() -> PinnedResolver | None:
    """The reactor's crawler.resolver.PinnedResolver, when the service installed one."""
    from scrapy.utils.reactor import is_reactor_installed

    if not is_reactor_installed():
        return None
    from twisted.internet import reactor

    from crawler.resolver import installed

    return installed(reactor)


def _reactor_resolve(host: str, port: int) -> Deferred[list[str]]:
    """Addresses from the reactor's resolver, whose (cached) answer Scrapy then connects to."""
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IResolutionReceiver
    from zope.interface import implementer  # type: ignore[import-untyped]

    result: Deferred[list[str]] = Deferred()
    addresses: list[str] = []

    @implementer(IResolutionReceiver)
    class _Collector:
        def resolutionBegan(self, resolution: Any) -> None:
            pass

        def addressResolved(self, address: Any) -> None:
            addresses.append(str(address.host))

        def resolutionComplete(self) -> None:
            result.callback(addresses)  # an empty list when the name does not resolve

    reactor.nameResolver.resolveHostName(_Collector(), host, port)
    return result
