"""The compact storage layout: band shards sized to the index, b-bit signatures, and the text of a
canonical kept once (in its canonical stream entry), with what happens once that entry is trimmed."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from crawler.cli import main as cli
from dedup import record as rec
from dedup.article import Article
from dedup.engine import Engine, EngineConfig
from dedup.index import DEFAULT_SHARDS, IndexParams, IndexParamsMismatch, split_fields
from dedup.keys import Keys
from dedup.policy import Facts
from tests.textcases import articles, edited, wrapped_copy


@pytest.fixture
def engine(redis_client: redis.Redis, key_prefix: str) -> Engine:
    return Engine(redis_client, Keys(key_prefix))


def test_shards_are_sized_to_the_expected_index_and_an_index_keeps_its_own(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    assert IndexParams.for_size(0).shards == DEFAULT_SHARDS
    big = IndexParams.for_size(1_000_000)
    assert big.shards * 512 > 1_000_000 * 41 * 1.5, "a shard would pass the listpack limit near the expected size"
    assert big.field_bytes == 2 and IndexParams().field_bytes == 3
    sized = Engine(redis_client, Keys(key_prefix), EngineConfig(params=IndexParams.for_size(1_000_000)))
    url, body = articles()[0]
    sized.add(Article(url=url, text=body))
    # A process configured for another size works on the index as it was created.
    other = Engine(redis_client, Keys(key_prefix), EngineConfig(params=IndexParams.for_size(10_000)))
    assert other.config.params.shards == big.shards
    assert other.add(Article(url="https://copy.example/1", text=wrapped_copy(body))).kind is not None
    with pytest.raises(IndexParamsMismatch):
        Engine(redis_client, Keys(key_prefix), EngineConfig(params=IndexParams(bits=16)))


def test_band_fields_are_the_band_and_the_rest_of_the_hash(engine: Engine) -> None:
    url, body = articles()[1]
    engine.add(Article(url=url, text=body))
    stored = engine.get_by_url(url)
    assert stored is not None
    slot_keys, packed = engine_slots(engine, stored)
    fields = split_fields(packed, stored.content_hash)
    assert {len(field) for field in fields[:-1]} == {1 + engine.config.params.field_bytes}
    for key, field in zip(slot_keys, fields, strict=True):
        assert bytes.fromhex(stored.id) in (engine.client.hget(key, field) or b"")


def engine_slots(engine: Engine, stored: rec.Record) -> tuple[list[str], bytes]:
    from dedup.index import slots

    return slots(engine.keys, engine.config.params, stored.signature, stored.lead_signature,
                 stored.content_hash, stored.second_lead_signature)


def test_a_canonical_keeps_its_text_in_its_stream_entry_a_copy_in_its_record(engine: Engine) -> None:
    url, body = articles()[2]
    original = engine.add(Article(url=url, text=body, published=datetime(2019, 11, 19, tzinfo=UTC)))
    copy = engine.add(Article(url="https://copy.example/2", text=edited(body, seed=3)))
    assert copy.kind == "near"
    raw = engine.client.get(engine.keys.article(original.article_id))
    assert raw is not None and body.split()[5].encode() not in raw
    assert len(raw) < len(body) // 3, "the canonical's record holds its text a second time"
    stored = engine.get(original.article_id)
    assert stored is not None and stored.text_ref and not stored.text_expired
    queued = engine.client.xrange(engine.keys.canonical_stream, stored.text_ref, stored.text_ref)[0][1]
    assert stored.text == queued[b"text"].decode() and len(stored.text) > len(body) // 2
    copy_record = engine.get(copy.article_id)
    assert copy_record is not None and not copy_record.text_ref and copy_record.text_base == original.article_id
    assert len(stored.signature) == 128 and len(stored.lead_signature) == 32


def test_a_copy_is_stored_as_a_delta_and_gets_its_whole_text_back_before_its_base_goes(engine: Engine) -> None:
    url, body = articles()[5]
    original = engine.add(Article(url=url, text=body, published=datetime(2019, 11, 19, tzinfo=UTC)))
    copies = {
        "https://copy.example/5": edited(body, seed=6),
        "https://mirror.example/5": body,
        "https://farm.example/5": wrapped_copy(body),
    }
    decided = {url: engine.add(Article(url=url, text=text)) for url, text in copies.items()}
    assert all(d.duplicate_of == original.article_id for d in decided.values())
    whole = {}
    for copy_url, decision in decided.items():
        raw = engine.client.get(engine.keys.article(decision.article_id))
        stored = engine.get(decision.article_id)
        assert stored is not None and stored.text_base == original.article_id
        assert len(raw) < len(body) // 3, f"{copy_url}: a delta costs a fraction of the text"
        assert engine.prepare(Article(url=copy_url, text=copies[copy_url])).fingerprint.clean_text == stored.text
        whole[decision.article_id] = stored.text
    assert engine.forget([original.article_id]) == 1
    for article_id, text in whole.items():
        after = engine.get(article_id)
        assert after is not None and after.text_base is None and after.text_z and after.text == text


def test_a_delta_whose_base_text_expired_is_expired_too(engine: Engine) -> None:
    url, body = articles()[1]
    original = engine.add(Article(url=url, text=body, published=datetime(2019, 11, 19, tzinfo=UTC)))
    copy = engine.add(Article(url="https://copy.example/1", text=edited(body, seed=7)))
    engine.client.xtrim(engine.keys.canonical_stream, maxlen=0)
    stored = engine.get(copy.article_id)
    assert stored is not None and stored.text_base == original.article_id and stored.text_expired
    assert stored.text == ""


def test_a_trimmed_entry_leaves_the_text_expired_and_the_cli_says_so(
    engine: Engine, redis_server_url: str, key_prefix: str
) -> None:
    url, body = articles()[3]
    original = engine.add(Article(url=url, text=body, published=datetime(2019, 11, 19, tzinfo=UTC)))
    copy = engine.add(Article(url="https://copy.example/3", text=edited(body, seed=4)))
    engine.client.xtrim(engine.keys.canonical_stream, maxlen=0)
    stored = engine.get(original.article_id)
    assert stored is not None and stored.text_expired and stored.text == ""
    runner = CliRunner()
    where = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    shown = runner.invoke(cli, ["show", url, "--diff", "https://copy.example/3", *where])
    assert shown.exit_code == 0, shown.output
    assert "expired" in shown.output and "trimmed" in shown.output
    as_json = runner.invoke(cli, ["show", url, "--diff", "https://copy.example/3", "--json", *where])
    assert json.loads(as_json.stdout)["text_expired"] == [original.article_id, copy.article_id]
    explained = runner.invoke(cli, ["explain", "https://copy.example/3", url, *where])
    assert explained.exit_code == 1 and "expired" in explained.output
    assert engine.get(copy.article_id).text_expired  # type: ignore[union-attr]  # its delta base went too


def test_a_replaced_event_for_a_member_whose_text_expired_is_still_queued_saying_so(engine: Engine) -> None:
    url, body = articles()[4]
    first = engine.add(Article(url="https://farm.example/4", text=wrapped_copy(body),
                               published=datetime(2024, 4, 14, tzinfo=UTC)))
    # An earlier publication wins: the first member is demoted, its text still in its stream entry.
    earlier = engine.add(Article(url=url, text=body, published=datetime(2019, 11, 19, tzinfo=UTC)))
    assert earlier.is_canonical
    first_entry = engine.get(first.article_id).text_ref  # type: ignore[union-attr]
    assert first_entry
    engine.client.xdel(engine.keys.canonical_stream, first_entry)
    # A page naming the first member makes it canonical again: its text is gone from the stream.
    named = engine.add(Article(url="https://third.example/4", text=edited(body, seed=5),
                               source_link="https://farm.example/4"))
    assert named.canonical_id == first.article_id
    engine.emit_pending()
    last = engine.client.xrevrange(engine.keys.canonical_stream, count=1)[0][1]
    assert last[b"event"] == b"replaced" and last[b"id"].decode() == first.article_id
    assert last[b"text_expired"] == b"1" and last[b"text"] == b""
    assert engine.client.hlen(engine.keys.pending_events) == 0


def test_an_earlier_record_version_is_refused_plainly() -> None:
    with pytest.raises(ValueError, match="version 2"):
        rec.unpack("00" * 8, bytes([2]) + b"\x00" * 100)


def test_the_expected_size_is_read_from_the_config(tmp_path: Path) -> None:
    from crawler.cli import engine_config
    from crawler.config import load_settings

    config = tmp_path / "sources.toml"
    config.write_text('[dedup]\nexpected_articles = 2000000\n')
    settings = load_settings(config, env={})
    assert settings.dedup.expected_articles == 2_000_000
    assert engine_config(settings).params == IndexParams.for_size(2_000_000)
    # By default a new index is sized for a million articles; 0 asks for the smallest layout.
    assert engine_config(load_settings(None, env={})).params == IndexParams.for_size(1_000_000)
    config.write_text('[dedup]\nexpected_articles = 0\n')
    assert engine_config(load_settings(config, env={})).params == IndexParams()


def test_status_says_when_the_index_has_outgrown_its_size(redis_server_url: str, redis_client: redis.Redis,
                                                          key_prefix: str) -> None:
    """An index keeps the shard count it was created with; once its shards pass Redis's listpack
    limit, `status` says so and what to do."""
    engine = Engine(redis_client, Keys(key_prefix), EngineConfig(params=IndexParams(shards=4)))
    sentences = [s for _, body in articles() for s in body.replace("\n", " ").split(". ") if len(s.split()) > 6]
    rng = random.Random(4)
    # 90 distinct articles of 15 real sentences each: about 30 band fields apiece over 4 shards.
    list(engine.add_many(Article(url=f"https://site{n % 7}.example/{n}", text=". ".join(rng.sample(sentences, 15)))
                         for n in range(90)))
    fullest = max(redis_client.hlen(engine.keys.band_shard(shard)) for shard in range(4))
    assert fullest > 512
    args = ["status", "--redis-url", redis_server_url, "--key-prefix", key_prefix]
    report = json.loads(CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False).stdout)
    assert report["index"]["shards"] == 4 and report["index"]["shards_past_listpack"] >= 1
    assert report["index"]["fullest_shard"] == fullest
    text = CliRunner().invoke(cli, args, catch_exceptions=False).stdout
    assert "outgrown" in text and "expected_articles" in " ".join(text.split())


def test_records_carry_their_spin_sketch_and_version_3_records_are_still_read(engine: Engine) -> None:
    url, body = articles()[0]
    decision = engine.add(Article(url=url, text=body))
    raw = engine.client.get(engine.keys.article(decision.article_id))
    stored = rec.unpack(decision.article_id, raw)
    assert raw[0] == rec.VERSION == 4 and stored.spin and rec.spin_of(raw) == stored.spin
    # The text section is replaced behind the spin section, which stays.
    swapped = rec.with_text(raw, rec.TEXT_ZLIB, b"x")
    assert rec.spin_of(swapped) == stored.spin and rec.unpack("00" * 8, swapped).text_z == b"x"
    # Version 3 (no spin section): read as before, its spin sketch unknown (worked out from its text).
    strings_end = rec.text_pos(raw) - 2 - 4 * len(stored.spin)
    old = bytes([3]) + raw[1:strings_end] + raw[rec.text_pos(raw):]
    before = rec.unpack(decision.article_id, old)
    assert before.spin is None and rec.spin_of(old) is None and before.url == stored.url
    assert rec.text_section(old) == rec.text_section(raw)
    slots_new = engine._slots_of(Facts(bytes.fromhex(decision.article_id), raw), None)
    slots_old = engine._slots_of(Facts(bytes.fromhex(decision.article_id), old), engine.get(decision.article_id).text)
    assert slots_new == slots_old
