"""What the dashboard's overview shows, read from Redis with a bounded number of small reads.

Nothing here scans articles: totals come from the engine's counters, the chart and the duplicate
rates from the per-hour counters (dedup.hourly), the rest from the stream, instance and source keys.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from crawler import control
from crawler.config import Settings, SourceSettings
from crawler.redis_conn import redact_url
from dedup import hourly, stream
from dedup.cluster import server_info
from dedup.keys import Keys
from dedup.keys import reply_text as _text

STALE_HEARTBEAT = 30.0
"""An instance whose heartbeat (every 5 s) is older than this is probably gone."""
DUPLICATE_KINDS = ("exact", "near", "excerpt")
FAILURE_COUNTS = ("fetch_errors", "bad_listings", "extraction_failures")
"""The counts of a crawl's result that are failures (see crawler.spiders and crawler.pipelines)."""
_TICK_EPOCH = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
"""Interval schedules tick on multiples of the period since this moment (as crawler.service does)."""



@dataclass(frozen=True)
class Instance:
    """One service instance, from its heartbeat."""

    name: str
    host: str
    pid: str
    started: float
    seen: float
    crawling: tuple[str, ...]
    alive: bool


FAILED_URLS_SHOWN = 5
"""Failed URLs the overview lists per source (the newest; `newsdedup status` lists them all)."""


@dataclass(frozen=True)
class SourceRow:
    """One source: its schedule, last crawl, next crawl and failures."""

    name: str
    schedule: str
    last_finished: float | None
    last_outcome: str | None
    last_instance: str | None
    counts: dict[str, int]
    next_crawl: float | None
    crawling_on: str | None
    paused: bool = False
    failed_urls: tuple[tuple[str, str], ...] = ()
    """(URL, reason) of pages that failed recently, newest first."""

    @property
    def failures(self) -> int:
        return sum(int(self.counts.get(name, 0) or 0) for name in FAILURE_COUNTS)


@dataclass(frozen=True)
class SourceRate:
    """Decisions about one source's articles over the chart's window."""

    source: str
    canonical: int
    duplicates: int
    thin: int

    @property
    def decided(self) -> int:
        return self.canonical + self.duplicates

    @property
    def rate(self) -> float:
        return self.duplicates / self.decided if self.decided else 0.0


@dataclass(frozen=True)
class Overview:
    """Everything the overview page shows."""

    empty: bool
    redis_version: str
    used_memory: int
    maxmemory: int
    totals: dict[str, int]
    instances: list[Instance]
    sources: list[SourceRow]
    hours: list[hourly.HourCounts]
    rates: list[SourceRate]
    canonical_stream: stream.StreamState
    inbox: stream.StreamState
    overrides: int
    events_waiting: int
    now: float = field(default_factory=time.time)

    @property
    def duplicates(self) -> int:
        return sum(self.totals.get(f"dup_{kind}", 0) for kind in DUPLICATE_KINDS)

    @property
    def duplicate_rate(self) -> float:
        decided = self.totals.get("canonicals", 0) + self.duplicates
        return self.duplicates / decided if decided else 0.0

    @property
    def articles(self) -> int:
        return sum(v for k, v in self.totals.items() if k != "clusters")


def next_crawl(source: SourceSettings, now: float) -> float | None:
    """When the schedule next ticks after `now` (every instance ticks at the same moments)."""
    if source.cron:
        from apscheduler.triggers.cron import CronTrigger

        fire = CronTrigger.from_crontab(source.cron, timezone=UTC).get_next_fire_time(
            None, datetime.fromtimestamp(now, UTC))
        return fire.timestamp() if fire is not None else None
    period = source.every or 600.0
    return _TICK_EPOCH + math.floor((now - _TICK_EPOCH) / period + 1) * period


def instances(client: redis.Redis, keys: Keys, now: float) -> list[Instance]:
    """The instances that sent a heartbeat, alive ones first."""
    rows = []
    for raw_name, raw_value in client.hgetall(keys.instances).items():
        try:
            beat = json.loads(raw_value)
        except ValueError:
            beat = {}
        beat = beat if isinstance(beat, dict) else {}
        seen = float(beat.get("seen") or 0)
        rows.append(Instance(
            name=_text(raw_name), host=str(beat.get("host") or ""), pid=str(beat.get("pid") or ""),
            started=float(beat.get("started") or 0), seen=seen,
            crawling=tuple(str(s) for s in beat.get("crawling") or ()),
            alive=bool(seen) and now - seen < STALE_HEARTBEAT,
        ))
    return sorted(rows, key=lambda row: (not row.alive, row.name))


