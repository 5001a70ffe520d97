"""The inbox: a Redis stream of extracted articles waiting for a decision (the crash-safe handoff).

An entry is an article's fields as strings; one fingerprinted in the extraction workers carries its
fingerprint too (FINGERPRINT_FIELDS), so the decider only packs it. Entries without one (written
before the workers fingerprinted, or when a worker could not) are fingerprinted by the decider.

A crawl adds an article to the inbox and marks its URL seen in one transaction; the decider reads
the inbox through a consumer group and acknowledges an entry only after the engine has decided it.
An entry read by a process that then died stays pending and is claimed again, and the engine's
decisions are idempotent, so every fetched article is decided at least once and queued at most once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from dedup.article import Article
from dedup.engine import Fingerprinted
from dedup.keys import Keys
from dedup.signature import BITS, LEAD_BITS, LEAD_PERM, NUM_PERM, Fingerprint
from dedup.urls import url_id

if TYPE_CHECKING:
    from crawler.health import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

GROUP = "deciders"
_FIELDS = ("url", "text", "title", "final_url", "published", "canonical_link", "source_link", "site",
           "fetched_at", "source")


_FINGERPRINT_TEXT = "fp_clean_text"
_FINGERPRINT_COUNTS = ("fp_n_tokens", "fp_prose_words", "fp_n_shingles", "fp_boilerplate_lines")
_FINGERPRINT_BYTES = ("fp_content_hash", "fp_signature", "fp_lead_signature", "fp_second_lead_signature")
FINGERPRINT_FIELDS = (_FINGERPRINT_TEXT, *_FINGERPRINT_COUNTS, *_FINGERPRINT_BYTES)
"""The fields an entry fingerprinted by an extraction worker adds to its article's."""
# Stored signatures (dedup.signature.stored): BITS per full-text value, LEAD_BITS per opening value.
_SIGNATURE_BYTES = {"fp_signature": (BITS // 8 * NUM_PERM,), "fp_lead_signature": (LEAD_BITS // 8 * LEAD_PERM,),
                    "fp_second_lead_signature": (0, LEAD_BITS // 8 * LEAD_PERM), "fp_content_hash": (8,)}


def encode(item: Article | Fingerprinted) -> dict[str, str | bytes]:
    """Article (and its fingerprint, when it has one) -> stream fields (strings and bytes; never pickled)."""
    article = item.article if isinstance(item, Fingerprinted) else item
    fields: dict[str, str | bytes] = {}
    for name in _FIELDS:
        value = getattr(article, name)
        if value is None:
            continue
        fields[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    if isinstance(item, Fingerprinted):
        fp = item.fingerprint
        fields[_FINGERPRINT_TEXT] = fp.clean_text
        for name, count in zip(_FINGERPRINT_COUNTS, (fp.n_tokens, fp.prose_words, fp.n_shingles,
                                                      item.boilerplate_lines), strict=True):
            fields[name] = str(count)
        for name, raw in zip(_FINGERPRINT_BYTES, (fp.content_hash, fp.signature, fp.lead_signature,
                                                   fp.second_lead_signature), strict=True):
            fields[name] = raw
    return fields


def decode(fields: dict[bytes, bytes]) -> Article:
    """Stream fields -> Article (raises ValueError/KeyError on a malformed entry)."""
    values = {key.decode(): value.decode("utf-8", "replace") for key, value in fields.items()
              if not key.startswith(b"fp_")}
    if "url" not in values:
        raise KeyError("url")
    kwargs: dict[str, object] = {name: values[name] for name in _FIELDS if name in values}
    for name in ("published", "fetched_at"):
        if name in kwargs:
            kwargs[name] = datetime.fromisoformat(str(kwargs[name]))
    kwargs.setdefault("text", "")
    return Article(**kwargs)  # type: ignore[arg-type]


def decode_item(fields: dict[bytes, bytes]) -> Article | Fingerprinted:
    """Stream fields -> the article, fingerprinted when the entry carries its fingerprint (raises
    ValueError/KeyError on a malformed entry)."""
    article = decode(fields)
    if _FINGERPRINT_TEXT.encode() not in fields:
        return article
    raw = {name: fields[name.encode()] for name in FINGERPRINT_FIELDS}
    for name, lengths in _SIGNATURE_BYTES.items():
        if len(raw[name]) not in lengths:
            raise ValueError(f"{name}: {len(raw[name])} bytes")
    n_tokens, prose_words, n_shingles, boilerplate_lines = (int(raw[name]) for name in _FINGERPRINT_COUNTS)
    fingerprint = Fingerprint(
        clean_text=raw[_FINGERPRINT_TEXT].decode("utf-8", "replace"), n_tokens=n_tokens, prose_words=prose_words,
        n_shingles=n_shingles, content_hash=raw["fp_content_hash"], signature=raw["fp_signature"],
        lead_signature=raw["fp_lead_signature"], second_lead_signature=raw["fp_second_lead_signature"],
    )
    return Fingerprinted(article, fingerprint, boilerplate_lines)


def seen_day(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400)


def instance_name(configured: str = "") -> str:
    """This process in the consumer group and in leases: host:pid (or the configured name:pid)."""
    return f"{configured or socket.gethostname()}:{os.getpid()}"


def _is_dead_local(consumer: str) -> bool:
    """True for a consumer name of a process on this host that no longer runs."""
    host, _, pid = consumer.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Entry:
    entry_id: bytes
    article: Article | None
    problem: str = ""
    fingerprinted: Fingerprinted | None = None
    """The article with the fingerprint an extraction worker computed (None: the decider computes it)."""

    @property
    def item(self) -> Article | Fingerprinted | None:
        """What the engine decides: the fingerprinted article, else the article."""
        return self.fingerprinted or self.article

    def with_article(self, article: Article) -> Article | Fingerprinted:
        """The item with its article replaced by `article` (the same article, validated)."""
        return replace(self.fingerprinted, article=article) if self.fingerprinted is not None else article


class Inbox:
    """The inbox stream and the seen-set, on one Redis client."""

    def __init__(self, client: redis.Redis, keys: Keys, *, retention: float, consumer: str) -> None:
        self.client = client
        self.keys = keys
        self.retention = retention
        self.consumer = consumer
        self._days = max(1, int(retention // 86400) + 1)

    # Crawling side

    def seen(self, urls: list[str], now: float | None = None) -> list[bool]:
        """Which of these (canonical) URLs were already fetched and handed on within the retention window."""
        if not urls:
            return []
        ids = [url_id(url) for url in urls]
        today = seen_day(now)
        pipe = self.client.pipeline(transaction=False)
        for day in range(today - self._days, today + 1):
            pipe.smismember(self.keys.seen(day), ids)
        result = [False] * len(urls)
        for flags in pipe.execute():
            result = [old or bool(flag) for old, flag in zip(result, flags, strict=True)]
        return result

    def mark_seen(self, urls: Iterable[str], pipe: redis.client.Pipeline | None = None) -> None:
        """Record URLs as handled (no article, or handed to the inbox) so later crawls skip them."""
        ids = [url_id(url) for url in urls]
        if not ids:
            return
        own = pipe is None
        pipe = pipe if pipe is not None else self.client.pipeline(transaction=False)
        key = self.keys.seen(seen_day())
        pipe.sadd(key, *ids)
        pipe.expire(key, int(self.retention + 86400))
        if own:
            pipe.execute()

    def put(self, article: Article | Fingerprinted, seen_url: str) -> bytes:
        """Add one article, then mark its URL seen."""
        return self.put_many([(article, seen_url)])[0]

    def put_many(self, items: list[tuple[Article | Fingerprinted, str]]) -> list[bytes]:
        """Add articles (one round trip), then mark their URLs seen (another).

        Not one transaction: the inbox and the day's seen-set are in different Redis Cluster slots. The
        order makes a crash between the two harmless: the URLs are fetched again, and deciding an
        article already decided returns its decision (its id is its URL's), so nothing is queued twice;
        the other order could mark an article seen that never reached the inbox.
        """
        pipe = self.client.pipeline(transaction=False)
        for article, _ in items:
            pipe.xadd(self.keys.inbox, encode(article))  # type: ignore[arg-type]
        entry_ids = pipe.execute()
        self.mark_seen([url for _, url in items])
        return entry_ids  # type: ignore[no-any-return]

    def length(self) -> int:
        return int(self.client.xlen(self.keys.inbox))

    # Deciding side

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.keys.inbox, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int = 64, block_ms: int = 1000) -> list[Entry]:
        """New entries for this consumer (waits up to block_ms when there are none)."""
        reply = self.client.xreadgroup(GROUP, self.consumer, {self.keys.inbox: ">"}, count=count, block=block_ms)
        return self._entries(reply[0][1] if reply else [])

    def reclaim(self, min_idle: float, count: int = 64) -> list[Entry]:
        """Entries read by a consumer that died: now, for dead processes on this host; after min_idle, any."""
        entries: list[Entry] = []
        for info in self.client.xinfo_consumers(self.keys.inbox, GROUP):
            name = _text(info.get("name") or info.get(b"name"))
            if int(info.get("pending") or info.get(b"pending") or 0) and _is_dead_local(name):
                pending = self.client.xpending_range(self.keys.inbox, GROUP, min="-", max="+", count=count,
                                                     consumername=name)
                ids = [item["message_id"] for item in pending]
                if ids:
                    entries += self._entries(self.client.xclaim(self.keys.inbox, GROUP, self.consumer, 0, ids))
            if _is_dead_local(name) and not entries:
                self.client.xgroup_delconsumer(self.keys.inbox, GROUP, name)
            if len(entries) >= count:
                return entries
        reply = self.client.xautoclaim(self.keys.inbox, GROUP, self.consumer, int(min_idle * 1000), "0-0", count=count)
        return entries + self._entries(reply[1])

    def own_pending(self, count: int = 64) -> list[Entry]:
        """Entries this consumer read but has not acknowledged."""
        reply = self.client.xreadgroup(GROUP, self.consumer, {self.keys.inbox: "0"}, count=count)
        return self._entries(reply[0][1] if reply else [])

    def ack(self, entry_ids: list[bytes]) -> None:
        """Acknowledge decided entries and remove them from the stream."""
        if entry_ids:
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(self.keys.inbox, GROUP, *entry_ids)
            pipe.xdel(self.keys.inbox, *entry_ids)
            pipe.execute()

    def _entries(self, raw: list) -> list[Entry]:
        entries: list[Entry] = []
        for entry_id, fields in raw:
            if fields is None:  # deleted while pending
                entries.append(Entry(entry_id, None, "entry deleted"))
                continue
            try:
                item = decode_item(fields)
                if isinstance(item, Fingerprinted):
                    entries.append(Entry(entry_id, item.article, fingerprinted=item))
                else:
                    entries.append(Entry(entry_id, item))
            except (KeyError, ValueError, TypeError) as exc:
                entries.append(Entry(entry_id, None, f"malformed inbox entry: {exc!r}"))
        return entries


class InboxWriter:
    """The crawl side's writes to the inbox, batched: articles handed over while a write is in
    flight go together in the next one, so a busy crawl pays one thread hop and one round trip per
    batch rather than per article, and a quiet one waits for nothing. `put` returns once its article
    is in Redis (retrying while Redis is away, like every call through redis_retry)."""

    def __init__(self, inbox: Inbox, *, metrics: Metrics | None = None, stopping: asyncio.Event | None = None,
                 max_batch: int = 64) -> None:
        self.inbox = inbox
        self.metrics = metrics
        self.stopping = stopping
        self.max_batch = max_batch
        self._waiting: list[tuple[Article | Fingerprinted, str, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, article: Article | Fingerprinted, seen_url: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((article, seen_url, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # Shielded: a cancelled caller does not take its article out of a write already under way.
        await asyncio.shield(future)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            try:
                await redis_retry(self.inbox.put_many, [(article, url) for article, url, _ in batch],
                                  stage="inbox", metrics=self.metrics, stopping=self.stopping)
            except BaseException as exc:
                # Stopped while Redis is away (or the loop is closing): these articles were not
                # written, their URLs not marked seen, so the next crawl fetches them again.
                for _, _, future in batch + self._waiting:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else Stopped(repr(exc)))
                self._waiting = []
                if not isinstance(exc, Exception):
                    raise
                return
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError,
               # A cluster failing over or moving slots: the client follows once the cluster settles.
               redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
               redis.exceptions.SlotNotCoveredError)
"""What redis_retry waits out: Redis unreachable, loading, or a cluster between layouts."""


class Stopped(Exception):
    """Raised by redis_retry when the service stops while Redis is unreachable."""


async def redis_retry(
    call: Callable[..., T], *args: Any, stage: str, metrics: Metrics | None = None,
    stopping: asyncio.Event | None = None, backoff: float = 0.5, max_backoff: float = 30.0,
) -> T:
    """Run a blocking Redis call in a thread, retrying with backoff while Redis is unreachable."""
    delay = backoff
    failures = 0
    while True:
        try:
            result = await asyncio.to_thread(call, *args)
        except UNREACHABLE as exc:
            failures += 1
            if metrics is not None:
                metrics.redis_errors.labels(stage).inc()
                metrics.redis_up.set(0)
            if stopping is not None and stopping.is_set():
                raise Stopped(f"{stage}: Redis unreachable while stopping: {exc}") from exc
            level = logging.WARNING if failures == 1 or failures % 10 == 0 else logging.DEBUG
            log.log(level, "Redis unreachable (%s, attempt %d): %s; retrying in %.1fs", stage, failures, exc, delay)
            await _sleep_or_stop(delay, stopping)
            delay = min(max_backoff, delay * 2)
            continue
        if failures:
            log.warning("Redis reachable again (%s) after %d failed attempts", stage, failures)
        if metrics is not None:
            metrics.redis_up.set(1)
        return result


async def _sleep_or_stop(delay: float, stopping: asyncio.Event | None) -> None:
    if stopping is None:
        await asyncio.sleep(delay)
        return
    try:
        await asyncio.wait_for(stopping.wait(), delay)
    except TimeoutError:
        pass
