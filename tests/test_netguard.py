"""crawler.netguard: the SSRF rules, and the middleware refusing a redirect in a real Scrapy crawl."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import pytest

from crawler.netguard import (
    ALLOW_NETWORKS_META,
    FEED_URL_META,
    check_url,
    forbidden_reason,
    parse_dns_servers,
    parse_ip_literal,
    parse_networks,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def _refused(url: str, *, feed_url: str | None = None, allow: tuple[str, ...] = ()) -> str | None:
    return check_url(url, feed_url=feed_url, allow_networks=allow)


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"unexpected DNS lookup of {host!r}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.8.9.10:8080/x",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://[fe80::1%25eth0]/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://192.0.2.1/",
        # IPv4 inside IPv6: mapped, 6to4, NAT64.
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a00:1]/",
        # The notations inet_aton (and so getaddrinfo) accepts for 127.0.0.1.
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://0177.1/",
        "http://127.1/",
        "http://127.0.1/",
        "http://0x7F.0.0.1./",
        "http://0251.0376.0251.0376/",  # 169.254.169.254 in octal
    ],
)
def test_internal_addresses_are_refused_in_every_notation(url: str) -> None:
    reason = check_url(
        url, feed_url="https://news.example/feed.xml", allow_networks=(), resolve=_no_dns
    )
    assert reason is not None, url


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/",
        "https://1.1.1.1:8443/a?b=c",
        "http://[2606:4700:4700::1111]/",
        "http://0x08080808/",
        "http://[::ffff:8.8.8.8]/",
    ],
)
def test_public_addresses_are_allowed(url: str) -> None:
    assert check_url(url, feed_url=None, allow_networks=(), resolve=_no_dns) is None


def test_reason_names_the_address_and_what_it_is() -> None:
    assert _refused("http://2130706433/") == "127.0.0.1: loopback address"
    assert _refused("http://169.254.169.254/") == "169.254.169.254: cloud metadata service"
    reason = _refused("http://[::ffff:10.1.2.3]/")
    assert reason is not None and "private address" in reason and "10.1.2.3" in reason


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://8.8.8.8/x",
        "data:text/plain,hi",
        "s3://bucket/key",
        "gopher://8.8.8.8/",
    ],
)
def test_only_http_and_https_are_crawled(url: str) -> None:
    reason = _refused(url, feed_url=url)
    assert reason is not None and "scheme" in reason


def test_credentials_in_the_url_are_refused() -> None:
    # urllib reads the host as 8.8.8.8, Twisted's URI parser as "127.0.0.1:80@8.8.8.8": refuse both.
    assert _refused("http://127.0.0.1:80@8.8.8.8/") is not None
    assert _refused("http://user:pw@8.8.8.8/") is not None


def test_malformed_urls_are_refused() -> None:
    assert _refused("http://8.8.8.8:99999/") is not None
    assert _refused("http:///path-only") is not None
    assert _refused("not a url") is not None


def test_localhost_is_refused_through_dns() -> None:
    reason = _refused("http://localhost:6379/")
    assert reason is not None and "localhost" in reason and "loopback" in reason


def test_unresolvable_host_is_refused_with_a_reason() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    reason = check_url("https://nowhere.example/", feed_url=None, allow_networks=(), resolve=fails)
    assert reason is not None and "does not resolve" in reason
    empty = check_url(
        "https://nowhere.example/", feed_url=None, allow_networks=(), resolve=lambda h, p: []
    )
    assert empty is not None and "does not resolve" in empty


def test_every_resolved_address_must_pass() -> None:
    """A name with one public and one private address is refused: a connection may use either."""

    def both(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]

    reason = check_url("https://mixed.example/", feed_url=None, allow_networks=(), resolve=both)
    assert reason is not None and "10.0.0.7" in reason
    assert (
        check_url(
            "https://public.example/",
            feed_url=None,
            allow_networks=(),
            resolve=lambda h, p: ["93.184.216.34", "2606:2800:220:1::1"],
        )
        is None
    )


def test_same_host_as_the_feed_is_allowed() -> None:
    feed = "http://127.0.0.1:8000/feed.xml"
    assert _refused("http://127.0.0.1:8000/article/1", feed_url=feed) is None
    assert _refused("http://127.0.0.1:8001/article/1", feed_url=feed) is None  # same host, other port
    assert _refused("https://127.0.0.1/article/1", feed_url=feed) is None
    assert _refused("http://127.0.0.2:8000/article/1", feed_url=feed) is not None  # other host
    assert _refused("http://localhost:8000/article/1", feed_url=feed) is not None  # another name for it
    assert _refused("http://2130706433:8000/article/1", feed_url=feed) is not None  # another notation
    # Letter case and a trailing dot do not make two hosts of one.
    assert _refused("http://LOCALHOST./a", feed_url="http://localhost:80/feed") is None


def test_allow_networks_admit_internal_addresses() -> None:
    assert _refused("http://10.1.2.3/", allow=("10.0.0.0/8",)) is None
    assert _refused("http://[::ffff:10.1.2.3]/", allow=("10.0.0.0/8",)) is None
    assert _refused("http://10.1.2.3/", allow=("192.168.0.0/16", "fd00::/8")) is not None
    assert _refused("http://[fd00::5]/", allow=("fd00::/8",)) is None
    assert _refused("http://169.254.169.254/", allow=("169.254.169.254/32",)) is None


def test_bad_allow_networks_are_named() -> None:
    with pytest.raises(ValueError, match="not-a-cidr"):
        parse_networks(("10.0.0.0/8", "not-a-cidr"))


def _libc_numeric_host(host: str) -> str | None:
    """What the C library makes of host as a number (AI_NUMERICHOST: never a DNS query)."""
    try:
        infos = socket.getaddrinfo(
            host, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
        )
    except (OSError, UnicodeError):
        return None
    return str(infos[0][4][0])


@pytest.mark.parametrize(
    "host",
    [
        "0x7f.1",
        "127.1",
        "2130706433",
        "0177.0.0.1",
        "0X7F.0.0.1",
        "10.0x10.0300",
        "1.2.65535",
        "0xffffffff",
        "4294967295",
        "00000000000000000177.1",
        "0xA.0Xb.0xc.0xD",
        "0",
        "00",
        "4294967296",
        "256.1.1.1",
        "1.2.3.4.5",
        "08.1.1.1",
        "1..2",
        "1.2.65536",
        "0x100.1",
        "0x",
        "0x0x1",
        "-1",
        "1e2",
        "example.com",
    ],
)
def test_ip_literal_parsing_matches_the_c_library(host: str) -> None:
    """The guard reads numeric hosts exactly as the resolver the downloader uses would."""
    parsed = parse_ip_literal(host)
    assert (str(parsed) if parsed is not None else None) == _libc_numeric_host(host)


def test_forbidden_reason_on_addresses() -> None:
    assert forbidden_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert forbidden_reason(ipaddress.ip_address("fec0::1")) == "site-local address"
    assert forbidden_reason(ipaddress.ip_address("fd00:ec2::254")) == "cloud metadata service"


def test_dns_servers_setting_is_parsed_with_ports() -> None:
    assert parse_dns_servers("") == []
    assert parse_dns_servers("10.0.0.2, 127.0.0.1:5353,[fd00::53]:5300, ::1") == [
        ("10.0.0.2", 53), ("127.0.0.1", 5353), ("fd00::53", 5300), ("::1", 53)]


@pytest.mark.parametrize("text", ["dns.example", "10.0.0.2:dns", "10.0.0.2:70000", "[::1]x", "10.0.0.300"])
def test_bad_dns_servers_are_named(text: str) -> None:
    with pytest.raises(ValueError, match="DNS server"):
        parse_dns_servers(text)


# --- a real crawl: the middleware on feed entries and on redirect targets ----------------------

SPIDER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    feed_url, out_path = sys.argv[1], sys.argv[2]
    outcome = {"fetched": [], "refused": [], "failed": []}

    class FeedSpider(Spider):
        name = "netguard-test"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.feed_urls = [feed_url]  # the configured feed: trusted for robots.txt too
            self.allow_networks = []

        async def start(self):
            yield Request(feed_url, callback=self.parse_feed)

        def parse_feed(self, response):
            for link in response.xpath("//item/link/text()").getall():
                yield Request(link, callback=self.parse_page, errback=self.failed,
                              meta={%(feed_meta)r: response.url, %(allow_meta)r: []})

        def parse_page(self, response):
            outcome["fetched"].append(response.url)

        def failed(self, failure):
            outcome["refused" if "SSRF guard" in str(failure.value) else "failed"].append(
                [failure.request.url, type(failure.value).__name__, str(failure.value)])

    process = CrawlerProcess({
        "DOWNLOADER_MIDDLEWARES": {"crawler.netguard.SSRFGuardMiddleware": 40},
        "ROBOTSTXT_OBEY": True,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "RETRY_ENABLED": False,
        "DOWNLOAD_TIMEOUT": 10,
        "LOG_LEVEL": "INFO",
    })
    process.crawl(FeedSpider)
    process.start()
    with open(out_path, "w") as handle:
        json.dump(outcome, handle)
    """
) % {"feed_meta": FEED_URL_META, "allow_meta": ALLOW_NETWORKS_META}