def source_rows(client: redis.Redis, keys: Keys, settings: Settings, now: float,
                seen: list[str] | None = None) -> list[SourceRow]:
    """Each source's state: the one place the dashboard reads per-source status from Redis.

    Configured sources first, then any other source name in `seen` that has a recorded crawl.
    """
    configured = {source.name: source for source in settings.sources}
    names = list(configured) + sorted(set(seen or ()) - set(configured))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.source_state(name))
        pipe.get(keys.source_lease(name))
    replies = pipe.execute() if names else []
    paused = control.paused(client, keys)
    rows = []
    for index, name in enumerate(names):
        state = {_text(k): _text(v) for k, v in replies[2 * index].items()}
        lease = replies[2 * index + 1]
        source = configured.get(name)
        if source is None and not state:
            continue  # articles from `ingest` or a source no longer configured and never crawled
        try:
            counts = json.loads(state.get("last_counts") or "{}")
        except ValueError:
            counts = {}
        finished = float(state["last_finished"]) if state.get("last_finished") else None
        rows.append(SourceRow(
            name=name, schedule=source.schedule if source else "not configured",
            last_finished=finished, last_outcome=state.get("last_outcome"),
            last_instance=state.get("last_instance"),
            counts={k: v for k, v in counts.items() if isinstance(v, int)} if isinstance(counts, dict) else {},
            next_crawl=_next_crawl(state, source, now),
            crawling_on=_text(lease).rsplit(":", 1)[0] if lease else None,
            paused=name in paused,
            failed_urls=tuple((str(row["url"]), str(row.get("reason") or ""))
                              for row in control.failures(client, keys, name, now)[:FAILED_URLS_SHOWN]),
        ))
    return rows


def _next_crawl(state: dict[str, str], source: SourceSettings | None, now: float) -> float | None:
    """The next tick the running service recorded, else the one the configured schedule gives."""
    recorded = state.get("next_crawl")
    if recorded:
        try:
            when = float(recorded)
        except ValueError:
            when = 0.0
        if when >= now:
            return when
    return next_crawl(source, now) if source else None


def source_rates(hours: list[hourly.HourCounts]) -> list[SourceRate]:
    """Per source, decisions over these hours; the highest duplicate rate first."""
    totals: dict[str, dict[str, int]] = {}
    for hour in hours:
        for source, kinds in hour.sources.items():
            into = totals.setdefault(source, {})
            for kind, value in kinds.items():
                into[kind] = into.get(kind, 0) + value
    rates = [SourceRate(source or "(none)", kinds.get("canonical", 0),
                        sum(kinds.get(kind, 0) for kind in DUPLICATE_KINDS), kinds.get("thin", 0))
             for source, kinds in totals.items()]
    return sorted(rates, key=lambda r: (-r.rate, -r.decided, r.source))


def overview(client: redis.Redis, keys: Keys, settings: Settings, hours: int = 24,
             now: float | None = None) -> Overview:
    """The overview, with the chart and the rates over the last `hours` hours."""
    now = time.time() if now is None else now
    last_hour = int(now // hourly.HOUR)
    counts = hourly.read(client, keys, last_hour - hours + 1, last_hour)
    memory, server = server_info(client, "memory"), server_info(client, "server")
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.stats)
    pipe.exists(keys.params)
    pipe.llen(keys.overrides_log)
    pipe.hlen(keys.pending_events)
    stats, exists, overrides, waiting = pipe.execute()
    seen = sorted({source for hour in counts for source in hour.sources})
    totals: dict[str, int] = {}
    for name, value in stats.items():
        try:
            totals[_text(name)] = int(value)
        except ValueError:
            continue
    return Overview(
        empty=not exists, redis_version=str(server.get("redis_version") or "?"),
        used_memory=int(memory.get("used_memory") or 0), maxmemory=int(memory.get("maxmemory") or 0),
        totals=totals, instances=instances(client, keys, now),
        sources=source_rows(client, keys, settings, now, seen),
        hours=counts, rates=source_rates(counts),
        canonical_stream=stream.state(client, keys.canonical_stream, now),
        inbox=stream.state(client, keys.inbox, now),
        overrides=int(overrides), events_waiting=int(waiting), now=now,
    )


def redis_where(settings: Settings) -> str:
    """The Redis the dashboard reads, fit to show (no password)."""
    url = settings.redis.url
    return redact_url(url) if url else f"the embedded Redis in {settings.data_dir}"
