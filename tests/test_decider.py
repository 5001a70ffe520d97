"""The decider lease and journal (dedup.decider): a batch is written all or nothing, once, by the holder."""

from __future__ import annotations

import textwrap
import threading
from collections import Counter

import pytest
import redis

from crawler.redis_conn import connect
from dedup import decider
from dedup.article import Article
from dedup.engine import Engine
from dedup.keys import Keys
from tests.service_process import kill_9_once_paused
from tests.textcases import articles, edited, wrapped_copy

PAUSED = "journalled, not applied"

DECIDE_AND_PAUSE = textwrap.dedent(
    """
    import json, sys, time
    import redis
    from dedup import decider
    from dedup.article import Article
    from dedup.engine import Engine
    from dedup.keys import Keys

    url, prefix, batch = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    engine = Engine(redis.Redis.from_url(url), Keys(prefix))

    def pause(*args, **kwargs):
        print(%(paused)r, flush=True)
        time.sleep(300)

    decider.apply = pause
    engine.decide(engine.prepare_many([Article(url=u, text=t) for u, t in batch]))
    """
) % {"paused": PAUSED}


HOLDING = "holding the decider lease"

HOLD_AND_PAUSE = textwrap.dedent(
    """
    import sys, time
    from crawler.redis_conn import connect
    from dedup import decider
    from dedup.keys import Keys

    url, prefix, ttl_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
    decider.Lease(connect(url, ""), Keys(prefix), ttl_ms=ttl_ms).acquire(lambda payload: None)
    print(%(holding)r, flush=True)
    time.sleep(300)
    """
) % {"holding": HOLDING}


def _batch() -> list[tuple[str, str]]:
    out = []
    for index, (url, body) in enumerate(articles()[:4]):
        out += [(url, body), (f"https://mirror{index}.example/a", body),
                (f"https://farm{index}.example/a", wrapped_copy(body))]
    return out


def _snapshot(client: redis.Redis, keys: Keys) -> dict[str, object]:
    engine = Engine(client, keys)
    return {
        "records": {r.id: (r.kind, r.cluster, r.duplicate_of) for r in engine.records()},
        "stats": engine.stats(),
        "stream": [fields for _, fields in client.xrange(keys.canonical_stream)],
        "lists": {int(b): client.lrange(keys.time_bucket(int(b)), 0, -1) for b in client.zrange(keys.time_buckets, 0, -1)},
    }


def test_a_kill_between_journal_and_apply_loses_nothing_and_queues_nothing_twice(
    redis_client: redis.Redis, redis_server_url: str, key_prefix: str
) -> None:
    import json

    keys = Keys(key_prefix)
    batch = _batch()
    kill_9_once_paused(DECIDE_AND_PAUSE, [redis_server_url, key_prefix, json.dumps(batch)], PAUSED)
    assert redis_client.exists(decider.journal_key(keys))
    assert not list(redis_client.scan_iter(match=keys.article("*"))), "nothing applied before the journal is"

    # The next process to take the lease applies the journal before its own batch.
    engine = Engine(redis_client, keys)
    late_url, late_body = articles()[0]
    [late] = engine.decide(engine.prepare_many([Article(url="https://late.example/a", text=edited(late_body, 2))]))
    assert not redis_client.exists(decider.journal_key(keys))
    records = {r.url: r for r in engine.records()}
    assert set(records) == {u for u, _ in batch} | {"https://late.example/a"}
    assert late.cluster == records[late_url].cluster
    events = [fields for _, fields in redis_client.xrange(keys.canonical_stream)]
    assert sorted(Counter(e[b"cluster"] for e in events if e[b"event"] == b"new").values()) == [1, 1, 1, 1]
    assert len({e[b"event_id"] for e in events}) == len(events)
    assert engine.stats()["clusters"] == 4
    # A canonical's record names the stream entry carrying its text: the id the journal assigned.
    by_id = {_id: fields for _id, fields in redis_client.xrange(keys.canonical_stream)}
    read_back = [engine.get(r.id) for r in records.values()]  # records() leaves stream texts unread
    canonicals = [r for r in read_back if r is not None and r.kind is None]
    assert len(canonicals) == 4 and all(r.text_ref.encode() in by_id for r in canonicals)
    for r in canonicals:
        assert by_id[r.text_ref.encode()][b"id"].decode() == r.id and not r.text_expired
        assert r.text == by_id[r.text_ref.encode()][b"text"].decode() and len(r.text) > 200
    assert all(r is not None and r.text and not r.text_expired for r in read_back)

    # A replay of a journal already applied changes nothing (absolute values, guarded appends,
    # stream ids refused the second time).
    before = _snapshot(redis_client, keys)
    store = engine.decider.store()
    engine.decide(engine.prepare_many([Article(url=u, text=t) for u, t in batch]))  # all known: no writes
    commands = store.commands(0)
    assert commands == []
    payload_batch = _batch()[:3]
    other = Keys(key_prefix + "replay:")
    fresh = Engine(redis_client, other)
    store = fresh.decider.store()
    store.zadds[other.time_buckets] = {}
    fresh.decider.decide(store, [fresh._item(p) for p in fresh.prepare_many(
        [Article(url=u, text=t) for u, t in payload_batch])])
    commands = store.commands(fresh.config.stream_maxlen)
    packed = decider.pack(commands)
    decider.apply(redis_client, commands, packed)
    once = _snapshot(redis_client, other)
    decider.apply(redis_client, decider.unpack(packed), packed)
    assert _snapshot(redis_client, other) == once
    assert _snapshot(redis_client, keys) == before


