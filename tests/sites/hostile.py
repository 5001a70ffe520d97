"""A hostile web server for the bad-input tests: fixed bodies, endless and slow streams, bombs.

Unlike crawler.demo.site (whole bodies with a Content-Length), a route here may stream its body:
chunked with no end, or drip-fed under a Content-Length it never reaches. Counts what it sent.
"""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Body = bytes | Callable[[], Iterable[bytes]]


@dataclass
class Route:
    status: int = 200
    body: Body = b""
    """Bytes, or a function giving the chunks of a streamed body."""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    """Content-Length announced for a streamed body; None sends it chunked."""
    pause: float = 0.0
    """Seconds between the chunks of a streamed body."""


def endless(block: bytes) -> Callable[[], Iterable[bytes]]:
    """A body that never ends: the same block, forever."""
    return lambda: itertools.repeat(block)


def gzip_bomb(gigabytes: int = 2) -> bytes:
    """gzip data that expands to `gigabytes` GiB of zeros, about 1 MB per GiB compressed.

    Built as concatenated gzip members of 64 MiB each (valid gzip: every reader decompresses the
    members as one stream), which takes a fraction of a second instead of compressing 2 GiB.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = compressor.compress(bytes(64 << 20)) + compressor.flush()
    return member * (gigabytes * 16)


class HostileServer:
    """One loopback HTTP/1.1 server; unknown paths answer 404."""

    def __init__(self, host: str = "127.0.0.60") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        """Body bytes written per path (streamed bodies stop when the client hangs up)."""
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def start(self) -> HostileServer:
        self._server = ThreadingHTTPServer((self.host, 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="hostile", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path
            server.hits[path] += 1
            route = server.routes.get(path, Route(404, b"<html><body>not found</body></html>"))
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if isinstance(route.body, bytes):
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                    server.sent[path] += len(route.body)
                    return
                chunked = route.length is None
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(route.length))
                self.end_headers()
                for chunk in route.body():
                    if server._stopping.is_set():
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    self.wfile.flush()
                    server.sent[path] += len(chunk)
                    if route.pause:
                        time.sleep(route.pause)
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
