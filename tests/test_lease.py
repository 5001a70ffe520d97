"""crawler.lease against a real Redis: one crawl per slot, a lease that expired is ours until another takes it."""

from __future__ import annotations

import time

import redis

from crawler.lease import LeaseKeeper, Leases
from dedup.keys import Keys


def test_an_expired_lease_is_taken_back_unless_another_instance_took_it(
    redis_client: redis.Redis, key_prefix: str,
) -> None:
    keys = Keys(key_prefix)
    ours = Leases(redis_client, keys, ttl=1.0, name="ours")
    theirs = Leases(redis_client, keys, ttl=1.0, name="theirs")
    token, status = ours.acquire("news")
    assert token is not None and status == "ok"
    assert theirs.acquire("news")[1].startswith("busy ours:")
    time.sleep(1.2)  # expired (Redis away for longer than the ttl), nobody took it: renewing takes it back
    assert redis_client.get(keys.source_lease("news")) is None
    assert ours.renew("news", token)
    assert ours.holder("news") == token
    time.sleep(1.2)  # expired again, and this time another instance takes the source
    other, status = theirs.acquire("news")
    assert other is not None, status
    assert not ours.renew("news", token)
    assert not ours.release("news", token, {"last_outcome": "ok", "etag:http://feed": '"v1"'})
    state = redis_client.hgetall(keys.source_state("news"))
    assert b"last_outcome" not in state and b"etag:http://feed" not in state
    assert state[b"holder"] == other.encode()
    assert theirs.release("news", other, {"last_outcome": "ok"})
    assert redis_client.hget(keys.source_state("news"), "last_outcome") == b"ok"
    assert ours.holder("news") is None


def test_a_slot_is_crawled_once_across_instances(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    first = Leases(redis_client, keys, ttl=10.0, name="first")
    second = Leases(redis_client, keys, ttl=10.0, name="second")
    token, _ = first.acquire("news", slot=1000.0)
    assert token is not None
    assert first.release("news", token, {"last_completed": f"{time.time():.3f}"})
    _, status = second.acquire("news", slot=1000.0)
    assert status.startswith("crawled first:")  # this tick's crawl happened on the first instance
    token, status = second.acquire("news", slot=1002.0)  # the next tick's is free, however recent the last
    assert token is not None, status
    assert second.release("news", token)
    # The start-up crawl names no slot: only a crawl completed within min_gap stops it.
    assert first.acquire("news", min_gap=5.0)[1].startswith("recent ")


def test_the_keeper_renews_from_its_own_thread_while_the_caller_is_stalled(
    redis_client: redis.Redis, key_prefix: str,
) -> None:
    keys = Keys(key_prefix)
    ours = Leases(redis_client, keys, ttl=1.0, name="ours")
    theirs = Leases(redis_client, keys, ttl=1.0, name="theirs")
    keeper = LeaseKeeper(ours)
    token, _ = ours.acquire("news")
    assert token is not None
    lost: list[str] = []
    keeper.hold("news", token, lambda: lost.append("news"))
    try:
        time.sleep(2.5)  # this thread (an event loop, in the service) does nothing for 2.5 lease TTLs
        assert theirs.acquire("news")[1].startswith("busy ours:")
        assert redis_client.pttl(keys.source_lease("news")) > 0
        keeper.drop("news", token)
        time.sleep(1.2)  # no longer renewed: it expires, another instance takes it
        other, _ = theirs.acquire("news")
        assert other is not None
        keeper.hold("news", token, lambda: lost.append("news"))
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost == ["news"]  # the keeper found it taken and said so, once
    finally:
        keeper.stop()


def test_a_crawl_that_listed_late_claims_the_slot_it_served(redis_client: redis.Redis, key_prefix: str) -> None:
    """A crawl claims its tick's slot when it starts; one that started late records at release the later
    slot it served (crawler.service), and another instance's tick for that slot is skipped. A slot
    recorded never goes back."""
    keys = Keys(key_prefix)
    first = Leases(redis_client, keys, ttl=10.0, name="first")
    second = Leases(redis_client, keys, ttl=10.0, name="second")
    token, _ = first.acquire("news", slot=1002.0)
    assert token is not None
    assert first.release("news", token, {"last_slot": "1004.000"})
    assert second.acquire("news", slot=1004.0)[1].startswith("crawled first:")
    token, status = second.acquire("news", slot=1006.0)
    assert token is not None, status
    assert second.release("news", token, {"last_slot": "1004.000"})  # an earlier slot: kept at 1006
    assert redis_client.hget(keys.source_state("news"), "last_slot") == b"1006.000"