def test_the_lease_is_exclusive_and_a_holder_that_lost_it_cannot_journal(redis_client: redis.Redis,
                                                                        key_prefix: str) -> None:
    keys = Keys(key_prefix)
    first = decider.Lease(redis_client, keys, ttl_ms=60_000)
    second = decider.Lease(redis_client, keys, ttl_ms=60_000)
    first.acquire(lambda payload: None)
    with pytest.raises(TimeoutError):
        second.acquire(lambda payload: None, timeout=0.2)
    first.journal(b"")
    redis_client.delete(decider.lease_key(keys))  # as if it expired while the holder stalled
    second.acquire(lambda payload: None)
    assert second.token != first.token
    with pytest.raises(decider.LeaseLost):
        first.journal(b"*1\r\n$4\r\nPING\r\n")
    second.release()
    first.depth = 1
    first.release()  # not the holder: releasing deletes nothing of another's
    assert not redis_client.exists(decider.lease_key(keys))


def test_a_journal_left_behind_is_applied_by_the_next_holder(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    applied: list[bytes] = []
    lease = decider.Lease(redis_client, keys)
    lease.acquire(applied.append)
    lease.journal(b"left")
    lease.depth = 1
    redis_client.delete(decider.lease_key(keys))  # the holder died; its lease expired
    lease.release()
    nxt = decider.Lease(redis_client, keys)
    nxt.acquire(applied.append)
    assert applied == [b"left"]
    assert not redis_client.exists(decider.journal_key(keys))
    nxt.release()


def test_a_standby_takes_over_from_a_holder_killed_9_and_the_fence_only_grows(redis_target: tuple[str, str]) -> None:
    url, prefix = redis_target
    client = connect(url, "")
    keys = Keys(prefix)
    ttl_ms = 5000
    earlier = decider.Lease(client, keys, ttl_ms=ttl_ms)
    earlier.acquire(lambda payload: None)
    earlier.release()
    kill_9_once_paused(HOLD_AND_PAUSE, [url, prefix, str(ttl_ms)], HOLDING)
    dead = int(client.get(decider.fence_key(keys)))  # the number the killed holder drew
    assert dead == int(earlier.token.split(":")[0]) + 1
    # Nobody renews the dead holder's lease: it lapses on its own within one TTL (or has already).
    left = client.pttl(decider.lease_key(keys))
    assert left != -1 and left <= ttl_ms
    standby = decider.Lease(client, keys, ttl_ms=ttl_ms)
    standby.acquire(lambda payload: None)  # waits, backing off, until the lease lapses
    try:
        assert client.get(decider.lease_key(keys)).decode() == standby.token
        assert int(standby.token.split(":")[0]) == dead + 1
    finally:
        standby.release()
    # The counter outlives every lease (no expiry), so the next holder's number is larger still.
    assert client.ttl(decider.fence_key(keys)) == -1 and not client.exists(decider.lease_key(keys))
    later = decider.Lease(client, keys, ttl_ms=ttl_ms)
    later.acquire(lambda payload: None)
    later.release()
    assert int(later.token.split(":")[0]) == dead + 2
    client.close()


def _noop(payload: bytes) -> None:
    """A replay for leases whose journal is empty in these tests."""


def test_a_waiter_that_has_waited_takes_the_lease_before_its_holder_takes_it_again(
    redis_target: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decider, "QUEUE_MS", 60_000)  # a queued place outlives any stall of a loaded machine
    url, prefix = redis_target
    client = connect(url, "")
    keys = Keys(prefix)
    holder = decider.Lease(client, keys, ttl_ms=60_000)
    waiter = decider.Lease(client, keys, ttl_ms=60_000)
    holder.acquire(_noop)
    with pytest.raises(TimeoutError):
        waiter.acquire(_noop, timeout=decider.QUEUE_AFTER_S * 2)  # queued, then gave its place up
    assert not client.exists(decider.queue_key(keys))

    took, done = threading.Event(), threading.Event()

    def wait_take_hold() -> None:  # the lease's lock is per thread: released by the thread that took it
        waiter.acquire(_noop)
        took.set()
        done.wait(60)
        waiter.release()

    thread = threading.Thread(target=wait_take_hold)
    thread.start()
    for _ in range(600):  # until it has waited long enough to be queued
        if client.get(decider.queue_key(keys)) == waiter.owner.encode():
            break
        thread.join(0.05)
    assert client.get(decider.queue_key(keys)) == waiter.owner.encode()
    holder.release()
    # The holder's next batch finds the lease free but promised: it waits, and the waiter has it.
    with pytest.raises(TimeoutError):
        holder.acquire(_noop, timeout=decider.QUEUE_AFTER_S / 2)
    assert took.wait(60)
    assert client.get(decider.lease_key(keys)) == waiter.token.encode()
    assert not client.exists(decider.queue_key(keys))
    done.set()
    thread.join(60)
    holder.acquire(_noop)  # nobody queued: free for anyone again
    holder.release()
    client.close()


# The decider's value cache (decider.ValueCache): records and clusters kept in memory by the process
# that held the lease last, emptied whenever another process may have written.


def test_the_value_cache_serves_a_story_s_members_to_the_holder_that_wrote_them(
        redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    url, body = articles()[2]
    engine.add(Article(url=url, text=body))
    cache = engine.decider.cache
    assert len(cache) > 0  # the record and cluster it wrote
    before = cache.hits
    copy = engine.add(Article(url="https://farm.example/copy", text=wrapped_copy(body)))
    assert copy.duplicate_of is not None
    assert cache.hits > before  # the original's record came from memory
    # What the cache holds is what Redis holds.
    for key in (engine.keys.article(copy.article_id), engine.keys.article(copy.canonical_id),
                engine.keys.cluster(copy.cluster)):
        assert cache.get(key) == redis_client.get(key)


def test_the_value_cache_drops_what_another_process_wrote(redis_client: redis.Redis, key_prefix: str) -> None:
    from dedup.overrides import Overrides

    keys = Keys(key_prefix)
    engine = Engine(redis_client, keys)
    url, body = articles()[3]
    original = engine.add(Article(url=url, text=body))
    first = engine.add(Article(url="https://farm.example/c1", text=wrapped_copy(body)))
    assert first.canonical_id == original.article_id
    other_url, other_body = articles()[5]
    unrelated = engine.add(Article(url=other_url, text=other_body))
    unrelated_key = engine.keys.article(unrelated.article_id)
    cache = engine.decider.cache
    assert cache.get(unrelated_key) is not None
    # Another process (its own engine, its own lease) makes the copy the canonical.
    Overrides(Engine(redis_client, keys)).promote(first.article_id, who="tester")
    # The first engine's next hold has a fencing number that is not the next after its own: it drops
    # what the other process wrote (noted on the changes stream), keeps the rest, and its next
    # decision sees the promotion.
    second = engine.add(Article(url="https://mirror.example/c2", text=edited(body)))
    assert second.cluster == original.cluster
    assert second.canonical_id == first.article_id
    assert (cache.invalidations, cache.resets) == (1, 0)
    assert cache.get(unrelated_key) == redis_client.get(unrelated_key)
    # Holds it cannot account for (the stream trimmed, or a process that notes nothing): all dropped.
    Overrides(Engine(redis_client, keys)).promote(second.article_id, who="tester")
    redis_client.delete(decider.changes_key(keys))
    third = engine.add(Article(url="https://wire.example/c3", text=edited(body, seed=3)))
    assert third.canonical_id == second.article_id
    assert cache.resets == 1


def test_a_failed_batch_empties_the_value_cache(redis_client: redis.Redis, key_prefix: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    url, body = articles()[4]
    engine.add(Article(url=url, text=body))
    assert len(engine.decider.cache) > 0

    def refuse(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("Redis went away mid-batch")

    monkeypatch.setattr(decider, "apply", refuse)
    with pytest.raises(redis.ConnectionError):
        engine.add(Article(url="https://farm.example/d", text=wrapped_copy(body)))
    assert len(engine.decider.cache) == 0 and engine.decider.cache.fence is None


def test_the_value_cache_stays_within_its_size(redis_client: redis.Redis, key_prefix: str) -> None:
    from dedup.engine import EngineConfig

    engine = Engine(redis_client, Keys(key_prefix), EngineConfig(cache_bytes=4096))
    for index, (url, body) in enumerate(articles()[:8]):
        engine.add(Article(url=url, text=body))
        assert engine.decider.cache.size <= 4096, index
    off = Engine(redis_client, Keys(key_prefix), EngineConfig(cache_bytes=0))
    url, body = articles()[0]
    assert off.add(Article(url="https://farm.example/e", text=wrapped_copy(body))).duplicate_of is not None
    assert len(off.decider.cache) == 0
