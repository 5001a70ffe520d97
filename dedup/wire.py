"""Commands in one round trip, packed and parsed by hiredis: on one server, or per node of a Redis Cluster.

A decision sends ~100 single-key commands (reads, then its write set): redis-py's own pipelines pack
and parse each of them in Python, which costs more than the decision; on a cluster its pipeline also
finds each command's keys and node in Python (benchmarks/cluster_decide.py, 30,000 articles on 3
primaries: the deciding process's CPU 7.3 ms per article that way, 3.0 ms this way, 2.5 ms on one server).
Here the commands are packed by hiredis and sent on connections taken from the client's own pools
(so its TLS, password and timeouts apply), and the replies parsed by a hiredis.Reader: raw RESP
replies, as a standalone client gives them without its response callbacks, an error reply as a
redis.ResponseError in its place (not raised).

On a cluster the commands are grouped by the primary owning their key's slot (as the client's slot
map has it), each node's sent on one of its connections, all nodes before any reply is read. A
command refused with a redirection (MOVED, ASK: a slot moved or moving) or a cluster error
(TRYAGAIN, CLUSTERDOWN), and every command of a node whose connection failed, is sent again through
redis-py's cluster pipeline, which follows redirections and refreshes the slot map: whatever the
callers send must therefore be safe to send twice (reads, and the decider's write sets, which are
made to be replayed). A command this module cannot route (no single key where it expects one) sends
the whole call through that pipeline.
"""

from __future__ import annotations

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Connection, ConnectionPool
from redis.crc import key_slot
from redis.exceptions import RedisClusterException

try:
    import hiredis
except ImportError:  # pragma: no cover - hiredis is a dependency; the pipeline below works without it
    hiredis = None

# Where the one key of each command the cluster path routes itself sits (the argument's index).
# DEL with one key only, EVAL with one key only (`EVAL script 1 key ...`), XINFO STREAM only.
_KEY_AT = {b"GET": 1, b"SET": 1, b"DEL": 1, b"HSET": 1, b"HDEL": 1, b"HGET": 1, b"HGETALL": 1,
           b"LLEN": 1, b"XADD": 1, b"XRANGE": 1, b"ZADD": 1, b"SREM": 1, b"LTRIM": 1, b"RPUSH": 1,
           b"XINFO": 2, b"EVAL": 3}
# Error replies that say the command did not run there: sent again through redis-py's pipeline.
_RETRY = ("MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN")
_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


def pack(commands: list[tuple]) -> bytes:
    """Commands in the Redis protocol (RESP arrays of bulk strings), as sent and as journalled."""
    if hiredis is not None:
        return b"".join([hiredis.pack_command(command) for command in commands])
    out = []
    for command in commands:
        args = [a if isinstance(a, bytes) else str(a).encode() for a in command]
        out.append(b"*%d\r\n" % len(args))
        for arg in args:
            out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def unpack(payload: bytes) -> list[tuple]:
    """The commands of a packed payload (pack's inverse)."""
    if hiredis is not None:
        reader = hiredis.Reader()
        reader.feed(payload)
        out = []
        while (command := reader.gets()) is not False:
            out.append(tuple(command))
        return out
    commands, pos = [], 0
    while pos < len(payload):
        end = payload.index(b"\r\n", pos)
        count, pos = int(payload[pos + 1 : end]), end + 2
        args = []
        for _ in range(count):
            end = payload.index(b"\r\n", pos)
            length, pos = int(payload[pos + 1 : end]), end + 2
            args.append(payload[pos : pos + length])
            pos += length + 2
        commands.append(tuple(args))
    return commands


def run(client: redis.Redis | RedisCluster, commands: list[tuple], packed: bytes | None = None) -> list:
    """Send commands (tuples of bytes/str/int) in one round trip and return their replies in order,
    an error reply as a redis.ResponseError in its place (not raised). `packed`: the commands already
    packed (pack(commands)), used on a standalone client."""
    if not commands:
        return []
    if hiredis is not None and type(client) is redis.Redis:
        return _run_server(client, commands, packed)
    if hiredis is not None and isinstance(client, RedisCluster):
        return _run_cluster(client, commands)
    return run_pipeline(client, commands)


