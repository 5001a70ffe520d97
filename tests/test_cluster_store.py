"""The Redis users other than the decision path, on a real 3-primary Redis Cluster: leases, the inbox
and seen-sets, boilerplate counts, hourly counts, dead letters, control, and the cluster helpers."""

from __future__ import annotations

import time

from redis.cluster import RedisCluster
from redis.crc import key_slot

from crawler import control
from crawler.inbox import Inbox
from crawler.lease import Leases
from dedup import hourly, stream
from dedup.article import Article
from dedup.boilerplate import BoilerplateLearner
from dedup.cluster import beside, delete_keys, get_many, scan_keys, server_info, slot_tag
from dedup.deadletter import DeadLetters
from dedup.keys import Keys
from tests.service_process import article_count
from tests.textcases import articles


def _node(client: RedisCluster, key: str) -> str:
    return str(client.nodes_manager.get_node_from_slot(client.keyslot(key)).name)


def test_helpers_cover_every_primary(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    names = [f"{cluster_key_prefix}k{i}" for i in range(40)]
    assert len({_node(cluster_client, name) for name in names}) == 3
    for index, name in enumerate(names):
        cluster_client.set(name, str(index))
    assert sorted(key.decode() for key in scan_keys(cluster_client, cluster_key_prefix + "*")) == sorted(names)
    assert get_many(cluster_client, [*names[:5], cluster_key_prefix + "none"]) == [b"0", b"1", b"2", b"3", b"4", None]
    assert delete_keys(cluster_client, names) == 40
    assert list(scan_keys(cluster_client, cluster_key_prefix + "*")) == []
    info = server_info(cluster_client, "memory")
    assert info["nodes"] == 3 and info["used_memory"] > 0


def test_beside_names_a_key_in_the_same_slot() -> None:
    assert slot_tag("p:source:news") == "p:source:news"
    assert slot_tag("p:lease:{p:source:news}") == "p:source:news"
    assert slot_tag("p:{}:x") == "p:{}:x"  # an empty tag is no tag
    assert beside("p:source:news", "p:lease:") == "p:lease:{p:source:news}"
    keys = Keys("p:")
    assert key_slot(keys.source_lease("news").encode()) == key_slot(keys.source_state("news").encode())


def test_leases_on_the_cluster(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    keys = Keys(cluster_key_prefix)
    ours = Leases(cluster_client, keys, ttl=30, name="ours")
    theirs = Leases(cluster_client, keys, ttl=30, name="theirs")
    tokens = {}
    for source in ("a", "b", "c", "d", "e", "f"):
        token, status = ours.acquire(source, slot=1000.0)
        assert token is not None, status
        tokens[source] = token
        assert theirs.acquire(source)[1].startswith("busy ours:")
        assert ours.renew(source, token)
        assert ours.release(source, token, {"last_outcome": "ok", "last_completed": f"{time.time():.3f}"})
        assert theirs.acquire(source, slot=1000.0)[1].startswith("crawled")
        assert theirs.acquire(source, min_gap=60)[1].startswith("recent")
    assert len({_node(cluster_client, keys.source_state(s)) for s in tokens}) > 1


def test_inbox_and_seen_sets_on_the_cluster(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    keys = Keys(cluster_key_prefix)
    inbox = Inbox(cluster_client, keys, retention=3 * 86400, consumer="test:1")
    inbox.ensure_group()
    items = [(Article(url=url, text=text), url) for url, text in articles()[:4]]
    ids = inbox.put_many(items)
    assert len(ids) == 4 and inbox.length() == 4
    assert inbox.seen([url for _, url in items] + ["https://unseen.example/x"]) == [True] * 4 + [False]
    read = inbox.read(count=10, block_ms=10)
    assert [entry.article.url for entry in read if entry.article] == [url for _, url in items]
    assert [entry.entry_id for entry in inbox.own_pending()] == ids
    inbox.ack(ids)
    assert inbox.length() == 0 and inbox.own_pending() == []


def test_boilerplate_hourly_dead_letters_and_control_on_the_cluster(cluster_client: RedisCluster,
                                                                    cluster_key_prefix: str) -> None:
    keys = Keys(cluster_key_prefix)
    learner = BoilerplateLearner(cluster_client, keys, retention=86400, min_pages=2, min_share=0.5)
    footer = "Subscribe to our newsletter for the latest updates every single morning"
    pages = [(site, f"{footer}\nStory number {i} about {site} with words enough to count here")
             for i in range(3) for site in ("one.example", "two.example", "three.example")]
    found = learner.observe(pages)
    assert found[0] == frozenset() and all(len(hashes) == 1 for hashes in found[-3:])
    assert learner.known("two.example", footer) == found[-1]

    now = time.time()
    hourly.count(cluster_client, keys, [(now, "near", "wire"), (now - 3600, "canonical", "wire")])
    hour = int(now // hourly.HOUR)
    counts = hourly.read(cluster_client, keys, hour - 1, hour)
    assert [c.kinds for c in counts] == [{"canonical": 1}, {"near": 1}]

    dead = DeadLetters(cluster_client, keys)
    first = dead.add(Article(url="https://x.example/1", text="t"), "boom", stage="decide", origin="test")
    assert [letter.id for letter in dead.read()] == [first] and dead.drop([first]) == 1

    assert control.pause(cluster_client, keys, "wire", who="ops", reason="r")
    assert control.request_crawl(cluster_client, keys, "news", who="ops")
    assert control.take_crawl_request(cluster_client, keys, "news")
    control.set_next_crawls(cluster_client, keys, {"news": now + 60, "wire": None, "sport": now + 5})
    control.record_result(cluster_client, keys, "news", control.CrawlResult(now - 5, now, "ok", "i", {}),
                          {"https://news.example/a": "timeout"}, now=now)
    assert control.results(cluster_client, keys, "news", now)[0]["outcome"] == "ok"
    assert control.failures(cluster_client, keys, "news", now)[0]["url"] == "https://news.example/a"

    cluster_client.xadd(keys.canonical_stream, {"event": "new"})
    assert stream.ensure_group(cluster_client, keys.canonical_stream, "search")
    assert stream.state(cluster_client, keys.canonical_stream, now).length == 1


def test_article_count_visits_every_primary_counts_articles_on_every_primary(cluster_client: RedisCluster, cluster_key_prefix: str) -> None:
    keys = Keys(cluster_key_prefix)
    for index in range(30):
        cluster_client.set(keys.article(f"{index:016x}"), b"x")
    assert article_count(cluster_client, keys) == 30
    assert len({_node(cluster_client, keys.article(f"{i:016x}")) for i in range(30)}) == 3
