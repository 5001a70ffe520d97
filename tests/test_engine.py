"""The engine against a real Redis: copies found, negatives kept apart, canonical by evidence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from dedup.article import Article
from dedup.engine import Engine, EngineConfig
from dedup.index import IndexParams, IndexParamsMismatch
from dedup.keys import Keys
from tests.textcases import articles, edited, excerpt, paragraphs, quoting, wrapped_copy


@pytest.fixture
def engine(redis_client: redis.Redis, key_prefix: str) -> Engine:
    return Engine(redis_client, Keys(key_prefix))


def stream(engine: Engine) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in engine.client.xrange(engine.keys.canonical_stream)
    ]


def test_every_kind_of_copy_joins_the_original(engine: Engine) -> None:
    url, body = articles()[0]
    original = Article(url=url, text=body, title="Original", published=datetime(2019, 11, 19, tzinfo=UTC))
    copies = {
        "exact": Article(url="https://mirror.example/a", text=body),
        "near": Article(url="https://farm.example/a", text=wrapped_copy(body)),
        "excerpt": Article(url="https://digest.example/a", text=excerpt(body)),
        "edited": Article(url="https://edit.example/a", text=edited(body, seed=1)),
        "edited2": Article(url="https://edit2.example/a", text=edited(body, seed=2)),
    }
    first = engine.add(original)
    assert first.is_canonical and first.kind is None
    for label, copy in copies.items():
        decision = engine.add(copy)
        assert decision.cluster == first.cluster, label
        assert decision.canonical_id == first.article_id, label
        assert not decision.is_canonical
    assert engine.get_by_url("https://mirror.example/a").kind == "exact"
    assert engine.get_by_url("https://digest.example/a").kind == "excerpt"
    assert engine.get_by_url("https://farm.example/a").kind in ("near", "exact")
    events = stream(engine)
    assert [e["event"] for e in events] == ["new"]
    assert events[0]["url"] == url


def test_distinct_articles_stay_apart(engine: Engine) -> None:
    decisions = [engine.add(Article(url=url, text=body)) for url, body in articles()]
    assert len({d.cluster for d in decisions}) == len(decisions)
    assert all(d.is_canonical for d in decisions)
    assert len(stream(engine)) == len(decisions)


def test_quoting_a_paragraph_is_not_a_copy(engine: Engine) -> None:
    (url_a, body_a), (url_b, body_b) = articles()[1], articles()[2]
    a = engine.add(Article(url=url_a, text=body_a))
    b = engine.add(Article(url="https://commentary.example/b", text=quoting(body_a, body_b)))
    assert a.cluster != b.cluster


def test_short_items_sharing_site_boilerplate_are_not_merged(engine: Engine) -> None:
    boilerplate = (
        "Subscribers get unlimited access to local reporting from the Valley Courier newsroom, "
        "including breaking alerts, weather, school sports coverage and the weekly county records "
        "digest, delivered every morning before seven by our award winning team of editors."
    )
    decisions = []
    for index, (_, body) in enumerate(articles()[:4]):
        brief = " ".join(paragraphs(body)[0].split()[:35])
        text = brief + "\n" + boilerplate
        decisions.append(engine.add(Article(url=f"https://courier.example/briefs/{index}", text=text)))
    assert len({d.cluster for d in decisions}) == 4


def test_thin_pages_are_recorded_but_never_merged(engine: Engine) -> None:
    decisions = [
        engine.add(Article(url=f"https://video.example/v/{i}", text="Watch the video above."))
        for i in range(3)
    ] + [engine.add(Article(url="https://empty.example/", text=""))]
    assert all(d.kind == "thin" for d in decisions)
    assert len({d.cluster for d in decisions}) == 4
    assert stream(engine) == []
    assert engine.stats()["thin"] == 4


def test_retry_of_a_decided_article_changes_nothing(engine: Engine) -> None:
    url, body = articles()[3]
    first = engine.add(Article(url=url, text=body))
    again = engine.add(Article(url=url + "?utm_source=feed", text=body))
    assert again.known and again.cluster == first.cluster
    assert len(stream(engine)) == 1
    assert engine.stats()["articles"] == 1


def test_original_arriving_after_its_copies_becomes_canonical(engine: Engine) -> None:
    url, body = articles()[4]
    copy = engine.add(Article(url="https://farm.example/x", text=wrapped_copy(body),
                              published=datetime(2024, 4, 14, tzinfo=UTC)))
    short = engine.add(Article(url="https://digest.example/x", text=excerpt(body)))
    original = engine.add(Article(url=url, text=body, published=datetime(2019, 11, 19, tzinfo=UTC)))
    assert original.is_canonical
    assert original.cluster == copy.cluster
    canonical_id, reason, members = engine.cluster(copy.cluster)
    assert canonical_id == original.article_id
    assert set(members) == {copy.article_id, short.article_id, original.article_id}
    events = stream(engine)
    assert [e["event"] for e in events].count("new") <= 2
    replaced = [e for e in events if e["event"] == "replaced"]
    assert replaced and replaced[-1]["id"] == original.article_id
    assert replaced[-1]["text"].startswith(paragraphs(body)[0][:40])


def test_a_page_naming_another_member_makes_it_canonical(engine: Engine) -> None:
    url, body = articles()[5]
    original_url = "https://publisher.example/story"
    first = engine.add(Article(url="https://copy1.example/s", text=body,
                               published=datetime(2019, 1, 1, tzinfo=UTC)))
    second = engine.add(Article(url=original_url, text=body + "\nOne more closing line from the desk."))
    assert not second.is_canonical  # the dated copy wins until a page names the original
    third = engine.add(Article(url="https://copy2.example/s", text=wrapped_copy(body),
                               source_link=original_url))
    canonical_id, reason, _ = engine.cluster(first.cluster)
    assert canonical_id == second.article_id
    assert reason == 2
    assert not third.is_canonical
    engine.emit_pending()
    events = stream(engine)
    assert events[-1]["event"] == "replaced" and events[-1]["id"] == second.article_id
    assert "closing line from the desk" in events[-1]["text"]
    assert engine.client.hlen(engine.keys.pending_events) == 0


def test_rel_canonical_to_another_site_marks_a_copy(engine: Engine) -> None:
    url, body = articles()[6]
    copy = engine.add(Article(url="https://syndicator.example/s", text=body, canonical_link=url))
    original = engine.add(Article(url=url, text=body))
    assert original.is_canonical and original.cluster == copy.cluster


def test_other_signature_parameters_are_refused(redis_client: redis.Redis, key_prefix: str) -> None:
    Engine(redis_client, Keys(key_prefix))
    with pytest.raises(IndexParamsMismatch):
        Engine(redis_client, Keys(key_prefix), EngineConfig(params=IndexParams(bands=20)))


def test_retention_removes_old_articles_and_their_index_entries(engine: Engine) -> None:
    for url, body in articles()[:3]:
        engine.add(Article(url=url, text=body))
    url, body = articles()[0]
    engine.add(Article(url="https://farm.example/old", text=wrapped_copy(body)))
    assert engine.stats()["articles"] == 4
    removed = engine.expire(now=datetime.now(UTC).timestamp() + engine.config.retention + 7200)
    assert removed == 4
    assert engine.stats()["articles"] == 0
    counters = [k for k in engine.client.scan_iter(match=engine.keys.decisions_hour(0)[:-1] + "*")]
    assert counters and all(engine.client.ttl(k) > 0 for k in counters)  # per-hour counts expire on their own
    leftovers = [k for k in engine.client.scan_iter(match=engine.keys.prefix + "*")
                 if not k.decode().endswith(("params", "stats", "canonical")) and k not in counters]
    # Only the sites' boilerplate counts stay, until they expire a retention window after the last page,
    # the decider lease's fencing counter (no lease and no journal: nothing left half done) and the
    # keys its batches wrote, for other processes' caches (for a day).
    assert {k.decode().rsplit(":", 1)[0] for k in leftovers} <= {engine.keys.prefix + "bp",
                                                                  engine.keys.prefix + "{decider}"}
    assert {k.decode() for k in leftovers if "{decider}" in k.decode()} <= {
        engine.keys.prefix + "{decider}:fence", engine.keys.prefix + "{decider}:changes"}
    assert all(0 < engine.client.ttl(k) <= engine.config.retention for k in leftovers if b"{decider}:fence" not in k)


def test_a_cluster_shrunk_to_one_by_retention_is_a_proper_singleton(engine: Engine) -> None:
    url, body = articles()[7]
    copy = engine.add(Article(url="https://farm.example/early", text=wrapped_copy(body)))
    original = engine.add(Article(url=url, text=body))
    assert original.cluster == copy.cluster
    engine.forget([copy.article_id])
    survivor = engine.get(original.article_id)
    assert survivor is not None and survivor.cluster == original.article_id and survivor.kind is None
    assert engine.cluster(survivor.cluster) == (original.article_id, 0, [original.article_id])
    later = engine.add(Article(url="https://farm.example/late", text=wrapped_copy(body)))
    canonical_id, _, members = engine.cluster(later.cluster)
    assert canonical_id == original.article_id
    assert set(members) == {original.article_id, later.article_id}


@pytest.mark.parametrize("index", range(6))
def test_an_excerpt_is_found_even_when_the_original_opens_differently(engine: Engine, index: int) -> None:
    url, body = articles()[index]
    standfirst = ("In brief: what happened, who said what about it, and what comes next, as our "
                  "correspondents reported it from the scene over the course of the day.")
    original = engine.add(Article(url=url, text=standfirst + "\n" + body))
    short = engine.add(Article(url="https://digest.example/e", text=excerpt(body, share=0.4)))
    assert short.cluster == original.cluster
    assert engine.get(short.article_id).kind == "excerpt"