def run_pipeline(client: redis.Redis | RedisCluster, commands: list[tuple]) -> list:
    """The commands through redis-py's non-transactional pipeline (its replies parsed by its response
    callbacks); on a cluster client it follows redirections and refreshes the slot map."""
    pipe = client.pipeline(transaction=False)
    for name, *args in commands:
        # The name as text: a cluster pipeline looks its routing policy up by name (str only),
        # a subcommand's included (as redis-py's own xinfo_stream sends it).
        text = name.decode() if isinstance(name, bytes) else str(name)
        if text.upper() == "XINFO":
            sub = args.pop(0)
            text = f"XINFO {sub.decode() if isinstance(sub, bytes) else sub}"
        pipe.execute_command(text, *args)
    return pipe.execute(raise_on_error=False)


def _read(conn: Connection, want: int) -> list:
    """`want` replies from a connection the commands were just sent on, parsed by hiredis."""
    reader = hiredis.Reader(replyError=redis.ResponseError)
    sock = conn._sock  # the connection's socket, as redis-py connected it (TLS included)
    if sock is None:
        raise redis.ConnectionError("connection closed")
    replies: list = []
    while len(replies) < want:
        data = sock.recv(1 << 20)
        if not data:
            raise redis.ConnectionError("Connection closed by server.")
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            replies.append(reply)
    return replies


def _run_server(client: redis.Redis, commands: list[tuple], packed: bytes | None) -> list:
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([packed if packed is not None else pack(commands)], check_health=False)
        return _read(conn, len(commands))
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


def _key(command: tuple) -> bytes | None:
    """The one key of a command the cluster path routes itself; None for any other command."""
    name = command[0]
    at = _KEY_AT.get(name)
    if at is None:  # not an upper-case bytes name, as the decider's are
        name = (name if isinstance(name, bytes) else str(name).encode()).upper()
        at = _KEY_AT.get(name)
        if at is None:
            return None
    if len(command) <= at:
        return None
    if at == 1:
        if name == b"DEL" and len(command) != 2:
            return None
    elif at == 2:
        sub = command[1]
        if (sub if isinstance(sub, bytes) else str(sub).encode()).upper() != b"STREAM":
            return None
    elif int(command[2]) != 1:  # EVAL script numkeys key: one key only
        return None
    key = command[at]
    return key if isinstance(key, bytes) else str(key).encode()


def _run_cluster(client: RedisCluster, commands: list[tuple]) -> list:
    """run() on a cluster client: per node, on the node's own pooled connection; what a node did not
    run (a redirection, a cluster error, a failed connection) goes again through run_pipeline."""
    nodes: dict[str, tuple[ClusterNode, list[int]]] = {}  # node name -> (node, positions)
    try:
        for at, command in enumerate(commands):
            key = _key(command)
            if key is None:
                return run_pipeline(client, commands)
            node = client.get_node_from_key(key)
            entry = nodes.get(node.name)
            if entry is None:
                entry = nodes[node.name] = (node, [])
            entry[1].append(at)
    except RedisClusterException:  # a slot the client's map does not cover: let redis-py find it
        return run_pipeline(client, commands)
    replies: list = [None] * len(commands)
    again: list[int] = []
    sent: list[tuple[ConnectionPool, Connection, list[int]]] = []
    try:
        for node, positions in nodes.values():
            pool = client.get_redis_connection(node).connection_pool
            try:
                conn = pool.get_connection()
            except _CONNECTION_ERRORS:
                again.extend(positions)
                continue
            sent.append((pool, conn, positions))
            try:
                conn.send_packed_command([pack([commands[at] for at in positions])], check_health=False)
            except _CONNECTION_ERRORS:
                conn.disconnect()
                sent.pop()
                pool.release(conn)
                again.extend(positions)
        for _, conn, positions in sent:
            try:
                node_replies = _read(conn, len(positions))
            except _CONNECTION_ERRORS:
                conn.disconnect()
                again.extend(positions)
                continue
            for at, reply in zip(positions, node_replies, strict=True):
                replies[at] = reply
                if isinstance(reply, redis.ResponseError) and str(reply).startswith(_RETRY):
                    again.append(at)
    except BaseException:
        for _, conn, _ in sent:
            conn.disconnect()  # replies may be left unread on it
        raise
    finally:
        for pool, conn, _ in sent:
            pool.release(conn)
    if again:
        again.sort()
        for at, reply in zip(again, run_pipeline(client, [commands[at] for at in again]), strict=True):
            replies[at] = reply
    return replies
