"""crawler.workers and the inbox entries it leads to: an article fingerprinted in an extraction worker is
decided exactly as one the decider fingerprints, and entries of the older format still decide."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from crawler.inbox import Inbox, decode_item, encode
from crawler.pipelines import extract_page
from crawler.workers import FingerprintSpec, fingerprinted
from dedup.article import Article
from dedup.engine import Engine, EngineConfig, Fingerprinted
from dedup.keys import Keys

TEXT = "\n".join(
    f"Paragraph {number} of the report says the council voted to widen the harbour road, and the works "
    f"begin in spring after a long consultation with residents and traders of the old town."
    for number in range(6)
)


def _article(number: int = 1, site: str = "news.test") -> Article:
    return Article(url=f"https://{site}/story/{number}", text=TEXT, title="Harbour road widened",
                   published=datetime(2026, 11, 2, 9, 30, tzinfo=UTC), site=site, source="wire",
                   source_link="https://wire.test/original")


def _spec(client: redis.Redis, prefix: str) -> FingerprintSpec:
    spec = FingerprintSpec.of(client, Keys(prefix), EngineConfig())
    assert spec is not None
    return spec


def test_worker_fingerprint_packs_as_the_deciders_own(redis_client: redis.Redis, key_prefix: str) -> None:
    worker = fingerprinted(_article(), _spec(redis_client, key_prefix))
    assert isinstance(worker, Fingerprinted)
    # The decider's engine, on another prefix: the same site history (one page counted), the same records.
    other = f"{key_prefix}decider:"
    engine = Engine(redis_client, Keys(other), EngineConfig())
    own = engine.prepare(_article(), now=1_800_000_000.0)
    from_worker = engine.prepare(worker, now=1_800_000_000.0)
    assert from_worker.packed == own.packed
    assert (from_worker.slot_keys, from_worker.slot_fields) == (own.slot_keys, own.slot_fields)
    assert (from_worker.bucket, from_worker.published_iso, from_worker.id) == (own.bucket, own.published_iso, own.id)


def test_inbox_entry_round_trip(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    inbox = Inbox(redis_client, keys, retention=86400, consumer="test:1")
    inbox.ensure_group()
    item = fingerprinted(_article(1), _spec(redis_client, key_prefix))
    assert isinstance(item, Fingerprinted)
    inbox.put_many([(item, item.article.url), (_article(2), _article(2).url)])
    first, second = inbox.read(count=10, block_ms=10)
    assert first.fingerprinted == item and first.article == item.article and first.item == item
    # An entry of the format before fingerprinting moved to the workers: the decider fingerprints it.
    assert second.fingerprinted is None and second.item == _article(2)


def test_malformed_fingerprint_is_a_problem_not_a_crash(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    inbox = Inbox(redis_client, keys, retention=86400, consumer="test:1")
    inbox.ensure_group()
    item = fingerprinted(_article(), _spec(redis_client, key_prefix))
    fields = encode(item)
    fields["fp_signature"] = b"short"
    redis_client.xadd(keys.inbox, fields)  # type: ignore[arg-type]
    fields = encode(item)
    fields["fp_n_tokens"] = "many"
    redis_client.xadd(keys.inbox, fields)  # type: ignore[arg-type]
    entries = inbox.read(count=10, block_ms=10)
    assert [entry.article for entry in entries] == [None, None]
    assert "fp_signature" in entries[0].problem and "malformed inbox entry" in entries[1].problem


def test_decode_item_keeps_every_fingerprint_field(redis_client: redis.Redis, key_prefix: str) -> None:
    item = fingerprinted(_article(), _spec(redis_client, key_prefix))
    assert isinstance(item, Fingerprinted)
    raw = {key.encode(): value.encode() if isinstance(value, str) else value for key, value in encode(item).items()}
    assert decode_item(raw) == item


def test_unreachable_redis_leaves_fingerprinting_to_the_decider(key_prefix: str) -> None:
    # Nothing listens on port 1: the worker hands the article over as it is, and carries on.
    spec = FingerprintSpec(redis.Connection, {"host": "127.0.0.1", "port": 1, "socket_connect_timeout": 1},
                           key_prefix, EngineConfig())
    assert fingerprinted(_article(), spec) == _article()
    assert fingerprinted(_article(2), spec) == _article(2)  # backed off: not even tried


def test_invalid_article_is_left_for_the_dead_letters(redis_client: redis.Redis, key_prefix: str) -> None:
    bad = Article(url="https://news.test:99999/story", text=TEXT, source="wire")
    assert fingerprinted(bad, _spec(redis_client, key_prefix)) is bad


def test_extract_page_decompresses_and_fingerprints(redis_client: redis.Redis, key_prefix: str) -> None:
    import gzip

    paragraphs = "".join(f"<p>{line}</p>" for line in TEXT.split("\n"))
    page = f"<html><head><title>Harbour road widened</title></head><body><article><h1>Harbour road widened</h1>" \
           f"{paragraphs}</article></body></html>".encode()
    result = extract_page("https://news.test/story/9", gzip.compress(page), None, "utf-8",
                          "2026-11-02T10:00:00+00:00", "wire", fingerprint=_spec(redis_client, key_prefix),
                          content_encoding="gzip", max_size=1 << 20)
    assert isinstance(result, Fingerprinted)
    assert "harbour road" in result.fingerprint.clean_text.lower() and result.fingerprint.n_tokens > 60
