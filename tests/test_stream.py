"""dedup.stream against a real Redis: the canonical stream the engine wrote, read by consumer groups."""

from __future__ import annotations

import pytest
import redis

from dedup import stream
from dedup.article import Article
from dedup.engine import Engine
from dedup.keys import Keys
from tests.textcases import articles


@pytest.fixture
def engine(redis_client: redis.Redis, key_prefix: str) -> Engine:
    engine = Engine(redis_client, Keys(key_prefix))
    for url, body in articles()[:6]:
        engine.add(Article(url=url, text=body))
    return engine


def test_state_of_a_stream_nobody_wrote(redis_client: redis.Redis, key_prefix: str) -> None:
    state = stream.state(redis_client, Keys(key_prefix).canonical_stream)
    assert not state.exists and state.length == 0 and state.groups == ()


def test_state_shows_groups_pending_and_lag(engine: Engine) -> None:
    key = engine.keys.canonical_stream
    taken = list(stream.consume(engine.client, key, "downstream", "worker-1", limit=3))
    stream.ack(engine.client, key, "downstream", [taken[0].id])
    state = stream.state(engine.client, key)
    assert state.length == 6
    assert state.first is not None and state.first.fields["url"] == articles()[0][0]
    assert state.last is not None and state.last.fields["url"] == articles()[5][0]
    (group,) = state.groups
    assert group.name == "downstream" and group.pending == 2 and group.lag == 3
    assert group.oldest_pending == taken[1].id
    assert group.oldest_pending_age is not None and group.oldest_pending_age >= 0
    assert [(c.name, c.pending) for c in group.consumers] == [("worker-1", 2)]


def test_consumer_gets_its_unacknowledged_entries_again_first(engine: Engine) -> None:
    key = engine.keys.canonical_stream
    crashed = list(stream.consume(engine.client, key, "g", "worker", limit=2))  # never acknowledged
    again = list(stream.consume(engine.client, key, "g", "worker", limit=3))
    assert [e.id for e in again[:2]] == [e.id for e in crashed]
    stream.ack(engine.client, key, "g", [e.id for e in again])
    rest = list(stream.consume(engine.client, key, "g", "worker"))
    assert [e.fields["url"] for e in rest] == [url for url, _ in articles()[3:6]]
    stream.ack(engine.client, key, "g", [e.id for e in rest])
    assert list(stream.consume(engine.client, key, "g", "worker", block_ms=50)) == []


def test_groups_read_from_the_start_and_independently(engine: Engine) -> None:
    key = engine.keys.canonical_stream
    first = [e.id for e in stream.consume(engine.client, key, "a", "x")]
    second = [e.id for e in stream.consume(engine.client, key, "b", "y")]
    assert first == second and len(first) == 6
    assert not stream.ensure_group(engine.client, key, "a")


def test_latest_and_oldest_entries(engine: Engine) -> None:
    key = engine.keys.canonical_stream
    newest = stream.latest(engine.client, key, 2)
    oldest = stream.oldest(engine.client, key, 2)
    assert [e.fields["url"] for e in newest] == [articles()[5][0], articles()[4][0]]
    assert [e.fields["url"] for e in oldest] == [articles()[0][0], articles()[1][0]]
    entry = newest[0].as_json()
    assert entry["stream_id"] == newest[0].id and entry["event"] == "new" and entry["text"]
