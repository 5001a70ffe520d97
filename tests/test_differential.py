"""The Python decision path against the Lua scripts it replaced (tests/lua_reference/), on shuffled corpora.

Both decide the same prepared articles, in the same batches, each on a key prefix of its own; then
every decision, record, cluster, counter, index bucket, time bucket and stream event must be the
same (stream entry ids aside: the Python path chooses them explicitly). Then both peek, apply the same
operator overrides and forget the same articles, and must still agree. The reference is the policy
before the spin stage (dedup/spin.py) and before thin pages were compared with articles, so the engine
runs here with both off (EngineConfig.spin=False, thin_copies=False).
"""

from __future__ import annotations

import functools
import io
import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from crawler.ingest import jsonl_records, to_article
from dedup import record as rec
from dedup.article import Article
from dedup.engine import Engine, EngineConfig
from dedup.keys import Keys
from dedup.overrides import OverrideError, Overrides
from tests.lua_reference import LuaReference
from tests.textcases import articles, edited, excerpt, quoting, wrapped_copy

CORPUS = Path(__file__).parent / "data" / "corpus" / "records.jsonl"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()


@functools.cache
def _corpus_articles() -> tuple[Article, ...]:
    out = []
    for raw in jsonl_records(io.BytesIO(CORPUS.read_bytes())):
        article = to_article(raw, "corpus")
        if isinstance(article, Article):
            out.append(article)
    return tuple(out)


def _textcase_articles() -> list[Article]:
    stories = articles()
    out = []
    for index, (url, body) in enumerate(stories):
        other = stories[(index + 1) % len(stories)][1]
        out += [
            Article(url=url, text=body, title=f"Story {index}"),
            Article(url=f"https://mirror{index}.example/a", text=body, canonical_link=url),
            Article(url=f"https://farm{index}.example/a", text=wrapped_copy(body), source_link=url),
            Article(url=f"https://edit{index}.example/a", text=edited(body, seed=2),
                    published=datetime(2026, 3, 1, 9, index % 60, tzinfo=UTC)),
            Article(url=f"https://digest{index}.example/a", text=excerpt(body)),
            Article(url=f"https://quote{index}.example/a", text=quoting(body, other)),
            Article(url=f"https://{'ab'[index % 2]}.example/short{index}", text=body.split(".")[0]),
        ]
    return out


def _text_of(client: redis.Redis, keys: Keys, raw: bytes) -> tuple[str, str | None]:
    """A record's text form (a canonical kept in the stream, or whole) and its text as read back.
    The Python path stores a copy's text as a delta against its canonical's (TEXT_DELTA) in the
    decision's write set, the reference never did (its engine rewrote it after the decision): a delta
    counts as a whole text here, and its text is rebuilt and compared."""
    form, data = rec.text_section(raw)
    if form == rec.TEXT_STREAM:
        entry = data.decode()
        found = client.xrange(keys.canonical_stream, entry, entry, count=1)
        return "stream", found[0][1][b"text"].decode() if found else None
    if form == rec.TEXT_DELTA:
        base = client.get(keys.article(data[:8].hex()))
        base_text = _text_of(client, keys, base)[1] if base else None
        return "whole", rec.undelta(data[8:], base_text) if base_text is not None else None
    return "whole", rec.unpack("0" * 16, raw).text


def _state(client: redis.Redis, keys: Keys, cluster_of: Any) -> dict[str, Any]:
    """Everything the decisions wrote under a prefix, comparable across the two cluster layouts.
    Records are compared byte for byte up to their text section; the text section by its form and
    the text it gives back (the stream entry ids it names differ: the Python path chooses them)."""
    prefix = keys.prefix
    records = {}
    clusters = {}
    for bucket in client.zrange(keys.time_buckets, 0, -1):
        for raw_id in client.lrange(keys.time_bucket(int(bucket)), 0, -1):
            raw = client.get(keys.article(raw_id.hex()))
            records[raw_id.hex()] = (raw[: rec.text_pos(raw)], _text_of(client, keys, raw)) if raw else None
            if raw:
                cluster = rec.unpack(raw_id.hex(), raw).cluster
                clusters[cluster] = cluster_of(cluster)
    buckets = {}
    for key in client.scan_iter(match=prefix + "b:*", count=1000):
        buckets[key.decode()[len(prefix):]] = client.hgetall(key)
    return {
        "hours": client.zrange(keys.time_buckets, 0, -1, withscores=True),
        "records": records,
        "clusters": clusters,
        "stats": {k: v for k, v in client.hgetall(keys.stats).items() if int(v) != 0},
        "buckets": buckets,
        # The reference queued an event whose canonical is an older member through a hash and emitted
        # them in that hash's order (a hashtable's, arbitrary); the Python path in the order decided.
        # Each batch's events are compared as a set below, and every `new` event in order.
        "stream": sorted(tuple(sorted(fields.items())) for _, fields in client.xrange(keys.canonical_stream)),
        "pending": client.hgetall(keys.pending_events),
        "reindex": client.smembers(keys.reindex),
    }


