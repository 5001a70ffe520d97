"""The crawler daemon: one asyncio loop runs the scheduler, Scrapy's crawls and the decider."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from crawler import control
from crawler.config import Settings, SourceSettings
from crawler.health import HealthServer, Metrics
from crawler.inbox import GROUP, Entry, Inbox, Stopped, instance_name, redis_retry
from crawler.lease import LeaseKeeper, Leases
from crawler.logs import about, configure_logging  # noqa: F401 - configure_logging: callers import it here
from crawler.settings import ASYNCIO_REACTOR, scrapy_settings
from crawler.spiders import CrawlJob, SourceSpider, stop_crawl
from crawler.workers import FingerprintSpec
from dedup.article import Article, Decision
from dedup.deadletter import DeadLetters, decide_each, error_text, server_trouble
from dedup.engine import Engine, EngineConfig, Fingerprinted
from dedup.index import IndexParams, IndexParamsMismatch
from dedup.keys import Keys
from dedup.validate import InvalidArticle, shown, validate

log = logging.getLogger(__name__)


def _package_version() -> str:
    """This package's version, shown per instance by `newsdedup status`."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsdedup")
    except PackageNotFoundError:
        return "unknown"


STARTUP_GAP = 5.0
"""At start, a crawl of the source that completed this recently (on any instance) is not repeated."""
LEASE_LOST = "lease_lost"
"""The outcome of a crawl stopped because another instance took its source's lease."""
HEARTBEAT = 5.0
MAX_DELIVERIES = 5
"""An inbox entry handed out this often without a decision goes to the dead letters (see Service._claimed)."""
VERSION = _package_version()
CONTROL_POLL = 1.0
"""Seconds between two looks at the operators' crawl-now requests (crawler.control)."""
DECIDE_BATCH = 64
"""Inbox entries the decider takes at once."""
DECIDE_GATHER = 1.0
"""After a part batch, at most this many seconds the decider lets the inbox fill while this instance crawls: a
batch shares its round trips and its thread hops (reading, deciding, acknowledging) and the engine's fixed cost
per batch (about 4 ms of CPU, more than a page's own decision), so batches of 2-3 pages, as a fixed 0.25 s gave on a
busy machine, cost twice the CPU per page of full ones. It ends as soon as a full batch was written here, or no
crawl runs here (nothing more is coming from this instance)."""
_TICK_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Service:
    """Schedules each source's crawls, decides what they fetch, and shuts down cleanly on a signal."""

    def __init__(self, settings: Settings, client: redis.Redis, *, sources: list[str] | None = None,
                 once: bool = False, health: bool = True, executor: Executor | None = None,
                 held_signals: list[int] | None = None) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.redis.prefix)
        self.sources = [s for s in settings.sources if sources is None or s.name in sources]
        self.once = once
        self.health_enabled = health
        self.metrics = Metrics()
        self.name = instance_name(settings.service.instance)
        self.inbox = Inbox(client, self.keys, retention=settings.dedup.retention, consumer=self.name)
        self.leases = Leases(client, self.keys, ttl=settings.service.lease_ttl,
                             name=settings.service.instance or socket.gethostname())
        self.lease_keeper = LeaseKeeper(self.leases)
        self.stopping = asyncio.Event()
        self.crawls_done = asyncio.Event()
        self.results: dict[str, str] = {}
        self.decisions: list[Decision] = []
        self.health_port: int | None = None
        self._engine: Engine | None = None
        self._cache_seen = (0, 0)
        """The decider cache's hits and misses the metrics have counted."""
        self._executor: Executor | None = executor
        self._fingerprint_spec = (FingerprintSpec.of(client, self.keys, self._engine_config())
                                  if settings.service.fingerprint_in_workers else None)
        """How the extraction workers fingerprint for this service's engine (None: the decider does it)."""
        self._running: dict[str, tuple[Any, CrawlJob]] = {}
        """The crawls in progress here: (Scrapy crawler, job) per source."""
        self._crawl_loops: dict[str, asyncio.Task[None]] = {}
        self._missed: dict[str, tuple[float, float]] = {}
        """Per source, the latest tick that came while it was being crawled here: (its slot, when it came)."""
        self._listed_at: dict[str, float] = {}
        """Per source, when the last crawl here requested its feeds and sitemaps (0: it did not)."""
        self._decider_alive = False
        self._written = 0
        """Articles this instance's crawls put in the inbox since the decider last read it."""
        self._gathered = asyncio.Event()
        """Ends the decider's wait for a fuller batch: set once _written reaches a full batch, when the last crawl
        running here ends, and on stop."""
        self._attempted: set[str] = set()
        self._started = time.time()
        self._scheduler: Any = None
        self._paused: set[str] = set()
        """Sources an operator paused (crawler.control), as last read from Redis."""
        self._held_signals = held_signals if held_signals is not None else []
        """SIGTERM/SIGINT noted before run() handles them (see crawler.cli.service): acted on once it does."""

    # Lifecycle

    async def run(self) -> int:
        """Run until stopped by a signal (or, with once=True, until every source was crawled once)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from scrapy.crawler import AsyncCrawlerRunner

        loop = asyncio.get_running_loop()
        before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        for signum in before:
            loop.add_signal_handler(signum, self.stop, signum)
        while self._held_signals:
            self.stop(self._held_signals.pop(0))
        health = None
        if self.health_enabled:
            health = HealthServer(self.metrics, self.status, self.settings.service.health_host,
                                  self.settings.service.health_port)
            try:
                self.health_port = await health.start()
            except OSError as exc:  # the port is taken (another instance?) or not ours to bind
                log.error("cannot serve /healthz on %s:%s: %s", self.settings.service.health_host,
                          self.settings.service.health_port, exc.strerror or exc)
                for signum in before:
                    loop.remove_signal_handler(signum)
                return 1
        if self._executor is None:
            self._executor = await asyncio.to_thread(extraction_pool, self.settings.service.extract_workers)
        install_resolver(self.settings.service.dns_servers)
        # Only the reactor here: Scrapy merges the runner's settings into each crawl's, over the source's own
        # (its concurrency, delay and other [crawl] overrides) at the same priority.
        self.runner = AsyncCrawlerRunner({"TWISTED_REACTOR": ASYNCIO_REACTOR})
        decider = asyncio.create_task(self._decide_forever(), name="decider")
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        scheduler = self._scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        try:
            if self.once:
                await asyncio.gather(*(self.crawl(source, min_gap=0.0) for source in self.sources))
                self.crawls_done.set()
                self.stopping.set()
                await asyncio.wait([decider])
            else:
                await self._read_paused()  # before the first ticks, which come at once
                now = datetime.now(UTC)
                for source in self.sources:
                    scheduler.add_job(self._tick, _trigger(source), args=[source], id=source.name,
                                      name=f"crawl {source.name}", max_instances=1, coalesce=True,
                                      misfire_grace_time=None, next_run_time=now)
                scheduler.start()
                try:
                    await asyncio.to_thread(control.set_next_crawls, self.client, self.keys, self._next_crawls())
                except redis.RedisError:
                    pass  # the heartbeat writes them again
                requests = asyncio.create_task(self._control(), name="control")
                heartbeat.add_done_callback(lambda _task: requests.cancel())
                log.info("service %s started: %d sources, health port %s", self.name, len(self.sources),
                         self.health_port)
                await self.stopping.wait()
                # No more ticks. Shut down only at the end: that cancels ticks just submitted, with tracebacks.
                scheduler.pause()
            return await self._shutdown(decider, heartbeat, health)
        except IndexParamsMismatch as exc:
            log.error("refusing to run: %s", exc)
            return 2
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            for signum, handler in before.items():
                loop.remove_signal_handler(signum)
                if handler is not None:
                    signal.signal(signum, handler)  # not the default: a late SIGTERM must not kill the exit

    def stop(self, signum: int | None = None) -> None:
        if not self.stopping.is_set():
            name = signal.Signals(signum).name if signum else "stop"
            log.info("%s received: stopping scheduling, finishing in-flight work (at most %.0fs)", name,
                        self.settings.service.shutdown_timeout)
            self.stopping.set()
            self._gathered.set()
        elif signum == signal.SIGINT:
            log.warning("second interrupt: exiting now; unfinished work is picked up on the next start")
            os._exit(1)

    async def _shutdown(self, decider: asyncio.Task[None], heartbeat: asyncio.Task[None],
                        health: HealthServer | None) -> int:
        deadline = time.monotonic() + self.settings.service.shutdown_timeout
        for crawler, job in list(self._running.values()):
            asyncio.ensure_future(stop_crawl(crawler, job, "shutdown"))
        crawl_tasks = [task for task in asyncio.all_tasks() if task.get_name().startswith("crawl:")]
        if crawl_tasks:
            await asyncio.wait(crawl_tasks, timeout=max(0.1, 0.7 * (deadline - time.monotonic())))
        self.crawls_done.set()
        try:
            await asyncio.wait_for(decider, timeout=max(0.1, deadline - time.monotonic() - 0.5))
        except TimeoutError:
            try:
                log.warning("shutdown: %d articles left in the inbox for the next start", self.inbox_length())
            except redis.RedisError:
                log.warning("shutdown: articles may be left in the inbox for the next start (Redis unreachable)")
        for task in (heartbeat, *crawl_tasks):
            task.cancel()
        await asyncio.to_thread(self.lease_keeper.stop)
        if health is not None:
            await health.stop()
        if self._executor is not None:
            # Waited for, within the deadline: after shutdown(wait=False) the pool's manager thread may close its
            # wakeup pipe while Python's exit hook writes to it ("Bad file descriptor" at exit, CPython 3.11).
            closing = asyncio.ensure_future(asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True))
            await asyncio.wait([closing], timeout=max(0.5, deadline - time.monotonic()))
        try:
            self.client.hdel(self.keys.instances, self.name)
        except redis.RedisError:
            pass
        log.info("service %s stopped", self.name)
        return 0

    # Crawling

    async def _tick(self, source: SourceSettings) -> None:
        """The scheduler's job: crawl the source now, or, while its last crawl still runs, as soon as that
        ends (the ticks missed meanwhile coalesce into that one crawl). Never two crawls at once."""
        if self.stopping.is_set():
            return
        if source.name in self._paused:  # kept current by _control (no Redis round trip in a tick)
            log.debug("paused: tick skipped", extra=about(source.name))
            self.results[source.name] = "paused"
            return
        slot = _slot(source)
        loop = self._crawl_loops.get(source.name)
        if loop is not None and not loop.done():
            if source.name not in self._missed:
                log.debug("still crawling at its tick; crawling again when this crawl ends, unless it had not "
                          "requested its feeds yet", extra=about(source.name))
            # When the tick was due, not when it runs: a busy loop runs it late (seconds, on a loaded
            # machine), and a crawl that listed the feeds in between has served it.
            self._missed[source.name] = (slot, _due(source))
            return
        self._crawl_loops[source.name] = asyncio.create_task(self._crawl_ticks(source, slot),
                                                             name=f"crawl:{source.name}")

    async def _crawl_ticks(self, source: SourceSettings, slot: float) -> None:
        """Crawl for this tick's slot, then for the latest tick that came meanwhile, until none did.

        A tick that came before the crawl requested its feeds and sitemaps was served by that crawl.
        """
        next_slot: float | None = slot
        while next_slot is not None and not self.stopping.is_set():
            try:
                await self.crawl(source, slot=next_slot)
            except Exception:  # one source's failure never stops the service
                log.exception("crawl failed", extra=about(source.name))
            missed = self._missed.pop(source.name, None)
            served = missed is not None and missed[1] <= self._listed_at.get(source.name, 0.0)
            next_slot = missed[0] if missed is not None and not served else None

    async def _read_paused(self) -> None:
        try:
            paused = await asyncio.to_thread(control.paused, self.client, self.keys)
        except redis.RedisError as exc:
            log.debug("paused sources not read: %s", exc)
            return
        for name in set(paused) - self._paused:
            log.info("paused by %s: %s", paused[name].get("who") or "an operator",
                     paused[name].get("reason") or "no reason given", extra=about(name))
        for name in self._paused - set(paused):
            log.info("resumed", extra=about(name))
        self._paused = set(paused)

    async def _control(self) -> None:
        """Follow the operators' requests (crawler.control): pauses and resumes, and crawls asked for with
        `newsdedup crawl-now`, each taken by one instance."""
        mine = {source.name: source for source in self.sources}
        while not self.stopping.is_set():
            await asyncio.sleep(CONTROL_POLL)
            await self._read_paused()
            try:
                requests = await asyncio.to_thread(control.crawl_requests, self.client, self.keys)
                for name, request in requests.items():
                    running = self._crawl_loops.get(name)
                    if name not in mine or (running is not None and not running.done()):
                        continue  # another instance's source, or ours still crawling: taken when it ends
                    if not await asyncio.to_thread(control.take_crawl_request, self.client, self.keys, name):
                        continue  # another instance took it
                    log.info("crawl requested by %s", request.get("who") or "an operator", extra=about(name))
                    self._crawl_loops[name] = asyncio.create_task(self._requested_crawl(mine[name], request),
                                                                  name=f"crawl:{name}")
            except redis.RedisError as exc:
                log.debug("crawl requests not read: %s", exc)

    async def _requested_crawl(self, source: SourceSettings, request: dict[str, Any]) -> None:
        """A crawl now, outside the schedule; when another instance is crawling the source, after that one."""
        try:
            outcome = await self.crawl(source, min_gap=0.0)
            if outcome == "skipped_busy":
                await asyncio.to_thread(control.put_back_crawl_request, self.client, self.keys, source.name,
                                        request)
        except Exception:  # one source's failure never stops the service
            log.exception("crawl failed", extra=about(source.name))

    async def crawl(self, source: SourceSettings, *, min_gap: float | None = None, slot: float | None = None) -> str:
        """One crawl of one source, if this instance holds its lease; returns the outcome.

        A scheduled crawl names its `slot` (see _slot): it is skipped when another instance crawled that
        slot. The first crawl after start is skipped only when one completed in the last STARTUP_GAP.
        """
        if self.stopping.is_set():
            return "stopped"
        asyncio.current_task().set_name(f"crawl:{source.name}")  # type: ignore[union-attr]
        startup = source.name not in self._attempted
        self._attempted.add(source.name)
        if min_gap is None and startup:
            min_gap, slot = STARTUP_GAP, None
        try:
            token, status = await redis_retry(self.leases.acquire, source.name, min_gap or 0.0, slot,
                                              stage="lease", metrics=self.metrics, stopping=self.stopping)
        except Stopped:
            return "stopped"
        if token is None:
            outcome = "skipped_" + status.split()[0]
            # Every other instance skips each tick: not worth an INFO line each.
            log.debug("crawl skipped (%s)", status, extra=about(source.name))
            self.metrics.crawls.labels(source.name, outcome).inc()
            self.results[source.name] = outcome
            return outcome
        crawl = source.crawl_settings(self.settings.crawl)
        job = CrawlJob(source=source, crawl=crawl, inbox=self.inbox, keys=self.keys, metrics=self.metrics,
                       executor=self._executor, retention=self.settings.dedup.retention,
                       inbox_maxlen=self.settings.service.inbox_maxlen, stopping=self.stopping,
                       fingerprint=self._fingerprint_spec, on_written=self._note_written)
        lost = asyncio.Event()
        renew = asyncio.create_task(self._renew(source.name, token, lost))
        started = time.time()
        self._listed_at[source.name] = 0.0
        self.metrics.crawls_running.inc()
        log.debug("crawl started", extra=about(source.name))
        outcome = "failed"
        spider: SourceSpider | None = None
        try:
            from scrapy.crawler import Crawler

            crawler = Crawler(SourceSpider, scrapy_settings(self.settings, source))
            self._running[source.name] = (crawler, job)
            if self.stopping.is_set():  # the stop came while the lease was taken: crawl nothing
                job.stop_reason = "shutdown"
            await self.runner.crawl(crawler, job=job)
            spider = crawler.spider  # type: ignore[assignment]
            outcome = LEASE_LOST if lost.is_set() else _outcome(job, self.stopping.is_set())
        except Exception:  # one source's failure never stops the service
            log.exception("crawl failed", extra=about(source.name))
        finally:
            self._running.pop(source.name, None)
            if not self._running:
                self._gathered.set()  # nothing more is coming from here: the decider need not wait
            self._listed_at[source.name] = job.listed_at or 0.0
            self.metrics.crawls_running.dec()
        try:  # renewed until released: a release held up must not let the lease lapse first
            recorded = await self._record(source, token, outcome, job, spider, started)
        finally:
            renew.cancel()
        if not recorded and outcome != LEASE_LOST:
            log.warning("lease taken by another instance as the crawl ended: result not recorded",
                        extra=about(source.name))
            outcome = LEASE_LOST
        self.metrics.crawls.labels(source.name, outcome).inc()
        self.metrics.last_crawl.labels(source.name).set(time.time())
        self.results[source.name] = outcome
        log.info("crawl %s in %.1fs: %s", outcome, time.time() - started,
                 json.dumps({k: v for k, v in job.counts.items() if k != "close_reason"}, sort_keys=True),
                 extra=about(source.name))
        return outcome

    async def _record(self, source: SourceSettings, token: str, outcome: str, job: CrawlJob,
                      spider: SourceSpider | None, started: float) -> bool:
        """Write the crawl's result and validators and release the lease, if it is still ours (else False:
        the state belongs to the instance that took the lease)."""
        state = {"last_started": f"{started:.3f}", "last_finished": f"{time.time():.3f}",
                 "last_outcome": outcome, "last_counts": json.dumps(job.counts, sort_keys=True),
                 "last_instance": self.name}
        if job.listed_at:
            # The crawl saw the sources as of its first listing: it served the slot up to the tick after
            # that, a later one than it claimed if it listed late (a busy machine), or at start-up. Another
            # instance's tick for that slot, run late, is then skipped instead of crawling again.
            state["last_slot"] = f"{_slot(source, job.listed_at):.3f}"
        if outcome in ("ok", "partial"):
            state["last_completed"] = state["last_finished"]
            if spider is not None:
                state.update(job.validator_state({url: v for url, v in spider.new_validators.items()
                                                  if url not in spider.incomplete}))
        result = control.CrawlResult(started, time.time(), outcome, self.name,
                                     {k: v for k, v in job.counts.items() if k != "close_reason"},
                                     len(job.failures))
        try:
            released = await redis_retry(self.leases.release, source.name, token, state, stage="record",
                                         metrics=self.metrics, stopping=self.stopping)
            if released:  # kept apart from last_outcome: the next crawl's result does not hide this one's
                await redis_retry(control.record_result, self.client, self.keys, source.name, result,
                                  job.failures, stage="record", metrics=self.metrics, stopping=self.stopping)
            return bool(released)
        except Stopped:
            log.warning("crawl result not recorded (Redis unreachable at shutdown)", extra=about(source.name))
            return True

    async def _renew(self, source: str, token: str, lost: asyncio.Event) -> None:
        """Keep the lease while the crawl runs (the lease keeper's thread renews it); when another
        instance has taken it, stop the crawl."""
        loop = asyncio.get_running_loop()
        taken = asyncio.Event()
        self.lease_keeper.hold(source, token, lambda: loop.call_soon_threadsafe(taken.set))
        try:
            await taken.wait()
        finally:
            self.lease_keeper.drop(source, token)
        lost.set()
        try:
            holder = await asyncio.to_thread(self.leases.holder, source)
        except redis.RedisError:
            holder = None
        log.warning("lease lost to %s (ours expired, e.g. while Redis was away): stopping this crawl; what it "
                    "fetched is still decided, the rest is left to that instance", holder or "another instance",
                    extra=about(source))
        running = self._running.get(source)
        if running is not None:
            await stop_crawl(*running, LEASE_LOST)

    # Deciding

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.client, self.keys, self._engine_config())
        return self._engine

    def _engine_config(self) -> EngineConfig:
        return EngineConfig(retention=self.settings.dedup.retention, stream_maxlen=self.settings.dedup.stream_maxlen,
                            stream_retention=self.settings.dedup.stream_retention,
                            params=IndexParams.for_size(self.settings.dedup.expected_articles),
                            cache_bytes=self.settings.dedup.cache_size)

    async def _decide_forever(self) -> None:
        """Decide inbox entries until stopped and drained: ours left pending first, then new ones."""
        # With stopping: when Redis is away at shutdown, entries stay pending for the next start.
        retry: dict[str, Any] = {"metrics": self.metrics, "stage": "decide", "stopping": self.stopping}
        try:
            await self._through_trouble(lambda: self.engine)
            await self._through_trouble(self.inbox.ensure_group)
        except Stopped:
            return  # stopped before Redis came back: nothing was read, nothing is lost
        self._decider_alive = True
        last_reclaim = 0.0
        try:
            while True:
                try:
                    if time.monotonic() - last_reclaim > HEARTBEAT:
                        last_reclaim = time.monotonic()
                        await self._decide_left_over(retry)
                    block = 50 if self.crawls_done.is_set() else 500
                    self._written = 0
                    self._gathered.clear()
                    entries = await redis_retry(self.inbox.read, DECIDE_BATCH, block, **retry)
                    if entries:
                        await self._decide(entries)
                        if len(entries) < DECIDE_BATCH:
                            await self._gather()
                    elif self.crawls_done.is_set() and self.stopping.is_set():
                        return  # nothing new for us; entries pending with live instances stay theirs
                except Stopped:
                    raise
                except Exception:  # a fault of the decider's own (a record's are dead-lettered): keep deciding
                    log.exception("decider: unexpected error; unacknowledged entries are tried again shortly")
                    if self.crawls_done.is_set() and self.stopping.is_set():
                        return
                    await _pause(self.stopping, HEARTBEAT)
        except Stopped:
            return
        finally:
            self._decider_alive = False

    def _note_written(self) -> None:
        """A crawl here put an article in the inbox."""
        self._written += 1
        if self._written >= DECIDE_BATCH:
            self._gathered.set()

    async def _gather(self) -> None:
        """After a part batch: let the inbox fill until a full batch was written here since the last read, no
        crawl runs here, the service stops, or DECIDE_GATHER has passed."""
        if not self._running or self.stopping.is_set():
            return
        try:
            await asyncio.wait_for(self._gathered.wait(), DECIDE_GATHER)
        except TimeoutError:
            pass

    async def _decide_left_over(self, retry: dict[str, Any]) -> None:
        """Entries of a dead instance or left pending here, and stream events waiting for their text."""
        claimed = await redis_retry(self.inbox.reclaim, self.settings.service.claim_idle, **retry)
        claimed += await redis_retry(self.inbox.own_pending, **retry)
        claimed = list({entry.entry_id: entry for entry in claimed}.values())
        if claimed:
            claimed = await self._claimed(claimed)
        if claimed:
            log.info("deciding %d inbox entries left by an earlier or dead instance", len(claimed))
            await self._decide(claimed)
        # Stream events decided but not yet completed when a process died (Engine.emit_pending).
        if await redis_retry(self.client.hlen, self.keys.pending_events, **retry):
            emitted = await redis_retry(self.engine.emit_pending, **retry)
            if emitted:
                log.info("completed %d stream events left pending by an earlier process", emitted)

    async def _decide(self, entries: list[Entry]) -> None:
        """Decide a batch of inbox entries and acknowledge them. A record that cannot be decided goes to
        the dead-letter stream instead; while Redis refuses work the batch is tried again, with backoff."""
        retry: dict[str, Any] = {"stage": "decide", "metrics": self.metrics, "stopping": self.stopping}
        # Cleaning megabytes of text is CPU work: off the event loop, as extraction is.
        usable, letters = await asyncio.to_thread(_validated, entries)
        # Stopped (the service stops while Redis is away) leaves the batch pending for the next start.
        results = await self._through_trouble(decide_each, self.engine, [item for _, item in usable])
        decided = [result for result in results if not isinstance(result, Exception)]
        self._observe_cache()
        canonical_urls = await redis_retry(self._canonical_urls, decided, **retry)
        decisions: list[Decision] = []
        for (entry, item), result in zip(usable, results, strict=True):
            article = item.article if isinstance(item, Fingerprinted) else item
            if isinstance(result, Exception):
                letters.append((entry, article, error_text(result), "decide"))
                continue
            label = "known" if result.known else result.kind or "canonical"
            kind = "duplicate" if label in ("exact", "near", "excerpt") else label
            self.metrics.decisions.labels(article.source, kind).inc()
            if result.kind in ("exact", "near", "excerpt"):
                canonical_url = canonical_urls.get(result.duplicate_of or "", "")
                log.info("%s duplicate of %s %s (similarity %.2f)", result.kind, result.duplicate_of,
                         canonical_url, result.similarity or 0,
                         extra=about(article.source, article.url, canonical_id=result.duplicate_of,
                                     canonical_url=canonical_url, kind=result.kind))
            else:
                log.info("%s", label, extra=about(article.source, article.url))
            decisions.append(result)
        self.decisions.extend(decisions)
        if letters:
            await self._dead_letter(letters)
        await redis_retry(self.inbox.ack, [entry.entry_id for entry in entries], **retry)

    async def _through_trouble(self, call: Callable[..., Any], *args: Any) -> Any:
        """call(*args) in a thread, retried with backoff while Redis is unreachable or refuses work (OOM,
        read-only, loading): that is no record's fault. Raises Stopped when the service stops meanwhile."""
        delay = 0.5
        while True:
            try:
                return await redis_retry(call, *args, stage="decide", metrics=self.metrics, stopping=self.stopping)
            except Exception as exc:
                if not server_trouble(exc):
                    raise
                # Retried here, not re-read from the inbox: each re-read counts as a delivery (see _claimed).
                log.warning("Redis refuses work (%s): trying again in %.1fs", error_text(exc), delay)
                if self.stopping.is_set():
                    raise Stopped(f"stopping while Redis refuses work: {exc}") from exc
                await _pause(self.stopping, delay)
                delay = min(30.0, delay * 2)

    async def _dead_letter(self, letters: list[tuple[Entry, Article | None, str, str]]) -> None:
        """Put records on the dead-letter stream (before their entries are acknowledged), log and count them."""
        dead = DeadLetters(self.client, self.keys)

        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            for entry, article, error, stage in letters:
                origin = f"source {article.source if article else '?'}, inbox entry {_entry_id(entry)}"
                dead.add(article, error, stage=stage, origin=origin, pipeline=pipe)
            pipe.execute()

        await self._through_trouble(write)
        for entry, article, error, stage in letters:
            source = article.source if article is not None else ""
            self.metrics.dead_letters.labels(source, stage).inc()
            log.error("source=%s url=%s: not decided, put on the dead-letter stream (%s): %s", source or "?",
                      shown(article.url) if article is not None else f"(inbox entry {_entry_id(entry)})", stage,
                      error)

    async def _claimed(self, entries: list[Entry]) -> list[Entry]:
        """Of entries left pending, those to decide again; one delivered MAX_DELIVERIES times already
        (each process deciding it died) goes to the dead letters instead of killing the next one."""
        def deliveries() -> list[int]:
            pipe = self.client.pipeline(transaction=False)
            for entry in entries:
                pipe.xpending_range(self.keys.inbox, GROUP, min=entry.entry_id, max=entry.entry_id, count=1)
            return [int(found[0]["times_delivered"]) if found else 0 for found in pipe.execute()]

        counts = await redis_retry(deliveries, stage="decide", metrics=self.metrics, stopping=self.stopping)
        poison = [(entry, count) for entry, count in zip(entries, counts, strict=True) if count > MAX_DELIVERIES]
        if poison:
            why = "delivered {} times without a decision (the process deciding it stopped each time)"
            await self._dead_letter([(entry, entry.article, why.format(count), "decide") for entry, count in poison])
            await redis_retry(self.inbox.ack, [entry.entry_id for entry, _ in poison], stage="decide",
                              metrics=self.metrics, stopping=self.stopping)
        dead = {entry.entry_id for entry, _ in poison}
        return [entry for entry in entries if entry.entry_id not in dead]

    def _canonical_urls(self, decisions: list[Decision]) -> dict[str, str]:
        """The URLs of the canonicals the duplicates among `decisions` were matched to (for their log lines)."""
        ids = sorted({d.duplicate_of for d in decisions if d.duplicate_of and d.kind in ("exact", "near", "excerpt")})
        return {record.id: record.url for record in self.engine.get_many(ids)} if ids else {}

    # Health

    def inbox_length(self) -> int:
        return self.inbox.length()

    def _observe_cache(self) -> None:
        """The decider cache's size and the lookups since the last batch."""
        if self._engine is None:
            return
        cache = self._engine.decider.cache
        self.metrics.decider_cache_bytes.set(cache.size)
        hits, misses = cache.hits, cache.misses
        seen_hits, seen_misses = self._cache_seen
        self.metrics.decider_cache_reads.labels("hit").inc(max(0, hits - seen_hits))
        self.metrics.decider_cache_reads.labels("miss").inc(max(0, misses - seen_misses))
        self._cache_seen = (hits, misses)

    async def _heartbeat(self) -> None:
        while True:
            def beat(next_crawls: dict[str, float | None]) -> None:
                self.client.hset(self.keys.instances, self.name, json.dumps({
                    "host": socket.gethostname(), "pid": os.getpid(), "started": self._started,
                    "seen": time.time(), "crawling": sorted(self._running), "version": VERSION}))
                control.set_next_crawls(self.client, self.keys, next_crawls)
                self.metrics.stream_length.set(self.client.xlen(self.keys.canonical_stream))
                self.metrics.inbox_length.set(self.inbox.length())
                self.metrics.dead_letters_waiting.set(self.client.xlen(self.keys.dead_letters))
                self.metrics.observe_groups(self.client, self.keys.canonical_stream)

            try:
                await asyncio.to_thread(beat, self._next_crawls())
                self.metrics.redis_up.set(1)
            except redis.RedisError as exc:
                self.metrics.redis_up.set(0)
                log.warning("Redis unreachable (heartbeat): %s", exc)
            await asyncio.sleep(HEARTBEAT)

    def _next_crawls(self) -> dict[str, float | None]:
        """When each source's next tick comes (every instance ticks at the same moments); empty until the
        scheduler runs (never with once=True)."""
        if self._scheduler is None or not self._scheduler.running:
            return {}
        return {source.name: _slot(source) for source in self.sources}

    def status(self) -> dict[str, object]:
        redis_up = self.metrics.value("newsdedup_redis_up") == 1
        ok = redis_up and self._decider_alive and not self.stopping.is_set()
        return {"status": "ok" if ok else "degraded", "instance": self.name, "redis": redis_up,
                "decider": self._decider_alive, "stopping": self.stopping.is_set(),
                "crawling": sorted(self._running), "last_results": self.results}


def extraction_pool(workers: int, *, wait: bool = True) -> Executor:
    """The extraction processes, started now, each importing the extractor (trafilatura and its kin).

    Called before the event loop and any thread start, the workers are forked from this process and
    start at once; otherwise they come from a forkserver that imported the extractor once. The service
    process itself never imports the extractor (a fifth of a second of its start): with wait=False the
    workers import it while the service goes on starting (a worker that cannot logs why, and its pages
    fail one by one); with wait=True this returns once they have.
    """
    import threading

    import crawler.pipelines  # noqa: F401 - imported before forking, so workers inherit it

    workers = workers or (os.cpu_count() or 1)
    if sys.platform == "win32":
        context = multiprocessing.get_context("spawn")
    elif sys.platform == "linux" and threading.active_count() == 1:
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["crawler.pipelines", "crawler.extract"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_die_with_parent,
                               initargs=(os.getpid() if context.get_start_method() == "fork" else 0,))
    warming = [pool.submit(_warm) for _ in range(workers)]
    for future in warming:
        if wait:
            future.result()
        else:
            future.add_done_callback(_warmed)
    return pool


def _warm() -> None:
    """Worker: load the extractor before the first page arrives."""
    import crawler.extract  # noqa: F401


def _warmed(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("an extraction worker cannot load the extractor: %r", future.exception())


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation in the service process (Python's default
is 700): a crawl allocates and frees Scrapy's and Twisted's objects for every request, and most die young."""


def tune_gc() -> None:
    """The service process's garbage collector, once its start-up is done and its workers are forked.

    Everything alive now (modules, settings, the pool) lives as long as the process: frozen, a full
    collection no longer walks it (each walked about a million objects, 0.1 s, here). Young collections
    come every 50,000 allocations instead of 700. On the crawl benchmark the collector's CPU went from
    0.65-0.78 s to 0.17 s over 1,448 pages. The objects a crawl leaves in cycles are still collected,
    at most 50,000 allocations later. The young generations are collected first, so little of the
    start-up's own garbage is frozen with the rest (a full collection would cost 0.1 s of the start).
    """
    import gc

    gc.collect(1)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _die_with_parent(parent: int) -> None:
    """Worker: on Linux, get SIGKILL when its parent dies, so a kill -9 leaves no orphaned workers.

    The parent is the service (fork) or the forkserver, which exits when the service does.
    """
    # Forked, it has the service's start-up handlers (crawler.cli.service); a worker takes signals as usual.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if parent and os.getppid() != parent:  # the service died before prctl took effect
        os._exit(1)


def _trigger(source: SourceSettings) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if source.cron:
        return CronTrigger.from_crontab(source.cron, timezone=UTC)
    class AlignedInterval(IntervalTrigger):  # type: ignore[misc]
        """Ticks on multiples of the period since a fixed epoch, whenever the instance started or
        last ran: every instance ticks at the same moments, so the lease leaves one crawl per tick.
        (IntervalTrigger counts from the previous run, which the startup crawl puts anywhere.)"""

        def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
            after = now if previous_fire_time is None else max(now, previous_fire_time + timedelta(microseconds=1))
            return super().get_next_fire_time(None, after)  # type: ignore[no-any-return]

    return AlignedInterval(seconds=source.every or 600.0, start_date=_TICK_EPOCH, timezone=UTC)


TICK_LATENESS = 60.0
"""How late a tick may run and still be told from the one before it (see _due)."""


def _due(source: SourceSettings, now: datetime | None = None) -> float:
    """When the tick running now was due: the source's latest tick time not after now (or now, when
    none came in the last TICK_LATENESS seconds)."""
    now = now or datetime.now(UTC)
    trigger = _trigger(source)
    due = None
    moment = trigger.get_next_fire_time(None, now - timedelta(seconds=TICK_LATENESS))
    while moment is not None and moment <= now:
        due = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return (due or now).timestamp()


def _slot(source: SourceSettings, at: float | None = None) -> float:
    """The slot a tick starts (now, or `at`): the time up to the source's next tick, named by that tick
    (a timestamp).

    Every instance ticks at the same moments (see _trigger), so all name a tick's slot alike, and the
    lease lets one crawl per slot happen across them.
    """
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    following = _trigger(source).get_next_fire_time(None, moment)
    return following.timestamp() if following is not None else moment.timestamp()


def _validated(entries: list[Entry]) -> tuple[list[tuple[Entry, Article | Fingerprinted]],
                                              list[tuple[Entry, Article | None, str, str]]]:
    """The entries' articles validated (dropped fields logged), fingerprinted where an extraction worker
    did it, and (entry, article, error, stage) for each entry that cannot be decided at all."""
    usable: list[tuple[Entry, Article | Fingerprinted]] = []
    letters: list[tuple[Entry, Article | None, str, str]] = []
    for entry in entries:
        if entry.article is None:
            letters.append((entry, None, entry.problem, "inbox"))
            continue
        try:
            checked = validate(entry.article)
        except InvalidArticle as exc:
            letters.append((entry, entry.article, str(exc), "validate"))
            continue
        for note in checked.dropped:
            log.warning("source=%s url=%s: %s", checked.article.source, checked.article.url, note)
        usable.append((entry, entry.with_article(checked.article)))
    return usable, letters


def _entry_id(entry: Entry) -> str:
    return entry.entry_id.decode() if isinstance(entry.entry_id, bytes) else str(entry.entry_id)


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep, or less when the service stops meanwhile."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass


def _outcome(job: CrawlJob, stopping: bool) -> str:
    reason = job.counts.get("close_reason", "")
    if stopping or reason not in ("finished", ""):
        return "stopped" if stopping or reason == "shutdown" else f"closed_{reason}"
    problems = job.counts.get("fetch_errors", 0) + job.counts.get("bad_listings", 0)
    return "partial" if problems else "ok"


def install_resolver(dns_servers: str) -> None:
    """Pin DNS answers for the SSRF guard (crawler.resolver): AsyncCrawlerRunner installs no resolver of its own."""
    from twisted.internet import reactor

    from crawler import resolver
    from crawler.netguard import parse_dns_servers

    resolver.install(reactor, parse_dns_servers(dns_servers))


def run_in_reactor(main: Callable[[], Awaitable[int]]) -> int:
    """Install Scrapy's asyncio reactor, run main() on its loop, and return main's exit code."""
    from scrapy.utils.reactor import install_reactor, is_reactor_installed

    if not is_reactor_installed():
        install_reactor(ASYNCIO_REACTOR)
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    result: list[int] = []

    def start() -> None:
        deferred = Deferred.fromFuture(asyncio.ensure_future(main()))

        def done(value: Any) -> None:
            if isinstance(value, int):
                result.append(value)
            else:
                log.error("service failed: %s", value.getTraceback() if hasattr(value, "getTraceback") else value)
                result.append(1)
            reactor.stop()  # type: ignore[attr-defined]

        deferred.addBoth(done)

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined]
    return result[0] if result else 1
