"""Service metrics (Prometheus) and the /healthz and /metrics endpoint on a loopback port."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


class Metrics:
    """Every counter the crawler and the decider keep, in one private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.crawls = Counter("newsdedup_crawls", "Crawls by source and outcome", ["source", "outcome"], registry=r)
        self.pages = Counter("newsdedup_pages_fetched", "Responses received", ["source", "kind"], registry=r)
        self.listing_entries = Counter("newsdedup_listing_entries", "Article URLs listed by feeds and sitemaps",
                                       ["source"], registry=r)
        self.skipped = Counter("newsdedup_pages_skipped", "Pages not fetched or not extracted, by reason",
                               ["source", "reason"], registry=r)
        self.fetch_errors = Counter("newsdedup_fetch_errors", "Failed fetches by reason", ["source", "reason"],
                                    registry=r)
        self.extracted = Counter("newsdedup_articles_extracted", "Articles extracted", ["source"], registry=r)
        self.extraction_failures = Counter("newsdedup_extraction_failures", "Pages with no article extracted",
                                           ["source", "reason"], registry=r)
        self.decisions = Counter("newsdedup_decisions", "Engine decisions", ["source", "decision"], registry=r)
        self.dead_letters = Counter("newsdedup_dead_letters", "Records that could not be decided, put on the "
                                    "dead-letter stream, by source and stage", ["source", "stage"], registry=r)
        self.dead_letters_waiting = Gauge("newsdedup_dead_letters_waiting", "Records on the dead-letter stream",
                                          registry=r)
        self.redis_errors = Counter("newsdedup_redis_errors", "Redis operations that failed and were retried",
                                    ["stage"], registry=r)
        self.redis_up = Gauge("newsdedup_redis_up", "1 while Redis answers", registry=r)
        self.stream_length = Gauge("newsdedup_stream_length", "Entries on the canonical stream", registry=r)
        self.inbox_length = Gauge("newsdedup_inbox_length", "Articles waiting for a decision", registry=r)
        self.decider_cache_bytes = Gauge("newsdedup_decider_cache_bytes", "Memory the decider's cache of "
                                         "records and clusters holds (dedup.decider.ValueCache)", registry=r)
        self.decider_cache_reads = Counter("newsdedup_decider_cache_reads", "Records and clusters looked up "
                                           "in the decider's cache, by result (hit: no Redis read)", ["result"],
                                           registry=r)
        self.crawls_running = Gauge("newsdedup_crawls_running", "Crawls in progress", registry=r)
        self.last_crawl = Gauge("newsdedup_last_crawl_timestamp", "End of the last crawl", ["source"], registry=r)
        self.consumer_lag = Gauge("newsdedup_consumer_lag", "Canonical stream entries not yet delivered to a "
                                  "consumer group (Redis 7 and later)", ["group"], registry=r)
        self.consumer_pending = Gauge("newsdedup_consumer_pending", "Canonical stream entries delivered to a "
                                      "consumer group and not acknowledged", ["group"], registry=r)
        self.redis_up.set(0)

    def observe_groups(self, client: redis.Redis, stream_key: str) -> None:
        """Set the lag and pending gauges from the stream's consumer groups (none before it exists)."""
        try:
            groups = client.xinfo_groups(stream_key)
        except redis.ResponseError:  # no such key yet
            return
        for group in groups:
            name = group["name"].decode("utf-8", "replace") if isinstance(group["name"], bytes) else str(group["name"])
            self.consumer_pending.labels(name).set(int(group["pending"]))
            if group.get("lag") is not None:
                self.consumer_lag.labels(name).set(int(group["lag"]))

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (for tests and the CLI)."""
        return self.registry.get_sample_value(name, labels) or 0.0


class HealthServer:
    """A tiny HTTP/1.1 server: GET /healthz (JSON, 200 or 503) and GET /metrics (Prometheus text)."""

    def __init__(self, metrics: Metrics, status: Callable[[], dict[str, object]], host: str, port: int) -> None:
        self.metrics = metrics
        self.status = status
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                await self._respond(writer, 405, b"method not allowed\n", "text/plain")
            elif path == "/healthz":
                status = self.status()
                code = 200 if status.get("status") == "ok" else 503
                status["time"] = time.time()
                await self._respond(writer, code, json.dumps(status).encode() + b"\n", "application/json")
            elif path == "/metrics":
                await self._respond(writer, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
            else:
                await self._respond(writer, 404, b"not found\n", "text/plain")
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, code: int, body: bytes, content_type: str) -> None:
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[code]
        head = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n")
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
