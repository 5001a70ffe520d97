"""dedup.spin: spun copies of real articles are recognised, other outlets' reports are not."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime

import pytest
import redis

from dataclasses import replace

from benchmarks.spinners import SPINNER_A, SPINNER_B, SPINNER_C, same_event_report, split_sentences
from dedup.article import Article
from dedup.engine import Engine
from dedup.index import SPIN_BAND, split_fields
from dedup.junk import strip_junk
from dedup.keys import Keys
from dedup.normalize import tokens
from dedup.policy import Facts
from dedup.signature import estimated_jaccard, fingerprints_of_clean
from dedup.spin import (
    FEW_SENTENCES,
    SKETCH_SIZE,
    SPIN_KEYS,
    SPIN_LOW_JACCARD,
    SPIN_LOW_SHARED,
    SPIN_MIN_ANCHORS,
    SPIN_MIN_JACCARD,
    SPIN_MIN_SHARED,
    SpinScores,
    aligned_share,
    anchor_sketch,
    is_spun_copy,
    profile,
    shared_keys,
    sketch_anchors,
    spin_sketch,
    worth_profiling,
)
from dedup.urls import url_id
from tests.conftest import DATA_DIR

ARTICLES = json.loads((DATA_DIR / "texts" / "articles.json").read_text("utf-8"))
# The English articles long enough to spin (the set holds one Italian page).
BODIES = [
    [p.strip() for p in entry["articleBody"].split("\n") if p.strip()]
    for entry in ARTICLES.values()
    if not entry["url"].endswith(".it/black-friday-per-nostalgici-le-occasioni-da-non-perdere/")
]


def _text(paragraphs: list[str]) -> str:
    return strip_junk("\n".join(paragraphs))


def _word4_jaccard(first: str, second: str) -> float:
    a, b = tokens(first), tokens(second)
    sa = {tuple(a[i : i + 4]) for i in range(len(a) - 3)}
    sb = {tuple(b[i : i + 4]) for i in range(len(b) - 3)}
    return len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize("spinner", [SPINNER_A, SPINNER_B, SPINNER_C], ids=["A", "B", "C"])
def test_spinners_rewrite_most_shingles_but_keep_names(spinner) -> None:
    rng = random.Random(3)
    for paragraphs in BODIES:
        title, spun = spinner.spin("Officials said talks will start", paragraphs, rng)
        assert title != "Officials said talks will start"
        original, copy = _text(paragraphs), _text(spun)
        # A spun copy defeats word shingles: most 4-grams are gone.
        assert _word4_jaccard(original, copy) < 0.7
        names = {w for w in original.split() if w[:1].isupper()}
        kept = {w for w in copy.split() if w[:1].isupper()}
        assert len(names & kept) >= 0.5 * len(names)


def test_spinner_turns_a_quote_into_reported_speech() -> None:
    sentence = '"We will win this election," Smith said.'
    _, spun = SPINNER_A.spin("t", [sentence], random.Random(0))
    assert '"' not in spun[0]
    assert "they would" in spun[0].lower()
    assert "Smith" in spun[0]


def test_spinner_c_reports_speech_with_that_and_shifts_persons_and_tenses() -> None:
    _, spun = SPINNER_C.spin("t", ['Smith said: "We will win this election."'], random.Random(0))
    assert '"' not in spun[0] and "Smith" in spun[0]
    assert " that they would " in spun[0] and "this" not in spun[0]
    _, spun = SPINNER_C.spin("t", ['"I am ready," said Jones.'], random.Random(0))
    assert spun[0].startswith("Jones") and " that he was " in spun[0] and '"' not in spun[0]


def test_spinner_c_is_harsher_than_a_and_b() -> None:
    def median_jaccard(spinner) -> float:
        values = sorted(_word4_jaccard(_text(p), _text(spinner.spin("t", p, random.Random(i))[1]))
                        for i, p in enumerate(BODIES))
        return values[len(values) // 2]

    harsh = median_jaccard(SPINNER_C)
    assert harsh < median_jaccard(SPINNER_A) and harsh < median_jaccard(SPINNER_B)


@pytest.mark.parametrize("spinner", [SPINNER_A, SPINNER_B, SPINNER_C], ids=["A", "B", "C"])
def test_spun_copies_of_real_articles_are_recognised(spinner) -> None:
    found = 0
    for index, paragraphs in enumerate(BODIES):
        _, spun = spinner.spin("headline", paragraphs, random.Random(index))
        scores = profile(_text(paragraphs)).compare(profile(_text(spun)))
        found += is_spun_copy(scores)
    assert found >= len(BODIES) - 1


def test_same_event_reports_and_unrelated_articles_are_not_spun_copies() -> None:
    profiles = [profile(_text(p)) for p in BODIES]
    for i, paragraphs in enumerate(BODIES):
        skeleton = BODIES[(i + 1) % len(BODIES)]
        _, report = same_event_report("A headline", paragraphs, skeleton, random.Random(i))
        assert not is_spun_copy(profiles[i].compare(profile(_text(report))))
        for j in range(i + 1, len(BODIES)):
            assert not is_spun_copy(profiles[i].compare(profiles[j]))


def test_same_event_report_carries_the_originals_names_and_quotes() -> None:
    original = BODIES[0]
    _, report = same_event_report("t", original, BODIES[1], random.Random(5))
    quoted = [s for p in original for s in split_sentences(p) if '“' in s or '"' in s]
    assert any(q in report for q in quoted)
    assert "Trump" in " ".join(report)


def test_swapped_sentences_cost_one_alignment_each() -> None:
    sentences = [f"Mr Alpha{n} met Beta{n} in Gamma{n} on {n} May." for n in range(10)]
    text = " ".join(sentences)
    swapped = sentences[:]
    swapped[2], swapped[3] = swapped[3], swapped[2]
    share = aligned_share(profile(text).sentences, profile(" ".join(swapped)).sentences)
    assert share == pytest.approx(0.9)


def test_few_sentences_need_more_of_them_aligned() -> None:
    scores = SpinScores(anchors=0.5, skeleton=0.25, spots=0.0, aligned=0.6, judged=True, aligned_longer=0.5,
                        sentences=FEW_SENTENCES - 1)
    assert not is_spun_copy(scores)
    assert is_spun_copy(replace(scores, sentences=FEW_SENTENCES))
    assert is_spun_copy(replace(scores, aligned=0.8, aligned_longer=0.8, skeleton=0.35))


def test_a_low_jaccard_candidate_is_profiled_only_when_it_shares_more_spin_keys() -> None:
    low = (SPIN_MIN_JACCARD + SPIN_LOW_JACCARD) / 2
    assert not worth_profiling(low, SPIN_LOW_SHARED - 1, 0.5)
    assert worth_profiling(low, SPIN_LOW_SHARED, 0.5)
    assert worth_profiling(SPIN_LOW_JACCARD, SPIN_MIN_SHARED, 0.5)
    assert not worth_profiling(SPIN_MIN_JACCARD - 0.01, SPIN_KEYS, 0.5)
    assert not worth_profiling(0.5, SPIN_KEYS, 0.5)  # the rules' business


def test_a_short_article_with_few_names_gets_spin_keys() -> None:
    text = ("The mayor of Springfield met Anna Lopez and Tom Berg on 3 May. They spoke about the 40 new homes "
            "planned near Oak Street for 2025.")
    assert SPIN_MIN_ANCHORS <= len(sketch_anchors(text)) < 12
    assert len(spin_sketch(text)) == SPIN_KEYS


def test_short_texts_are_not_judged() -> None:
    scores = profile("Smith met Jones in Paris.").compare(profile("Smith met Jones in Paris."))
    assert not scores.judged
    assert not is_spun_copy(scores)


def test_anchor_sketches_of_a_spun_copy_and_its_original_meet() -> None:
    originals = [anchor_sketch(_text(p)) for p in BODIES]
    for index, paragraphs in enumerate(BODIES):
        _, spun = SPINNER_B.spin("headline", paragraphs, random.Random(index))
        assert set(anchor_sketch(_text(spun))) & set(originals[index])
        assert len(originals[index]) == SKETCH_SIZE
    unrelated = sum(1 for i in range(len(originals)) for j in range(i + 1, len(originals))
                    if set(originals[i]) & set(originals[j]))
    assert unrelated <= 2


def test_spin_keys_of_a_spun_copy_meet_its_originals() -> None:
    sketches = [spin_sketch(_text(p)) for p in BODIES]
    assert all(len(sketch) == SPIN_KEYS for sketch in sketches)
    met = 0
    for index, paragraphs in enumerate(BODIES):
        _, spun = SPINNER_B.spin("headline", paragraphs, random.Random(index))
        met += shared_keys(spin_sketch(_text(spun)), sketches[index]) >= SPIN_MIN_SHARED
    assert met >= len(BODIES) - 1
    assert spin_sketch("Smith met Jones in Paris on 3 May.") == ()


@pytest.fixture
def engine(redis_client: redis.Redis, key_prefix: str) -> Engine:
    return Engine(redis_client, Keys(key_prefix))


@pytest.mark.parametrize("spun_first", [False, True], ids=["original-first", "spun-first"])
def test_engine_joins_a_spun_copy_and_keeps_a_same_event_report_apart(engine: Engine, spun_first: bool) -> None:
    paragraphs = BODIES[2]  # the WeWork story: names, figures and quotes
    _, spun = SPINNER_B.spin("Regulator looks into WeWork", paragraphs, random.Random(7))
    _, report = same_event_report("WeWork under scrutiny", paragraphs, BODIES[5], random.Random(7))
    original = Article(url="https://venturebeat.example/wework", text="\n".join(paragraphs), title="WeWork probe",
                       published=datetime(2019, 11, 18, tzinfo=UTC))
    copy = Article(url="https://contentfarm.example/wework-probe", text="\n".join(spun), title="Regulator looks")
    other = Article(url="https://otheroutlet.example/wework", text="\n".join(report), title="WeWork under scrutiny")
    # The engine's own rules do not find this copy: spinning took most of its word 4-grams.
    assert _word4_jaccard(_text(paragraphs), _text(spun)) < 0.5
    first, second = (copy, original) if spun_first else (original, copy)
    decided_first = engine.add(first)
    decided_second = engine.add(second)
    assert decided_second.cluster == decided_first.cluster
    # The original is the canonical whichever came first (it has a publication date, the copy none).
    assert decided_second.is_canonical == spun_first
    assert engine.get_by_url(copy.url).kind == "near"
    assert engine.get_by_url(original.url).kind is None
    assert engine.cluster(decided_first.cluster)[0] == engine.get_by_url(original.url).id
    reported = engine.add(other)
    assert reported.is_canonical
    assert reported.cluster != decided_first.cluster
    # check (peek) says what add said.
    peeked = engine.peek(Article(url="https://another.example/wework", text="\n".join(spun)))
    assert peeked.status == "dup" and peeked.cluster == decided_first.cluster


def test_engine_joins_a_harsh_spun_copy_under_the_old_jaccard_floor(engine: Engine) -> None:
    paragraphs = BODIES[8]
    _, spun = replace(SPINNER_C, swap_rate=1.0).spin("headline", paragraphs, random.Random(1))
    original, copy = fingerprints_of_clean([_text(paragraphs), _text(spun)])
    # Under 0.12 (the floor before), over SPIN_MIN_JACCARD: profiled because it shares enough spin keys.
    assert SPIN_MIN_JACCARD <= estimated_jaccard(original.signature, copy.signature) < SPIN_LOW_JACCARD
    assert shared_keys(spin_sketch(original.clean_text), spin_sketch(copy.clean_text)) >= SPIN_LOW_SHARED
    first = engine.add(Article(url="https://outlet.example/story", text="\n".join(paragraphs)))
    second = engine.add(Article(url="https://farm.example/p", text="\n".join(spun), title="headline"))
    assert second.cluster == first.cluster
    # One is the canonical (neither is dated: the longer text), the other its near copy.
    kinds = {engine.get_by_url(url).kind for url in ("https://outlet.example/story", "https://farm.example/p")}
    assert kinds == {None, "near"}


def test_a_spun_copy_from_the_same_site_is_not_joined_by_the_spin_stage(engine: Engine) -> None:
    paragraphs = BODIES[2]
    _, spun = SPINNER_A.spin("headline", paragraphs, random.Random(7))
    first = engine.add(Article(url="https://site.example/a", text="\n".join(paragraphs)))
    second = engine.add(Article(url="https://site.example/b", text="\n".join(spun)))
    assert second.is_canonical and second.cluster != first.cluster


def test_spin_keys_leave_the_index_with_the_article(engine: Engine) -> None:
    paragraphs = BODIES[2]
    _, spun = SPINNER_A.spin("headline", paragraphs, random.Random(7))
    kept = engine.add(Article(url="https://venturebeat.example/wework", text="\n".join(paragraphs)))
    engine.forget([kept.article_id])
    later = engine.add(Article(url="https://contentfarm.example/wework", text="\n".join(spun)))
    assert later.is_canonical
    # Nothing under the prefix names the forgotten article any more.
    raw_id = bytes.fromhex(kept.article_id)
    for key in engine.client.scan_iter(match=engine.keys.prefix + "*"):
        if engine.client.type(key) == b"hash":
            assert not any(raw_id in value for value in engine.client.hvals(key)), key


def _spin_corpus() -> tuple[list[Article], dict[str, str]]:
    """Originals (dated), spun copies of each by both spinners on content farms, and another outlet's
    report of the same event, each on a site of its own, shuffled; with each URL's role."""
    rng = random.Random(5)
    out: list[Article] = []
    roles: dict[str, str] = {}
    for i, paragraphs in enumerate(BODIES):
        original = f"https://outlet{i}.example/story"
        out.append(Article(url=original, text="\n".join(paragraphs), title=f"Story {i}",
                           published=datetime(2024, 3, 1 + i, tzinfo=UTC)))
        roles[original] = f"original:{i}"
        for name, spinner in (("a", SPINNER_A), ("b", SPINNER_B)):
            title, spun = spinner.spin(f"Story {i}", paragraphs, random.Random(100 * i + ord(name)))
            url = f"https://farm-{name}{i}.example/p"
            out.append(Article(url=url, text="\n".join(spun), title=title))
            roles[url] = f"spun:{i}"
        title, report = same_event_report(f"Story {i}", paragraphs, BODIES[(i + 3) % len(BODIES)], random.Random(i))
        url = f"https://rival{i}.example/r"
        out.append(Article(url=url, text="\n".join(report), title=title))
        roles[url] = f"report:{i}"
    rng.shuffle(out)
    return out, roles