def _assert_same_state(client: redis.Redis, engine: Engine, ref: LuaReference, when: str) -> None:
    new = _state(client, engine.keys, engine.cluster)
    old = _state(client, ref.keys, ref.cluster)
    for part in new:
        assert new[part] == old[part], f"{when}: {part} differ"


def _events(client: redis.Redis, keys: Keys) -> list[list[tuple[bytes, bytes]]]:
    return [list(fields.items()) for _, fields in client.xrange(keys.canonical_stream)]


def _old_decision(result: list) -> tuple:
    kind = rec.KINDS.get(int(result[3]))
    is_dup = kind not in (None, "thin")
    return (result[0].decode() == "known", result[1].decode(), result[2].decode(), kind,
            int(result[4]) / 10000 if is_dup else None, int(result[5]) / 10000 if is_dup else None,
            result[6].decode() or None, result[7].decode() or None)


class _g:  # noqa: N801 - reads as a conversion in the tuples compared below
    """A float as cjson wrote it (14 significant digits) compares equal to the same float within that
    precision (rounding twice, to 14 then 12 digits, could make two equal values differ in the 12th)."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _g) and math.isclose(self.value, other.value, rel_tol=1e-12, abs_tol=1e-13)

    def __repr__(self) -> str:
        return f"{self.value:.14g}"


def _normal(value: Any) -> Any:
    """cjson writes an empty array as {}."""
    if isinstance(value, dict):
        return [] if not value else {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _override(overrides: Overrides, action: str, arguments: dict[str, Any], reason: str) -> object:
    who = "differential"
    if action == "split":
        return overrides.split(arguments["member"], who=who, reason=reason)
    if action == "promote":
        return overrides.promote(arguments["member"], who=who, reason=reason)
    if action == "merge":
        return overrides.merge(arguments["a"], arguments["b"], who=who, reason=reason)
    return overrides.undo(arguments["target"], who=who, reason=reason)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_python_and_lua_decide_alike(redis_client: redis.Redis, key_prefix: str, seed: int) -> None:
    # The reference Lua is the policy before the spin stage and thin copies (issue 11): compared with
    # them turned off.
    engine = Engine(redis_client, Keys(key_prefix),
                    EngineConfig(retention=20 * 365 * 86400.0, spin=False, thin_copies=False))  # no expiry
    ref = LuaReference(redis_client, Keys(key_prefix + "lua:"), engine)
    rng = random.Random(seed)
    corpus = [*_textcase_articles(), *_corpus_articles()]
    rng.shuffle(corpus)
    corpus += rng.sample(corpus, 8)  # decided again: known
    probes = [Article(url=f"https://probe{i}.example/p", text=edited(a.text, seed=9)) for i, a in
              enumerate(rng.sample([a for a in corpus if len(a.text) > 500], 6))]

    # Decide, in batches of varied size (some with the same article twice).
    at, pos, streamed = START, 0, 0
    while pos < len(corpus):
        size = rng.choice([1, 2, 5, 16, 40])
        batch = corpus[pos : pos + size]
        if rng.random() < 0.2:
            batch = [*batch, batch[0]]
        pos += size
        at += rng.choice([1, 30, 3600])
        prepared = engine.prepare_many(batch, now=at)
        new = engine.decide(prepared)
        old = ref.decide(prepared)
        for decision, result in zip(new, old, strict=True):
            assert (decision.known, decision.cluster, decision.canonical_id, decision.kind, decision.similarity,
                    decision.containment, decision.duplicate_of, decision.replaced) == _old_decision(result)
        new_events, old_events = _events(redis_client, engine.keys), _events(redis_client, ref.keys)
        assert sorted(map(sorted, new_events[streamed:])) == sorted(map(sorted, old_events[streamed:]))
        assert [e for e in new_events if e[0] == (b"event", b"new")] == [e for e in old_events if e[0] == (b"event", b"new")]
        streamed = len(new_events)
    _assert_same_state(redis_client, engine, ref, "after deciding")
    assert any(len(members) > 2 for _, _, members in _state(redis_client, engine.keys, engine.cluster)
               ["clusters"].values())

    # Peek (read only) at copies never decided and at articles decided.
    for article in probes + rng.sample(corpus, 6):
        seen = engine.peek(article, limit=20)
        expected = ref.peek(engine.prepare(article, learn=False), limit=20)
        assert seen.status == expected["status"] and seen.cluster == expected["cluster"]
        assert seen.canonical_id == expected["canonical"] and seen.reason == expected["reason"]
        assert (seen.kind or "canonical") == expected["kind"] and seen.known == expected["known"]
        assert list(seen.replaces) == _normal(expected["replaces"]) and seen.candidates == expected["candidates"]
        if seen.similarity is not None:
            assert seen.similarity == round(float(expected["similarity"]), 4)
        # cjson writes numbers with 14 significant digits.
        assert [(m.id, m.cluster, m.canonical_id, m.kind or "", _g(m.score), _g(m.jaccard), _g(m.containment),
                 m.same_site, m.split) for m in seen.matches] == [
            (m["id"], m["cluster"], m["canonical"], m["kind"], _g(m["score"]), _g(m["jaccard"]), _g(m["containment"]),
             m["same_site"], m["split"]) for m in _normal(expected["matches"])]
        if expected.get("stored"):
            assert (seen.stored_kind, seen.stored_cluster) == (expected["stored"]["kind"],
                                                               expected["stored"]["cluster"])
    _assert_same_state(redis_client, engine, ref, "after peeking")

    # Operator overrides, errors included.
    overrides = Overrides(engine)
    multi = [members for _, _, members in (engine.cluster(c) for c in
             {r.cluster for r in engine.records()}) if len(members) > 2]
    singles = [r.id for r in engine.records() if r.kind is None and engine.cluster(r.cluster)[2] == [r.id]]
    actions: list[tuple[str, dict[str, Any]]] = [
        ("split", {"member": multi[0][1]}), ("promote", {"member": multi[1][-1]}),
        ("merge", {"a": multi[2][0], "b": multi[3][0]}), ("split", {"member": singles[0]}),
        ("undo", {"target": 0}), ("promote", {"member": multi[0][2]}), ("undo", {"target": 1}),
        ("undo", {"target": 1}), ("split", {"member": multi[4][0]}), ("merge", {"a": multi[4][0], "b": multi[5][1]}),
        ("undo", {"target": 0}), ("undo", {"target": 99}), ("merge", {"a": multi[6][0], "b": multi[6][1]}),
    ]
    applied = 0
    for number, (action, arguments) in enumerate(actions):
        audit = {"who": "differential", "at": START + number, "reason": f"step {number}"}
        expected = ref.override(action, arguments, audit)
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("dedup.overrides.time.time", lambda number=number: START + number)
                entry = _override(overrides, action, arguments, f"step {number}")
        except OverrideError as exc:
            assert expected.get("error") == str(exc), number
            continue
        assert "error" not in expected, (number, expected)
        got = json.loads(engine.client.lindex(engine.keys.overrides_log, -1))
        assert _normal(got) == _normal(expected["entry"]), number
        assert entry.id == expected["entry"]["id"]  # type: ignore[attr-defined]
        applied += 1
    assert applied >= 7, "most overrides apply (the others are refused alike)"
    _assert_same_state(redis_client, engine, ref, "after overrides")

    # Retention: forget a third of the articles, in chunks.
    ids = sorted({r.id for r in engine.records()})
    doomed = rng.sample(ids, len(ids) // 3)
    for start in range(0, len(doomed), 17):
        chunk = doomed[start : start + 17]
        assert engine.forget(chunk) == ref.forget(chunk)
    _assert_same_state(redis_client, engine, ref, "after forgetting")
