"""The crawl side's batched inbox writes: every article lands once, in few round trips, and a write
that cannot happen (Redis away at shutdown) fails its callers instead of dropping their articles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from crawler.inbox import Inbox, InboxWriter, Stopped, decode
from dedup.article import Article
from dedup.keys import Keys
from tests.private_redis import PrivateRedis


def _article(number: int) -> Article:
    return Article(url=f"https://example.com/a/{number}", title=f"A {number}", text=f"Text of article {number}.",
                   source="test")


class CountingInbox(Inbox):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batches: list[int] = []

    def put_many(self, items: list[tuple[Article, str]]) -> list[bytes]:
        self.batches.append(len(items))
        return super().put_many(items)


def test_concurrent_puts_land_once_each_in_few_batches(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    inbox = CountingInbox(redis_client, keys, retention=86400, consumer="test:1")

    async def crawl() -> None:
        writer = InboxWriter(inbox, max_batch=16)
        await asyncio.gather(*(writer.put(_article(n), _article(n).url) for n in range(100)))

    asyncio.run(crawl())
    entries = redis_client.xrange(keys.inbox)
    assert sorted(decode(fields).url for _, fields in entries) == sorted(_article(n).url for n in range(100))
    assert sum(inbox.batches) == 100
    assert max(inbox.batches) <= 16
    assert len(inbox.batches) < 100 / 4  # batched, not one round trip per article
    assert all(inbox.seen([_article(n).url for n in range(100)]))


def test_a_lone_put_is_written_at_once(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    inbox = CountingInbox(redis_client, keys, retention=86400, consumer="test:1")

    async def one() -> None:
        await InboxWriter(inbox).put(_article(1), _article(1).url)
        assert redis_client.xlen(keys.inbox) == 1

    asyncio.run(one())
    assert inbox.batches == [1]


def test_redis_away_while_stopping_fails_the_callers_and_marks_nothing_seen(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path).start()
    client = redis.Redis(port=server.port, socket_timeout=1, socket_connect_timeout=1)
    keys = Keys("writer:")
    inbox = Inbox(client, keys, retention=86400, consumer="test:1")
    server.stop()
    stopping = asyncio.Event()

    async def crawl() -> list[object]:
        stopping.set()
        writer = InboxWriter(inbox, stopping=stopping)
        return await asyncio.gather(*(writer.put(_article(n), _article(n).url) for n in range(5)),
                                    return_exceptions=True)

    outcomes = asyncio.run(crawl())
    assert all(isinstance(outcome, Stopped) for outcome in outcomes)
    server.start()
    try:
        assert client.xlen(keys.inbox) == 0
        assert not any(inbox.seen([_article(n).url for n in range(5)]))
    finally:
        server.stop()


@pytest.mark.parametrize("count", [1, 65, 130])
def test_batches_are_bounded_and_complete(redis_client: redis.Redis, key_prefix: str, count: int) -> None:
    keys = Keys(key_prefix)
    inbox = CountingInbox(redis_client, keys, retention=86400, consumer="test:1")

    async def crawl() -> None:
        writer = InboxWriter(inbox)
        await asyncio.gather(*(writer.put(_article(n), _article(n).url) for n in range(count)))

    asyncio.run(crawl())
    assert redis_client.xlen(keys.inbox) == count
    assert max(inbox.batches) <= 64 and sum(inbox.batches) == count