def _grouping(decisions: list, roles: dict[str, str]) -> tuple[int, int, dict[str, tuple]]:
    """(spun copies in their original's cluster, reports in one, each URL's decision)."""
    by_url = {d.url: d for d in decisions}
    cluster_of = {role.split(":")[1]: by_url[url].cluster for url, role in roles.items() if role.startswith("original")}
    joined = sum(by_url[url].cluster == cluster_of[role.split(":")[1]] for url, role in roles.items()
                 if role.startswith("spun"))
    merged = sum(by_url[url].cluster == cluster_of[role.split(":")[1]] for url, role in roles.items()
                 if role.startswith("report"))
    return joined, merged, {u: (d.cluster, d.canonical_id, d.kind) for u, d in by_url.items()}


def _decide(engine: Engine, batch: list[Article], arrived: float) -> list:
    """Decide a batch arriving at `arrived`: the first to arrive is the canonical among undated copies
    (dedup.policy), so runs compared decision by decision must stamp their arrivals alike."""
    return engine.decide(engine.prepare_many(batch, now=arrived))


def test_processes_taking_turns_decide_spun_copies_as_one_process(redis_client: redis.Redis, key_prefix: str) -> None:
    """Two engines (two processes' worth of caches) taking turns by batch on one prefix reach the
    decisions one engine reaches alone; check (peek) says beforehand what each decision is."""
    corpus, roles = _spin_corpus()
    batches = [corpus[pos : pos + 5] for pos in range(0, len(corpus), 5)]
    # A batch a second: the undated spun copies of a story tie on everything but arrival (then id), so
    # a clock's second ticking at other points of the two runs would give them other canonicals.
    start = float(int(time.time()))
    alone = Engine(redis_client, Keys(key_prefix + "one:"))
    one = [d for n, batch in enumerate(batches) for d in _decide(alone, batch, start + n)]
    turns = [Engine(redis_client, Keys(key_prefix + "two:")), Engine(redis_client, Keys(key_prefix + "two:"))]
    two = [d for n, batch in enumerate(batches) for d in _decide(turns[n % 2], batch, start + n)]
    joined, merged, decided = _grouping(one, roles)
    assert _grouping(two, roles)[2] == decided
    assert joined >= 0.85 * 2 * len(BODIES) and merged == 0
    # Article by article, peek (by the other engine) says what add then does, for the same arrival.
    peeker, adder = Engine(redis_client, Keys(key_prefix + "peek:")), Engine(redis_client, Keys(key_prefix + "peek:"))
    for n, article in enumerate(corpus):
        seen = peeker.peek(article, now=start + n)
        [done] = _decide(adder, [article], start + n)
        joins = done.cluster != done.article_id  # a cluster is named after its first member
        assert (seen.status, seen.cluster, seen.canonical_id) == ("dup" if joins else "new", done.cluster,
                                                                  done.canonical_id)
        assert seen.kind == done.kind and done.replaced == (seen.replaces[0] if seen.replaces else None)


