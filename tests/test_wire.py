"""dedup.wire.run on a real Redis and on the real 3-primary test cluster: the same replies in the same
places, and a slot moved (ASK while it moves, MOVED after) under a client whose slot map is stale."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from dedup.wire import run

_GUARDED_RPUSH = b"""
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
return 1
"""


def _commands(prefix: str) -> list[tuple]:
    """One of every command the decider sends, on keys spread over the slots, and two error replies."""
    k = [f"{prefix}w{i}".encode() for i in range(8)]
    return [
        (b"SET", k[0], b"v0"), (b"GET", k[0]), (b"GET", k[1]),
        (b"HSET", k[1], b"f", b"1", b"g", b"2"), (b"HGET", k[1], b"f"), (b"HGETALL", k[1]), (b"HDEL", k[1], b"g"),
        (b"RPUSH", k[2], b"a"), (b"EVAL", _GUARDED_RPUSH, b"1", k[2], b"1", b"b"),
        (b"EVAL", _GUARDED_RPUSH, b"1", k[2], b"1", b"c"), (b"LLEN", k[2]), (b"LTRIM", k[2], b"-1", b"-1"),
        (b"ZADD", k[3], b"NX", b"5", b"m"), (b"ZADD", k[3], b"NX", b"6", b"m"), (b"SREM", k[4], b"x"),
        (b"XADD", k[5], b"MAXLEN", b"~", b"100", b"5-1", b"f", b"v"),
        (b"XADD", k[5], b"5-1", b"f", b"again"),  # refused: an error in its place
        (b"XRANGE", k[5], b"5-1", b"5-1", b"COUNT", b"1"),
        (b"GET", k[1]),  # WRONGTYPE: an error in its place
        (b"DEL", k[0]), (b"GET", k[0]), (b"GET", k[6]), (b"GET", k[7]),
    ]


def _comparable(replies: list) -> list:
    return [(type(r).__name__, str(r)) if isinstance(r, Exception) else r for r in replies]


def test_run_on_the_cluster_replies_as_on_one_server(
    redis_client: redis.Redis, key_prefix: str, cluster_client: RedisCluster, cluster_key_prefix: str,
) -> None:
    server = run(redis_client, _commands(key_prefix))
    cluster = run(cluster_client, _commands(cluster_key_prefix))
    assert _comparable(cluster) == _comparable(server)
    assert server[1] == b"v0" and server[8] == 1 and server[9] == 0 and server[10] == 2
    assert isinstance(server[16], redis.ResponseError) and "equal or smaller" in str(server[16])
    assert isinstance(server[18], redis.ResponseError) and "WRONGTYPE" in str(server[18])
    assert server[20] is None
    # The keys were spread over every primary (the commands really went to three nodes).
    keys = {command[3] if command[0] == b"EVAL" else command[1] for command in _commands(cluster_key_prefix)}
    assert len({cluster_client.get_node_from_key(key).name for key in keys}) == 3
    assert run(cluster_client, []) == []


def test_a_command_with_several_keys_goes_through_the_pipeline(
    cluster_client: RedisCluster, cluster_key_prefix: str,
) -> None:
    a, b = (f"{cluster_key_prefix}{{several}}{name}".encode() for name in ("a", "b"))
    assert run(cluster_client, [(b"SET", a, b"1"), (b"SET", b, b"2"), (b"DEL", a, b), (b"GET", a)]) == \
        [True, True, 2, None]  # redis-py's pipeline: its response callbacks applied


def _node_id(node: redis.Redis) -> str:
    value = node.execute_command("CLUSTER MYID")
    return value.decode() if isinstance(value, bytes) else str(value)


@contextmanager
def _slot_moving(cluster: RedisCluster, slot: int, source: ClusterNode, target: ClusterNode) -> Iterator[None]:
    """Slot `slot` from source to target: MIGRATING/IMPORTING and its keys migrated inside the block
    (the source answers ASK), owned by the target after it (every node told)."""
    src, dst = cluster.get_redis_connection(source), cluster.get_redis_connection(target)
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", _node_id(src))
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", _node_id(dst))
    keys = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
    if keys:
        src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
    yield
    for node in cluster.get_primaries():
        cluster.get_redis_connection(node).execute_command("CLUSTER SETSLOT", slot, "NODE", _node_id(dst))


def test_a_slot_moved_under_a_stale_slot_map_is_followed(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    tag = next(t for t in (uuid.uuid4().hex for _ in range(100)) if key_slot(t.encode()) != key_slot(b"decider"))
    moved = [f"{cluster_key_prefix}{{{tag}}}{name}".encode() for name in ("r", "h", "s")]
    slot = key_slot(tag.encode())
    others = [f"{cluster_key_prefix}o{i}".encode() for i in range(6)]
    run(cluster_client, [(b"SET", moved[0], b"record"), (b"HSET", moved[1], b"f", b"1")] +
        [(b"SET", key, key) for key in others])
    source = cluster_client.get_node_from_key(moved[0])
    target = next(node for node in cluster_client.get_primaries() if node.name != source.name)
    try:
        with _slot_moving(cluster_client, slot, source, target):
            # ASK: the slot's keys are on the target already, the client still sends them to the source.
            replies = run(cluster_client, [(b"GET", moved[0]), (b"HGET", moved[1], b"f"), (b"SET", moved[2], b"new")] +
                          [(b"GET", key) for key in others])
            assert replies[:2] == [b"record", b"1"]
            assert replies[2] in (b"OK", True)
            assert replies[3:] == others
            assert cluster_client.get_node_from_key(moved[0]).name == source.name  # ASK leaves the map as it was
        # MOVED: the target owns the slot; the client's map still names the source until told.
        replies = run(cluster_client, [(b"GET", key) for key in others] +
                      [(b"SET", moved[0], b"record2"), (b"GET", moved[0]), (b"HDEL", moved[1], b"f"), (b"GET", moved[2])])
        assert replies[:6] == others
        assert replies[6] in (b"OK", True) and replies[7:] == [b"record2", 1, b"new"]
        assert cluster_client.get_node_from_key(moved[0]).name == target.name  # the map followed MOVED
        assert run(cluster_client, [(b"GET", moved[0]), (b"GET", others[0])]) == [b"record2", others[0]]
    finally:  # the slot back where it was (the move finished first if an assertion stopped it half-way)
        target_id = _node_id(cluster_client.get_redis_connection(target))
        for node in cluster_client.get_primaries():
            cluster_client.get_redis_connection(node).execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        with _slot_moving(cluster_client, slot, target, source):
            pass
    assert run(cluster_client, [(b"GET", moved[0])]) == [b"record2"]


def test_connections_cut_by_the_server_are_survived(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    keys = [f"{cluster_key_prefix}c{i}".encode() for i in range(9)]
    assert run(cluster_client, [(b"SET", key, key) for key in keys]) == [b"OK"] * len(keys)
    for node in cluster_client.get_primaries():  # every pooled connection of this client is cut
        with redis.Redis(host=node.host, port=node.port) as other:
            other.execute_command("CLIENT KILL", "TYPE", "normal", "SKIPME", "yes")
    assert run(cluster_client, [(b"GET", key) for key in keys]) == keys
