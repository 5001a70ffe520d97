"""DNS rebinding through the real service: the address the SSRF guard checked is the one connected to.

A test DNS server on loopback answers the article's host name with an allowed address to the first
query and with a forbidden loopback address to every later one. `newsdedup run` resolves with it
(``[service] dns_servers``) under its own AsyncCrawlerRunner; the page on the forbidden address
must never be requested.

No traffic may leave this machine, so the "public" answer is a loopback address the source allows
(``allow_networks = ["127.0.0.2/32"]``): to the guard it is as good as a public one, and the
rebinding answer (127.0.0.3) is refused like any loopback address.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest
import redis
from twisted.names import dns

from crawler.demo.site import Site, SiteServer, publisher_page, rss
from dedup.keys import Keys
from tests.service_process import ServiceProcess, article_count, service_env, wait_for
from tests.sites.web import STORIES

REBINDING_NAME = "rebind.test"
ALLOWED = "127.0.0.2"
FORBIDDEN = "127.0.0.3"


class RebindingDNS:
    """A UDP DNS server on 127.0.0.1: REBINDING_NAME is ALLOWED to the first A query, FORBIDDEN after."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.answers: list[str] = []
        """The A answers given for REBINDING_NAME, in order."""
        self.queries: Counter[tuple[str, int]] = Counter()
        self._thread = threading.Thread(target=self._serve, name="rebinding-dns", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return  # closed
            self.sock.sendto(self.reply(data), peer)

    def reply(self, data: bytes) -> bytes:
        query = dns.Message()
        query.fromStr(data)
        reply = dns.Message(id=query.id, answer=1, opCode=query.opCode, recDes=query.recDes, recAv=1, auth=1)
        reply.queries = query.queries
        question = query.queries[0]
        name = question.name.name.decode().rstrip(".").lower()
        self.queries[(name, question.type)] += 1
        if name != REBINDING_NAME:
            reply.rCode = dns.ENAME
        elif question.type == dns.A:
            address = ALLOWED if not self.answers else FORBIDDEN
            self.answers.append(address)
            # TTL 0: a resolver that honours TTLs asks again at connection time.
            reply.answers.append(dns.RRHeader(name=name, type=dns.A, ttl=0, payload=dns.Record_A(address, ttl=0)))
        return reply.toStr()


def ask(port: int, name: str) -> list[str]:
    """The A records the test DNS server gives for `name` now (one query of our own)."""
    query = dns.Message(id=4242, recDes=1)
    query.addQuery(name.encode(), dns.A)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query.toStr(), ("127.0.0.1", port))
        answer = dns.Message()
        answer.fromStr(sock.recv(4096))
    return [record.payload.dottedQuad() for record in answer.answers if record.type == dns.A]


@pytest.fixture
def rebinding_web() -> Iterator[tuple[RebindingDNS, Site, Site, Site]]:
    """The DNS server; a feed on 127.0.0.1 listing http://rebind.test:PORT/story.html; the same port
    served on ALLOWED (the article) and on FORBIDDEN (an internal page)."""
    story = STORIES[0]
    allowed, forbidden, feeds = Site("allowed", ALLOWED), Site("internal", FORBIDDEN), Site("feeds", "127.0.0.1")
    for site in (allowed, forbidden):
        site.page("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    allowed_server = SiteServer([allowed]).start()
    forbidden.port = allowed.port  # the URL names one port: both addresses must serve it
    servers = [allowed_server]
    try:
        servers.append(SiteServer([forbidden]).start())
        article_url = f"http://{REBINDING_NAME}:{allowed.port}/story.html"
        allowed.page("/story.html", publisher_page("Daily Publisher", story, article_url))
        forbidden.page("/story.html", "<html><body><p>internal admin page</p></body></html>")
        feeds.page("/feed.xml", rss("Rebinding", "http://127.0.0.1/", [(story.title, article_url, story.published)]),
                   "application/rss+xml")
        servers.append(SiteServer([feeds]).start())
        with RebindingDNS() as resolver:
            yield resolver, feeds, allowed, forbidden
    finally:
        for server in servers:
            server.stop()


def test_rebinding_name_is_fetched_from_the_checked_address_only(
    rebinding_web: tuple[RebindingDNS, Site, Site, Site], tmp_path: Path, redis_server_url: str, key_prefix: str
) -> None:
    resolver, feeds, allowed, forbidden = rebinding_web
    config = tmp_path / "sources.toml"
    config.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "5s"
retries = 0

[service]
health_port = 0
extract_workers = 1
shutdown_timeout = "20s"
dns_servers = "127.0.0.1:{resolver.port}"

[[sources]]
name = "rebinding"
feeds = ["{feeds.url('/feed.xml')}"]
every = "1h"
allow_networks = ["{ALLOWED}/32"]
""")
    client = redis.Redis.from_url(redis_server_url)
    keys = Keys(key_prefix)
    service = ServiceProcess(["run", "--config", str(config)], service_env(redis_server_url, key_prefix))
    try:
        service.health_port()
        wait_for(lambda: article_count(client, keys) >= 1, 90, "the article to be fetched and decided",
                 lambda: service.log)
        assert service.terminate() == 0, service.log[-4000:]
    finally:
        service.cleanup()
        client.close()

    assert forbidden.hits == Counter(), f"the rebinding answer was connected to: {forbidden.hits}\n{service.log}"
    assert allowed.hits["/story.html"] == 1
    assert resolver.answers[0] == ALLOWED, resolver.answers
    # The name does rebind: any resolution after the checked one gives the forbidden address.
    assert ask(resolver.port, REBINDING_NAME) == [FORBIDDEN]