def test_spun_copies_on_the_cluster_as_on_one_server_and_forgotten_with_their_spin_keys(
    redis_client: redis.Redis, key_prefix: str, cluster_client, cluster_key_prefix: str,
) -> None:
    corpus, roles = _spin_corpus()
    results = []
    arrived = float(int(time.time()))  # the same arrivals on both (see _decide)
    for client, prefix in ((redis_client, key_prefix), (cluster_client, cluster_key_prefix)):
        engine = Engine(client, Keys(prefix))
        results.append(_grouping(_decide(engine, corpus, arrived), roles))
    assert results[0] == results[1]
    assert results[1][0] >= 0.85 * 2 * len(BODIES) and results[1][1] == 0
    # Forgetting every article removes every slot it was indexed under, spin keys included.
    ids = [url_id(a.url) for a in corpus]
    slots = []
    for article_id in ids:
        raw = cluster_client.get(engine.keys.article(article_id))
        facts = Facts(bytes.fromhex(article_id), raw)
        stored = engine.get(article_id)
        keys, fields = engine._slots_of(facts, stored.text if stored is not None else None)
        names = split_fields(fields, facts.content)[:-1]  # the content-hash field last
        assert sum(name[0] >= SPIN_BAND for name in names) in (0, SPIN_KEYS)
        slots += list(zip(keys, names, strict=False))
    assert any(name[0] >= SPIN_BAND for _, name in slots)
    assert engine.forget(ids) == len(ids)
    left = [(key, name) for key, name in slots if cluster_client.hget(key, name) is not None]
    assert not left, [(key, name.hex(), name[0] >= SPIN_BAND) for key, name in left][:5]