class _Site:
    """A local HTTP server that records the paths it was asked for."""

    def __init__(self, host: str, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                status, headers, body = routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites() -> Iterator[tuple[_Site, _Site]]:
    """Host A (127.0.0.1) serves the feed; host B (127.0.0.2, another private host) must see nothing."""
    secret_routes = {
        path: (200, {"Content-Type": "text/html"}, b"<html>internal</html>")
        for path in ("/secret", "/direct", "/hex", "/robots.txt")
    }
    page = (200, {"Content-Type": "text/html"}, b"<html><body><p>An article.</p></body></html>")
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {"/article-1": page, "/article-2": page}
    with _Site("127.0.0.2", secret_routes) as host_b, _Site("127.0.0.1", routes) as host_a:
        b_port = host_b.server.server_address[1]
        routes["/moved"] = (302, {"Location": f"{host_b.base}/secret"}, b"")
        routes["/moved-home"] = (302, {"Location": f"{host_a.base}/article-2"}, b"")
        links = [
            f"{host_a.base}/article-1",  # same host as the feed: fetched
            f"{host_a.base}/moved-home",  # redirect within host A: fetched
            f"{host_a.base}/moved",  # redirect to host B: refused at the redirect
            f"{host_b.base}/direct",  # host B listed directly: refused
            f"http://0x7f.0.0.2:{b_port}/hex",  # host B in hex notation: refused
            f"http://localhost:{b_port}/by-name",  # a name that resolves to loopback: refused
        ]
        items = "".join(f"<item><title>t</title><link>{link}</link></item>" for link in links)
        feed = f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'
        routes["/feed.xml"] = (200, {"Content-Type": "application/rss+xml"}, feed.encode())
        yield host_a, host_b


def test_crawl_refuses_redirect_to_another_private_host(
    sites: tuple[_Site, _Site], tmp_path: Path
) -> None:
    host_a, host_b = sites
    script = tmp_path / "crawl.py"
    script.write_text(SPIDER_SCRIPT)
    out = tmp_path / "outcome.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HOME": str(tmp_path)}
    # CrawlerProcess starts a reactor, which can happen once per process: hence the subprocess.
    proc = subprocess.run(
        [sys.executable, str(script), f"{host_a.base}/feed.xml", str(out)],
        cwd=tmp_path,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads(out.read_text())

    assert sorted(outcome["fetched"]) == [f"{host_a.base}/article-1", f"{host_a.base}/article-2"]
    assert host_b.hits == [], "the guard let a request reach the other private host"
    refused = {url: reason for url, kind, reason in outcome["refused"]}
    b_port = host_b.server.server_address[1]
    assert set(refused) == {
        f"{host_b.base}/secret",  # the redirect target, not the listed URL
        f"{host_b.base}/direct",
        f"http://0x7f.0.0.2:{b_port}/hex",
        f"http://localhost:{b_port}/by-name",
    }, outcome
    assert "loopback" in refused[f"http://localhost:{b_port}/by-name"]
    assert all(kind == "IgnoreRequest" for _, kind, _ in outcome["refused"])
    assert outcome["failed"] == []
    assert "/moved" in host_a.hits and "/robots.txt" in host_a.hits
