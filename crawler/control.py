"""Control of the running service through Redis (pause, resume, crawl now) and each source's status.

Every instance reads the same keys (see dedup.keys), so a command given on any machine reaches them
all: a pause holds until resumed, across restarts; a crawl-now request is taken by one instance.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from dedup.keys import Keys
from dedup.keys import reply_text as _text

STATUS_WINDOW = 24 * 3600.0
"""Seconds a source's crawl results and failing URLs are kept for `status` and the dashboard."""
MAX_RESULTS = 200
"""Crawl results kept per source at most, the newest (a source crawled every minute fills a day)."""
MAX_FAILURES = 300
"""Failing URLs kept per source at most, the most recent."""
REASON_CHARS = 300



def _json(value: object) -> dict[str, Any]:
    try:
        loaded = json.loads(_text(value))
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


# Operator requests

def pause(client: redis.Redis, keys: Keys, source: str, who: str, reason: str) -> bool:
    """Pause a source's scheduled crawls; False when it was paused already (the first pause stands)."""
    entry = json.dumps({"at": time.time(), "who": who, "reason": reason})
    return bool(client.hsetnx(keys.paused_sources, source, entry))


def resume(client: redis.Redis, keys: Keys, source: str) -> bool:
    """Resume a paused source; False when it was not paused."""
    return bool(client.hdel(keys.paused_sources, source))


def paused(client: redis.Redis, keys: Keys) -> dict[str, dict[str, Any]]:
    """Paused sources with who paused them, when and why."""
    return {_text(name): _json(value) for name, value in client.hgetall(keys.paused_sources).items()}


def is_paused(client: redis.Redis, keys: Keys, source: str) -> bool:
    return bool(client.hexists(keys.paused_sources, source))


def request_crawl(client: redis.Redis, keys: Keys, source: str, who: str) -> bool:
    """Ask the running service to crawl a source now; False when a request is already waiting."""
    return bool(client.hsetnx(keys.crawl_requests, source, json.dumps({"at": time.time(), "who": who})))


def crawl_requests(client: redis.Redis, keys: Keys) -> dict[str, dict[str, Any]]:
    """Requests waiting for an instance to take them."""
    return {_text(name): _json(value) for name, value in client.hgetall(keys.crawl_requests).items()}


def take_crawl_request(client: redis.Redis, keys: Keys, source: str) -> bool:
    """True for exactly one of the instances that try: HDEL removes the request once."""
    return bool(client.hdel(keys.crawl_requests, source))


def put_back_crawl_request(client: redis.Redis, keys: Keys, source: str, request: Mapping[str, Any]) -> None:
    """Leave a taken request for later (the source is being crawled): it is tried again on the next poll."""
    client.hsetnx(keys.crawl_requests, source, json.dumps(dict(request)))


# What the service records

@dataclass(frozen=True)
class CrawlResult:
    """One crawl that ran: when, where, its outcome and counts, and how many URLs failed."""

    started: float
    finished: float
    outcome: str
    instance: str
    counts: Mapping[str, Any]
    failures: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"started": self.started, "finished": self.finished, "outcome": self.outcome,
                "instance": self.instance, "counts": dict(self.counts), "failures": self.failures}


def record_result(client: redis.Redis, keys: Keys, source: str, result: CrawlResult,
                  failures: Mapping[str, str], now: float | None = None) -> None:
    """Add a crawl's result and failing URLs to the source's history, trimmed to the window.

    A URL that failed before keeps its count (how many crawls it failed in) and gets this reason.
    """
    now = time.time() if now is None else now
    results_key, failures_key = keys.source_results(source), keys.source_failures(source)
    failed = list(failures.items())[:MAX_FAILURES]
    earlier = client.hmget(failures_key, [url for url, _ in failed]) if failed else []
    pipe = client.pipeline(transaction=False)
    pipe.zadd(results_key, {json.dumps(result.as_json(), sort_keys=True): result.finished})
    pipe.zremrangebyscore(results_key, "-inf", now - STATUS_WINDOW)
    pipe.zremrangebyrank(results_key, 0, -MAX_RESULTS - 1)
    pipe.expire(results_key, int(STATUS_WINDOW) + 3600)
    if failed:
        entries = {url: json.dumps({"reason": reason[:REASON_CHARS], "at": result.finished,
                                    "count": int(_json(before).get("count", 0)) + 1 if before else 1})
                   for (url, reason), before in zip(failed, earlier, strict=True)}
        pipe.hset(failures_key, mapping=entries)
        pipe.expire(failures_key, int(STATUS_WINDOW) + 3600)
    pipe.execute()
    _trim_failures(client, failures_key, now)


def _trim_failures(client: redis.Redis, key: str, now: float) -> None:
    """Drop failures older than the window, and the oldest beyond MAX_FAILURES (the hash stays small)."""
    if not client.exists(key):
        return
    entries = {_text(url): _json(value) for url, value in client.hgetall(key).items()}
    by_age = sorted(entries, key=lambda url: float(entries[url].get("at") or 0), reverse=True)
    keep = {url for url in by_age[:MAX_FAILURES] if float(entries[url].get("at") or 0) >= now - STATUS_WINDOW}
    stale = [url for url in entries if url not in keep]
    if stale:
        client.hdel(key, *stale)


def set_next_crawls(client: redis.Redis, keys: Keys, next_crawls: Mapping[str, float | None]) -> None:
    """Record when each source's scheduler ticks next (every instance ticks at the same moments)."""
    pipe = client.pipeline(transaction=False)
    for source, when in next_crawls.items():
        if when is None:
            pipe.hdel(keys.source_state(source), "next_crawl")
        else:
            pipe.hset(keys.source_state(source), "next_crawl", f"{when:.3f}")
    pipe.execute()


# Reading it back

def results(client: redis.Redis, keys: Keys, source: str, now: float | None = None,
            limit: int = 20) -> list[dict[str, Any]]:
    """The source's crawl results within the window, newest first."""
    now = time.time() if now is None else now
    raw = client.zrevrangebyscore(keys.source_results(source), "+inf", now - STATUS_WINDOW, start=0, num=limit)
    return [_json(member) for member in raw]


def failures(client: redis.Redis, keys: Keys, source: str, now: float | None = None) -> list[dict[str, Any]]:
    """The URLs that failed for the source within the window, most recent first: url, reason, at, count."""
    now = time.time() if now is None else now
    rows = [{"url": _text(url), **_json(value)} for url, value in client.hgetall(keys.source_failures(source)).items()]
    rows = [row for row in rows if float(row.get("at") or 0) >= now - STATUS_WINDOW]
    return sorted(rows, key=lambda row: -float(row.get("at") or 0))