def test_spin_keys_leave_the_index_with_their_article_after_its_text_expired(
    redis_client: redis.Redis, key_prefix: str,
) -> None:
    """A canonical's text lives in its stream entry, which trimming removes long before retention
    forgets the article; its spin keys (computed from that text) are recorded with it, so that
    forgetting still takes every one of them out of the index (before, they stayed for good)."""
    corpus, _ = _spin_corpus()
    engine = Engine(redis_client, Keys(key_prefix))
    list(engine.add_many(corpus))
    ids = [url_id(a.url) for a in corpus]
    slots = []
    for article_id in ids:
        raw = redis_client.get(engine.keys.article(article_id))
        facts = Facts(bytes.fromhex(article_id), raw)
        keys, fields = engine._slots_of(facts, engine.get(article_id).text)
        slots += list(zip(keys, split_fields(fields, facts.content)[:-1], strict=False))
    assert sum(name[0] >= SPIN_BAND for _, name in slots) >= SPIN_KEYS * len(BODIES)
    assert all(redis_client.hget(key, name) is not None for key, name in slots)
    redis_client.delete(engine.keys.canonical_stream)  # every canonical's text expires
    assert engine.get(ids[0]).text_expired or engine.get(ids[0]).kind is not None
    assert engine.forget(ids) == len(ids)
    left = [(key, name) for key, name in slots if redis_client.hget(key, name) is not None]
    assert not left, [(key, name.hex(), name[0] >= SPIN_BAND) for key, name in left][:5]
