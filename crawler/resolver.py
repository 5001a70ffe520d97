"""The crawler's name resolver: the addresses the SSRF guard checked are the addresses connected to.

A host name is resolved twice for one request: by `crawler.netguard.SSRFGuardMiddleware`, which
judges the addresses, and by the HTTP handler's connection (Twisted's HostnameEndpoint asks
``reactor.nameResolver``). A name whose owner answers "public" to the first query and
"loopback" to the second (DNS rebinding) would get through if both asked DNS. Scrapy installs a
caching resolver only when a ``CrawlerProcess`` sets up the reactor; the service runs
``AsyncCrawlerRunner``, which installs none, so the service installs this one itself
(`install`).

`PinnedResolver` keeps, per host, the last answer the guard allowed (its *pin*):

* the guard asks `checked_addresses`, which answers from the pin while it is younger than
  `refresh_after` and asks DNS otherwise; the guard then pins the answer only if it allowed it;
* a connection (`resolveHostName`) never asks DNS for a pinned host: it gets the pin, however
  old, so it reaches an address some check allowed; hosts never pinned (IP literals, the
  feed's own host, which the guard trusts without resolving) are resolved as usual.

What stays open: the pin is per host, not per request, so when two sources with different
``allow_networks`` list the same name, one source's connection may use the answer the other
source's policy allowed; and a pin evicted (more than `max_hosts` other hosts pinned between a
request's check and its connection) is resolved again at connection.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from twisted.internet.base import ReactorBase

log = logging.getLogger(__name__)

REFRESH_AFTER = 300.0
"""Seconds a pin answers the guard before the guard asks DNS again."""
MAX_HOSTS = 100_000
"""Pins kept, the most recently used; a few hundred bytes each."""


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        """Nothing to cancel: the answer is already there."""


def _deliver(receiver: Any, host: str, addresses: Sequence[str], port: int) -> None:
    """Hand `addresses` to a Twisted resolution receiver, as resolvers do."""
    receiver.resolutionBegan(_Resolution(host))
    for address in addresses:
        cls = IPv6Address if ":" in address else IPv4Address
        receiver.addressResolved(cls("TCP", address, port))
    receiver.resolutionComplete()


@implementer(IResolutionReceiver)
class _Collector:
    """Gathers a resolution's addresses into a Deferred list."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.done: Deferred[list[str]] = Deferred()

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        self.addresses.append(str(address.host))

    def resolutionComplete(self) -> None:
        self.done.callback(self.addresses)  # empty when the name does not resolve


@implementer(IHostnameResolver)
class PinnedResolver:
    """``reactor.nameResolver`` for the crawler: connections get the answer the guard allowed."""

    def __init__(self, upstream: Any, *, refresh_after: float = REFRESH_AFTER,
                 max_hosts: int = MAX_HOSTS) -> None:
        self.upstream = upstream
        """The IHostnameResolver that asks DNS (zope interfaces are typed as Any here)."""
        self.refresh_after = refresh_after
        self.max_hosts = max_hosts
        self._pins: OrderedDict[str, tuple[tuple[str, ...], float]] = OrderedDict()

    def checked_addresses(self, host: str, port: int) -> Deferred[list[str]]:
        """For the guard: the pinned answer while fresh, else a new one from DNS (not pinned yet)."""
        pinned = self._pins.get(_key(host))
        if pinned is not None and time.monotonic() - pinned[1] < self.refresh_after:
            return succeed(list(pinned[0]))
        collector = _Collector()
        self.upstream.resolveHostName(collector, host, port)
        return collector.done

    def pin(self, host: str, addresses: Sequence[str]) -> None:
        """The guard allowed `addresses` for `host`: connections to it use them from now on."""
        if not addresses:
            return
        key = _key(host)
        self._pins[key] = (tuple(addresses), time.monotonic())
        self._pins.move_to_end(key)
        while len(self._pins) > self.max_hosts:
            self._pins.popitem(last=False)

    def pinned(self, host: str) -> tuple[str, ...] | None:
        """The addresses a connection to `host` would use now, if pinned."""
        pinned = self._pins.get(_key(host))
        return pinned[0] if pinned is not None else None

    def resolveHostName(self, resolutionReceiver: Any, hostName: str,
                        portNumber: int = 0, addressTypes: Sequence[type[Any]] | None = None,
                        transportSemantics: str = "TCP") -> Any:
        """For connections: the pin when there is one (never DNS again), else the upstream resolver."""
        pinned = self._pins.get(_key(hostName))
        if pinned is None:
            return self.upstream.resolveHostName(resolutionReceiver, hostName, portNumber, addressTypes,
                                                 transportSemantics)
        self._pins.move_to_end(_key(hostName))
        addresses = [a for a in pinned[0] if _wanted(a, addressTypes)]
        _deliver(resolutionReceiver, hostName, addresses, portNumber)
        return resolutionReceiver


@implementer(IHostnameResolver)
class ServerResolver:
    """Resolves with the given DNS servers (A and AAAA records) instead of the system's resolver."""

    def __init__(self, servers: Sequence[tuple[str, int]], reactor: ReactorBase) -> None:
        from twisted.names import client

        self.servers = list(servers)
        self._client = client.Resolver(servers=self.servers, reactor=reactor)

    def resolveHostName(self, resolutionReceiver: Any, hostName: str,
                        portNumber: int = 0, addressTypes: Sequence[type[Any]] | None = None,
                        transportSemantics: str = "TCP") -> Any:
        from crawler.netguard import parse_ip_literal

        literal = parse_ip_literal(hostName)
        if literal is not None:  # connections to an IP literal resolve it too
            _deliver(resolutionReceiver, hostName, [str(literal)], portNumber)
            return resolutionReceiver
        lookups = DeferredList([self._client.lookupAddress(hostName), self._client.lookupIPV6Address(hostName)],
                               consumeErrors=True)

        def answered(results: list[tuple[bool, Any]]) -> None:
            addresses: list[str] = []
            for ok, result in results:
                if not ok:
                    continue  # NXDOMAIN or no records of one type; the other type may have some
                answers, _authority, _additional = result
                for record in answers:
                    address = getattr(record.payload, "address", None)
                    if isinstance(address, bytes) and len(address) in (4, 16):
                        addresses.append(str(ipaddress.ip_address(address)))
            _deliver(resolutionReceiver, hostName, [a for a in addresses if _wanted(a, addressTypes)], portNumber)

        lookups.addCallback(answered)
        return resolutionReceiver


def install(reactor: Any, servers: Sequence[tuple[str, int]] = ()) -> PinnedResolver:
    """Make a PinnedResolver the reactor's name resolver (once; later calls return it)."""
    current = reactor.nameResolver
    if isinstance(current, PinnedResolver):
        return current
    upstream = ServerResolver(servers, reactor) if servers else current
    resolver = PinnedResolver(upstream)
    reactor.installNameResolver(resolver)
    log.info("crawler DNS: %s, answers pinned for connections",
             ", ".join(f"{host}:{port}" for host, port in servers) if servers else "the system's resolver")
    return resolver


def installed(reactor: Any) -> PinnedResolver | None:
    """The reactor's PinnedResolver, when one was installed."""
    current = getattr(reactor, "nameResolver", None)
    return current if isinstance(current, PinnedResolver) else None


def _key(host: str) -> str:
    return host.rstrip(".").lower()


def _wanted(address: str, address_types: Sequence[type[Any]] | None) -> bool:
    if not address_types:
        return True
    return (IPv6Address if ":" in address else IPv4Address) in address_types

