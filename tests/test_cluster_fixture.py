"""The test Redis Cluster itself: three primaries covering every slot, keys spread over them."""

from __future__ import annotations

from redis.cluster import RedisCluster


def test_cluster_has_three_primaries_covering_every_slot(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    primaries = cluster_client.get_primaries()
    assert len(primaries) == 3
    slots = cluster_client.cluster_slots(target_nodes=RedisCluster.RANDOM)
    covered = sum(end - start + 1 for start, end in slots)
    assert covered == 16384
    keys = [f"{cluster_key_prefix}k{i}" for i in range(60)]
    for key in keys:
        cluster_client.set(key, "1")
    holders = {cluster_client.nodes_manager.get_node_from_slot(cluster_client.keyslot(key)).name for key in keys}
    assert len(holders) == 3
