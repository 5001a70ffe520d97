"""Redis commands that work the same on one server and on a Redis Cluster.

A cluster refuses a command, script or MULTI block whose keys hash to different slots (CROSSSLOT),
and SCAN sees one node only. The helpers here split multi-key reads and deletes into per-key commands
in one pipeline (redis-py's cluster pipeline sends each node its share), scan every primary, and name
keys that must change together under one hash tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

DELETE_BATCH = 500


def is_cluster(client: object) -> bool:
    """True for a Redis Cluster client (or one of its pipelines)."""
    return isinstance(client, RedisCluster)


def slot_tag(key: str) -> str:
    """The part of `key` Redis Cluster hashes: the text of its first non-empty {...}, else the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def beside(key: str, name: str) -> str:
    """A key called `name` in the same cluster slot as `key` (a hash tag naming what `key` hashes),
    so that one script or MULTI block may touch both."""
    tag = slot_tag(key)
    if "{" in tag or "}" in tag:
        raise ValueError(f"cannot place a key beside {key!r}: braces outside a hash tag")
    return f"{name}{{{tag}}}"


def scan_keys(client: Any, match: str, count: int = 1000) -> Iterator[bytes]:
    """Every key matching `match`, on every primary of a cluster (SCAN alone sees one node)."""
    if is_cluster(client):
        yield from client.scan_iter(match=match, count=count, target_nodes=RedisCluster.PRIMARIES)
    else:
        yield from client.scan_iter(match=match, count=count)


SUMMED_INFO = ("used_memory", "used_memory_peak", "maxmemory", "used_memory_rss")


def server_info(client: Any, section: str) -> dict[str, Any]:
    """INFO `section` of the server, or of a cluster's primaries together: sizes summed, the rest from
    the first primary, and "nodes" (how many primaries answered; 1 for a server)."""
    if not is_cluster(client):
        return {**client.info(section), "nodes": 1}
    per_node = client.info(section, target_nodes=RedisCluster.PRIMARIES)
    infos = [info for _, info in sorted(per_node.items())]
    merged: dict[str, Any] = {**infos[0], "nodes": len(infos)}
    for name in SUMMED_INFO:
        if name in merged:
            merged[name] = sum(int(info.get(name) or 0) for info in infos)
    return merged


def get_many(client: Any, keys: Sequence[str]) -> list[Any]:
    """GET of each key, in order: one MGET on a server, per-key GETs in one pipeline on a cluster."""
    if not keys:
        return []
    if not is_cluster(client):
        return list(client.mget(keys))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    return list(pipe.execute())


def delete_keys(client: Any, keys: Iterable[str | bytes]) -> int:
    """Delete keys (any number, any slots) in batches; returns how many existed."""
    deleted = 0
    batch: list[str | bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= DELETE_BATCH:
            deleted += _delete(client, batch)
            batch = []
    if batch:
        deleted += _delete(client, batch)
    return deleted


def _delete(client: Any, keys: list[str | bytes]) -> int:
    if not is_cluster(client):
        return int(client.delete(*keys))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.delete(key)
    return sum(int(n) for n in pipe.execute())


def run_script(script: Script, keys: Sequence[Any], args: Sequence[Any], pipe: Any) -> None:
    """Queue a registered script (whose keys share one slot) on a pipeline of either kind.

    A server pipeline loads the script before it runs; a cluster pipeline cannot, and a NOSCRIPT reply
    would fail it after other nodes ran their share, so there the script goes by its text (EVAL: the
    server caches it compiled, by its hash, as it does a loaded one).
    """
    if isinstance(pipe, redis.client.Pipeline):
        script(keys=keys, args=args, client=pipe)
    else:
        pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)  # ClusterPipeline has no eval()
