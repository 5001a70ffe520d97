"""dedup.overrides against a real Redis: split, merge, promote and undo, and every later decision."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from dedup.article import Article
from dedup.engine import Engine, EngineConfig
from dedup.keys import Keys
from dedup.overrides import OverrideError, Overrides
from tests.textcases import articles, edited, excerpt, paragraphs, wrapped_copy

WHO = "tester"


@pytest.fixture
def engine(redis_client: redis.Redis, key_prefix: str) -> Engine:
    return Engine(redis_client, Keys(key_prefix))


@pytest.fixture
def overrides(engine: Engine) -> Overrides:
    return Overrides(engine)


def stream(engine: Engine) -> list[dict[str, str]]:
    entries: Any = engine.client.xrange(engine.keys.canonical_stream)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def members(engine: Engine, article_id: str) -> set[str]:
    record = engine.get(article_id)
    assert record is not None
    return set(engine.cluster(record.cluster)[2])


def canonical_of(engine: Engine, article_id: str) -> str:
    record = engine.get(article_id)
    assert record is not None
    return engine.cluster(record.cluster)[0]


def assert_consistent(engine: Engine) -> None:
    """Counters agree with the records, and every record agrees with its cluster."""
    records = list(engine.records())
    kinds = Counter(r.kind for r in records)
    stats = engine.stats()
    clusters = {r.cluster for r in records if r.kind != "thin"}
    assert stats.get("canonicals", 0) == kinds[None]
    for kind in ("exact", "near", "excerpt"):
        assert stats.get(f"dup_{kind}", 0) == kinds[kind], kind
    assert stats.get("clusters", 0) == len(clusters)
    for r in records:
        if r.kind == "thin":
            continue
        canonical, _, member_ids = engine.cluster(r.cluster)
        assert r.id in member_ids
        assert (r.kind is None) == (r.id == canonical)
        assert r.duplicate_of == (None if r.id == canonical else canonical)
        if len(member_ids) == 1:
            assert r.cluster == r.id  # a singleton is its own cluster


def story(engine: Engine) -> dict[str, str]:
    """One story with its original, a wrapped copy, an edited copy and an excerpt: label -> id."""
    url, body = articles()[0]
    ids = {
        "original": engine.add(Article(url=url, text=body, published=datetime(2019, 11, 19, tzinfo=UTC))),
        "wrapped": engine.add(Article(url="https://farm.example/a", text=wrapped_copy(body))),
        "edited": engine.add(Article(url="https://edit.example/a", text=edited(body, seed=2))),
        "excerpt": engine.add(Article(url="https://digest.example/a", text=excerpt(body))),
    }
    assert len({d.cluster for d in ids.values()}) == 1
    return {label: decision.article_id for label, decision in ids.items()}


def test_split_member_becomes_its_own_canonical_and_goes_on_the_stream(engine: Engine,
                                                                       overrides: Overrides) -> None:
    ids = story(engine)
    entry = overrides.split(ids["edited"], who=WHO, reason="own reporting")
    assert members(engine, ids["edited"]) == {ids["edited"]}
    assert members(engine, ids["original"]) == {ids["original"], ids["wrapped"], ids["excerpt"]}
    split = engine.get(ids["edited"])
    assert split is not None and split.is_canonical and split.cluster == ids["edited"]
    events = stream(engine)
    assert events[-1]["event"] == "new" and events[-1]["id"] == ids["edited"]
    assert events[-1]["text"] == split.text  # completed by emit_pending
    assert entry.who == WHO and entry.reason == "own reporting" and entry.articles == (ids["edited"],)
    assert_consistent(engine)


def test_after_a_split_copies_of_the_member_join_it_never_its_old_cluster(engine: Engine,
                                                                          overrides: Overrides) -> None:
    ids = story(engine)
    body = articles()[0][1]
    split_text = edited(body, seed=2)
    overrides.split(ids["edited"], who=WHO)
    exact_copy = engine.add(Article(url="https://mirror.example/edited", text=split_text))
    shortened = "\n\n".join(paragraphs(split_text)[:-1])
    near_copy = engine.add(Article(url="https://farm2.example/edited", text=wrapped_copy(shortened)))
    original_copy = engine.add(Article(url="https://mirror.example/original", text=body))
    assert exact_copy.cluster == ids["edited"] and exact_copy.kind == "exact"
    assert near_copy.cluster == ids["edited"] and near_copy.kind in ("near", "exact")
    assert original_copy.cluster == engine.get(ids["original"]).cluster  # type: ignore[union-attr]
    # The two clusters stay apart although the new copies match both.
    assert members(engine, ids["edited"]) == {ids["edited"], exact_copy.article_id, near_copy.article_id}
    assert ids["edited"] not in members(engine, ids["original"])
    assert_consistent(engine)


def test_splitting_the_canonical_puts_the_new_canonical_of_the_rest_on_the_stream(
        engine: Engine, overrides: Overrides) -> None:
    ids = story(engine)
    assert canonical_of(engine, ids["wrapped"]) == ids["original"]
    overrides.split(ids["original"], who=WHO)
    rest = members(engine, ids["wrapped"])
    assert rest == {ids["wrapped"], ids["edited"], ids["excerpt"]}
    new_canonical = canonical_of(engine, ids["wrapped"])
    assert new_canonical in rest and new_canonical != ids["excerpt"]
    events = stream(engine)
    assert events[-1]["event"] == "new" and events[-1]["id"] == new_canonical
    assert engine.get(ids["original"]).is_canonical  # type: ignore[union-attr]
    assert_consistent(engine)


def test_merge_joins_two_stories_and_later_copies_keep_them_together(engine: Engine,
                                                                     overrides: Overrides) -> None:
    (url_a, body_a), (url_b, body_b) = articles()[1], articles()[2]
    a = engine.add(Article(url=url_a, text=body_a, published=datetime(2019, 11, 18, tzinfo=UTC)))
    b = engine.add(Article(url=url_b, text=body_b, published=datetime(2019, 11, 19, tzinfo=UTC)))
    copy_b = engine.add(Article(url="https://farm.example/b", text=wrapped_copy(body_b)))
    assert a.cluster != b.cluster
    entry = overrides.merge(a.article_id, b.article_id, who=WHO, reason="same event")
    assert members(engine, a.article_id) == {a.article_id, b.article_id, copy_b.article_id}
    assert canonical_of(engine, b.article_id) == a.article_id  # the earlier publication date
    events = stream(engine)
    assert events[-1]["event"] == "replaced"
    assert events[-1]["id"] == a.article_id and events[-1]["replaces"] == b.article_id
    later = engine.add(Article(url="https://digest.example/b", text=excerpt(body_b)))
    assert later.cluster == engine.get(a.article_id).cluster  # type: ignore[union-attr]
    assert entry.after["canonical"] == a.article_id
    assert_consistent(engine)


def test_promote_pins_the_canonical_even_against_a_later_original(engine: Engine,
                                                                  overrides: Overrides) -> None:
    url, body = articles()[3]
    first = engine.add(Article(url="https://farm.example/c", text=wrapped_copy(body)))
    second = engine.add(Article(url="https://mirror.example/c", text=body))
    overrides.promote(second.article_id, who=WHO)
    assert canonical_of(engine, first.article_id) == second.article_id
    assert stream(engine)[-1]["event"] == "replaced"
    original = engine.add(Article(url=url, text=body, published=datetime(2019, 11, 1, tzinfo=UTC)))
    assert original.cluster == first.cluster
    assert original.canonical_id == second.article_id
    canonical, reason, _ = engine.cluster(first.cluster)
    assert canonical == second.article_id and reason == 1  # "operator override"
    assert_consistent(engine)


def test_undo_reverses_each_override_and_says_so_on_the_stream(engine: Engine, overrides: Overrides) -> None:
    ids = story(engine)
    before = members(engine, ids["original"])
    promoted = overrides.promote(ids["wrapped"], who=WHO)
    assert canonical_of(engine, ids["original"]) == ids["wrapped"]
    undone = overrides.undo(promoted.id, who=WHO)
    assert undone.undoes == promoted.id and undone.undoes_action == "promote"
    assert canonical_of(engine, ids["original"]) == ids["original"]
    assert stream(engine)[-1]["event"] == "replaced" and stream(engine)[-1]["id"] == ids["original"]

    overrides.split(ids["edited"], who=WHO)
    overrides.undo(who=WHO)  # the latest one not undone: the split
    assert members(engine, ids["original"]) == before
    assert not engine.get(ids["edited"]).flags & 8  # type: ignore[union-attr]
    last = stream(engine)[-1]
    assert last["event"] == "replaced" and last["replaces"] == ids["edited"]

    other_url, other_body = articles()[4]
    other = engine.add(Article(url=other_url, text=other_body))
    merged = overrides.merge(ids["original"], other.article_id, who=WHO)
    overrides.undo(merged.id, who=WHO)
    assert members(engine, ids["original"]) == before
    assert members(engine, other.article_id) == {other.article_id}
    assert stream(engine)[-1] == {**stream(engine)[-1], "event": "new", "id": other.article_id}
    log = overrides.log()
    assert [o.action for o in log] == ["promote", "undo", "split", "undo", "merge", "undo"]
    assert all(o.undone_by for o in log if o.action != "undo")
    assert_consistent(engine)


def test_impossible_overrides_are_refused_and_change_nothing(engine: Engine, overrides: Overrides) -> None:
    ids = story(engine)
    lone_url, lone_body = articles()[5]
    lone = engine.add(Article(url=lone_url, text=lone_body))
    thin = engine.add(Article(url="https://brief.example/x", text="Too short to compare at all."))
    snapshot = (engine.stats(), engine.client.xlen(engine.keys.canonical_stream))
    with pytest.raises(OverrideError, match="alone in its cluster"):
        overrides.split(lone.article_id, who=WHO)
    with pytest.raises(OverrideError, match="too little text"):
        overrides.promote(thin.article_id, who=WHO)
    with pytest.raises(OverrideError, match="already in one cluster"):
        overrides.merge(ids["original"], ids["excerpt"], who=WHO)
    with pytest.raises(OverrideError, match="no such article"):
        overrides.split("0123456789abcdef", who=WHO)
    with pytest.raises(OverrideError, match="no override to undo"):
        overrides.undo(who=WHO)
    assert (engine.stats(), engine.client.xlen(engine.keys.canonical_stream)) == snapshot
    assert overrides.log() == []
    entry = overrides.split(ids["excerpt"], who=WHO)
    overrides.undo(entry.id, who=WHO)
    with pytest.raises(OverrideError, match="already undone"):
        overrides.undo(entry.id, who=WHO)
    with pytest.raises(OverrideError, match="itself an undo"):
        overrides.undo(entry.id + 1, who=WHO)


def test_stream_event_ids_stay_unique_across_repeated_overrides(engine: Engine, overrides: Overrides) -> None:
    ids = story(engine)
    for _ in range(2):
        overrides.promote(ids["wrapped"], who=WHO)
        overrides.undo(who=WHO)
    event_ids = [e["event_id"] for e in stream(engine)]
    assert len(event_ids) == len(set(event_ids)) == 5
    assert engine.client.hlen(engine.keys.pending_events) == 0


def test_the_log_keeps_the_newest_entries_and_undo_names_what_was_trimmed(
        redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix), EngineConfig(overrides_maxlen=3))
    overrides = Overrides(engine)
    ids = story(engine)
    for _ in range(3):
        overrides.promote(ids["wrapped"], who=WHO)
        overrides.undo(who=WHO)
    assert redis_client.llen(engine.keys.overrides_log) == 3
    kept = overrides.log()
    # Numbers keep counting past the trim: an id is never given twice.
    assert [(o.id, o.action) for o in kept] == [(4, "undo"), (5, "promote"), (6, "undo")]
    assert kept[1].undone_by == 6
    promoted = overrides.promote(ids["excerpt"], who=WHO)
    assert promoted.id == 7 and [o.id for o in overrides.log()] == [5, 6, 7]
    overrides.undo(promoted.id, who=WHO)  # within the bound: undone as ever
    assert canonical_of(engine, ids["original"]) == ids["original"]
    with pytest.raises(OverrideError, match=r"override #3 was trimmed from the log \(it keeps the newest 3"):
        overrides.undo(3, who=WHO)
    with pytest.raises(OverrideError, match="no override #9"):
        overrides.undo(9, who=WHO)
    assert [o.id for o in overrides.log()] == [6, 7, 8]
    assert_consistent(engine)
