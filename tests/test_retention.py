"""Retention re-indexing survives a kill -9 between deciding and writing (dedup.engine forget/expire).

When retention removes the indexed member of a cluster, the new canonical (an exact copy, never
indexed itself) must be indexed in its place, or a later copy of the story founds a second
cluster. Forget decides the removal and the re-indexing as one write set, journalled under the decider
lease before it is applied (dedup.decider); the tests kill a real process after the journal is written
and before anything is applied, and check that the next process to take the lease completes the work.
An index written by an earlier version may still hold a re-index to-do set: it is completed too.
"""

from __future__ import annotations

import textwrap
import time

import redis

from dedup import decider
from dedup.article import Article
from dedup.engine import Engine
from dedup.index import slots, split_fields
from dedup.keys import Keys
from tests.service_process import kill_9_once_paused
from tests.textcases import articles

PAUSED = "paused between journal and apply"

# Runs the real expiry and stops it after the forget's write set is journalled and before it is
# applied, so the process is killed (SIGKILL, from the test) with nothing of it applied.
EXPIRE_AND_PAUSE = textwrap.dedent(
    """
    import sys, time
    import redis
    from dedup import decider
    from dedup.engine import Engine
    from dedup.keys import Keys

    url, prefix, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
    engine = Engine(redis.Redis.from_url(url), Keys(prefix))

    def pause(*args, **kwargs):
        print(%(paused)r, flush=True)
        time.sleep(300)

    decider.apply = pause
    engine.expire(now=now)
    print("expiry finished without re-indexing", flush=True)
    """
) % {"paused": PAUSED}


def _cluster_of_original_and_copy(engine: Engine, started: float) -> tuple[str, str, str]:
    """An original decided at `started` and an exact copy an hour later; (original, copy, text)."""
    url, body = articles()[3]
    [original] = engine.decide(engine.prepare_many([Article(url=url, text=body)], now=started))
    [copy] = engine.decide(engine.prepare_many([Article(url="https://mirror.example/copy", text=body)],
                                               now=started + 3600))
    assert copy.kind == "exact" and copy.cluster == original.cluster
    return original.article_id, copy.article_id, body


def _kill_between_forget_and_reindex(redis_url: str, prefix: str, now: float) -> None:
    """Run expiry in another process and kill -9 it after forget, before the re-index."""
    kill_9_once_paused(EXPIRE_AND_PAUSE, [redis_url, prefix, str(now)], PAUSED)


def _indexed(engine: Engine, article_id: str) -> bool:
    """Whether every LSH slot and the content hash of the article list it."""
    record = engine.get(article_id)
    assert record is not None
    slot_keys, slot_fields = slots(engine.keys, engine.config.params, record.signature, record.lead_signature,
                                   record.content_hash, record.second_lead_signature)
    fields = split_fields(slot_fields, record.content_hash)
    raw_id = bytes.fromhex(article_id)
    for key, field in zip(slot_keys, fields, strict=True):
        value = engine.client.hget(key, field) or b""
        if raw_id not in [value[i : i + 8] for i in range(0, len(value), 8)]:
            return False
    return True


def test_a_kill_after_forget_leaves_a_journal_that_the_next_process_completes(
    redis_client: redis.Redis, redis_server_url: str, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    engine = Engine(redis_client, keys)
    started = time.time()
    original, copy, body = _cluster_of_original_and_copy(engine, started)
    assert not _indexed(engine, copy), "an exact copy is not indexed while its original is"

    _kill_between_forget_and_reindex(redis_server_url, key_prefix, started + engine.config.retention + 120)

    assert engine.get(original) is not None, "nothing is applied before the journal is complete"
    assert not _indexed(engine, copy)
    assert redis_client.exists(decider.journal_key(keys)), "the journal did not survive the kill"

    # The next process: its first decision comes after the to-do is done, so the story is found.
    restarted = Engine(redis_client, keys)
    later = restarted.add(Article(url="https://farm.example/later", text=body))
    assert restarted.get(original) is None, "the original was forgotten by the replayed journal"
    cluster = restarted.get(copy).cluster  # type: ignore[union-attr]
    assert later.cluster == cluster, "a later copy founded a second cluster"
    assert sorted(restarted.cluster(cluster)[2]) == sorted([copy, later.article_id])
    assert _indexed(restarted, copy)
    assert redis_client.scard(keys.reindex) == 0


def test_the_next_expiry_completes_what_a_killed_one_left(
    redis_client: redis.Redis, redis_server_url: str, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    engine = Engine(redis_client, keys)
    started = time.time()
    _original, copy, _body = _cluster_of_original_and_copy(engine, started)
    _kill_between_forget_and_reindex(redis_server_url, key_prefix, started + engine.config.retention + 120)
    assert redis_client.exists(decider.journal_key(keys))

    assert Engine(redis_client, keys).expire(now=time.time()) == 0  # nothing old enough to remove
    assert _indexed(engine, copy)
    assert not redis_client.exists(decider.journal_key(keys))
    assert redis_client.scard(keys.reindex) == 0


def test_a_to_do_an_earlier_version_left_is_completed(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    engine = Engine(redis_client, keys)
    started = time.time()
    _original, copy, _body = _cluster_of_original_and_copy(engine, started)
    redis_client.sadd(keys.reindex, copy)
    assert Engine(redis_client, keys).resume_reindex() == 1
    assert _indexed(engine, copy)
    assert redis_client.scard(keys.reindex) == 0


def test_retention_without_a_kill_indexes_the_survivor_and_leaves_no_to_do(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    engine = Engine(redis_client, keys)
    started = time.time()
    original, copy, body = _cluster_of_original_and_copy(engine, started)
    assert engine.expire(now=started + engine.config.retention + 120) == 1
    assert engine.get(original) is None and _indexed(engine, copy)
    assert redis_client.scard(keys.reindex) == 0
    cluster = engine.get(copy).cluster  # type: ignore[union-attr]
    assert engine.add(Article(url="https://farm.example/later", text=body)).cluster == cluster


def test_a_to_do_whose_article_expired_too_is_dropped(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    engine = Engine(redis_client, keys)
    started = time.time()
    _original, copy, _body = _cluster_of_original_and_copy(engine, started)
    redis_client.sadd(keys.reindex, copy)
    engine.forget([copy])
    assert redis_client.scard(keys.reindex) == 0
    redis_client.sadd(keys.reindex, "00000000deadbeef")  # a to-do left for an article since gone
    assert engine.resume_reindex() == 0
    assert redis_client.scard(keys.reindex) == 0
