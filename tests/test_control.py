"""crawler.control against a real Redis: requests taken once, pauses kept, results and failures kept for a
window and bounded."""

from __future__ import annotations

import time

import redis

from crawler import control
from dedup.keys import Keys


def _result(finished: float, outcome: str = "ok") -> control.CrawlResult:
    return control.CrawlResult(finished - 1, finished, outcome, "crawler-1", {"articles_fetched": 3})


def test_a_crawl_request_is_taken_by_one_taker_only(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    assert control.request_crawl(redis_client, keys, "wire", "oncall")
    assert not control.request_crawl(redis_client, keys, "wire", "someone else")  # one waiting request
    assert control.crawl_requests(redis_client, keys)["wire"]["who"] == "oncall"
    takers = [control.take_crawl_request(redis_client, keys, "wire") for _ in range(3)]
    assert takers == [True, False, False]
    control.put_back_crawl_request(redis_client, keys, "wire", {"at": 1.0, "who": "oncall"})
    assert control.crawl_requests(redis_client, keys) == {"wire": {"at": 1.0, "who": "oncall"}}


def test_the_first_pause_stands_until_resumed(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    assert control.pause(redis_client, keys, "farm", "oncall", "publisher asked")
    assert not control.pause(redis_client, keys, "farm", "night shift", "")
    assert control.paused(redis_client, keys)["farm"]["reason"] == "publisher asked"
    assert control.is_paused(redis_client, keys, "farm") and not control.is_paused(redis_client, keys, "wire")
    assert control.resume(redis_client, keys, "farm") and not control.resume(redis_client, keys, "farm")
    assert control.paused(redis_client, keys) == {}


def test_results_and_failures_are_kept_for_the_window_newest_first(redis_client: redis.Redis,
                                                                     key_prefix: str) -> None:
    keys = Keys(key_prefix)
    now = time.time()
    old = now - control.STATUS_WINDOW - 60
    control.record_result(redis_client, keys, "wire", _result(old, "failed"), {"http://a/old": "HTTP 500"}, now=old)
    control.record_result(redis_client, keys, "wire", _result(now - 20, "partial"), {"http://a/1": "HTTP 404"},
                          now=now - 20)
    control.record_result(redis_client, keys, "wire", _result(now - 10), {"http://a/1": "HTTP 410"}, now=now - 10)
    control.record_result(redis_client, keys, "wire", _result(now), {}, now=now)
    assert [r["outcome"] for r in control.results(redis_client, keys, "wire", now)] == ["ok", "ok", "partial"]
    failing = control.failures(redis_client, keys, "wire", now)
    assert [(f["url"], f["reason"], f["count"]) for f in failing] == [("http://a/1", "HTTP 410", 2)]
    assert redis_client.hlen(keys.source_failures("wire")) == 1  # the stale one was dropped, not only hidden


def test_failures_are_bounded_to_the_most_recent(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    now = time.time()
    first = {f"http://a/{n}": "timeout" for n in range(control.MAX_FAILURES)}
    control.record_result(redis_client, keys, "wire", _result(now - 5, "partial"), first, now=now - 5)
    control.record_result(redis_client, keys, "wire", _result(now, "partial"), {"http://b/new": "HTTP 503"}, now=now)
    failing = control.failures(redis_client, keys, "wire", now)
    assert len(failing) == control.MAX_FAILURES and failing[0]["url"] == "http://b/new"
