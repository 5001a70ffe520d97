"""The memo of pure functions of a text: the results are the function's, each new text worked on once, its size bounded."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from dedup import record as rec
from dedup.article import Article
from dedup.engine import Engine, EngineConfig
from dedup.keys import Keys
from dedup.recent import RecentTexts
from dedup.signature import fingerprints_of_clean
from dedup.urls import url_id
from tests.textcases import articles


def test_results_are_the_functions_and_each_new_text_is_computed_once() -> None:
    texts = [body for _, body in articles()]
    memo: RecentTexts[int] = RecentTexts()
    computed: list[str] = []

    def count_words(indices: list[int], batch: list[str]) -> list[int]:
        computed.extend(batch[i] for i in indices)
        return [len(batch[i].split()) for i in indices]

    batch = texts + texts[:2]  # two texts twice in one batch
    assert memo.many(batch, [len(t) for t in batch], lambda ix: count_words(ix, batch)) == [len(t.split()) for t in batch]
    assert sorted(computed) == sorted(texts)
    again = [texts[0], "a new text", texts[1]]
    assert memo.many(again, [len(t) for t in again], lambda ix: count_words(ix, again)) == [len(t.split()) for t in again]
    assert computed[len(texts):] == ["a new text"]


def test_fingerprints_through_the_memo_are_the_batchs_own() -> None:
    texts = [body for _, body in articles()]
    memo: RecentTexts[object] = RecentTexts()
    first = memo.many(texts, [len(t) for t in texts], lambda ix: fingerprints_of_clean([texts[i] for i in ix]))
    mixed = [texts[2], "one two three four five", texts[0]]
    second = memo.many(mixed, [len(t) for t in mixed], lambda ix: fingerprints_of_clean([mixed[i] for i in ix]))
    assert first == fingerprints_of_clean(texts)
    assert second == fingerprints_of_clean(mixed)


def test_it_keeps_at_most_max_chars_of_the_latest_texts() -> None:
    memo: RecentTexts[int] = RecentTexts(max_chars=80)
    computed: list[str] = []

    def length(keys: list[str]) -> Callable[[list[int]], list[int]]:
        def compute(indices: list[int]) -> list[int]:
            computed.extend(keys[i] for i in indices)
            return [len(keys[i]) for i in indices]
        return compute

    texts = [letter * 9 for letter in "abcdefghij"]  # 90 characters in all
    memo.many(texts, [len(t) for t in texts], length(texts))
    computed.clear()
    memo.many(texts[:1], [9], length(texts[:1]))  # the oldest was dropped to stay within 80 characters
    assert computed == [texts[0]]
    computed.clear()
    memo.many(texts[-1:], [9], length(texts[-1:]))
    assert computed == []
    huge = "x" * 11  # over an eighth of the budget: computed every time, never kept
    memo.many([huge], [11], length([huge]))
    memo.many([huge], [11], length([huge]))
    assert computed == [huge, huge]


def test_an_engine_stores_the_same_bytes_with_its_memos_as_without(redis_client: redis.Redis, key_prefix: str) -> None:
    """Copies of a few real articles under several URLs (exact copies, stored as deltas against their
    canonical), decided by an engine with its memos and by one that keeps nothing: every record the
    same, byte for byte, as every memo holds only pure functions of its texts."""
    bodies = [body for _, body in articles()][:6]
    now = float(int(time.time()))
    pages = [Article(url=f"https://copy{copy}.example/news/{number}.html", title=f"Story {number}", text=body)
             for copy in range(4) for number, body in enumerate(bodies)]
    stored = []
    for keeps in (True, False):
        keys = Keys(f"{key_prefix}{'memo' if keeps else 'plain'}:")
        engine = Engine(redis_client, keys, EngineConfig())
        if not keeps:  # a memo that keeps nothing computes every result
            for name in ("_stripped", "_fingerprints", "_spins", "_compressed"):
                setattr(engine, name, RecentTexts(max_chars=0))
            engine.decider._deltas = RecentTexts(max_chars=0)
        decisions = engine.decide(engine.prepare_many(pages, now))
        assert sum(1 for d in decisions if d.kind == "exact") == 18
        records = [redis_client.get(keys.article(url_id(page.url))) for page in pages]
        assert all(records)
        # A canonical's text is in its stream entry, named by the entry's id (a time): the rest must match.
        stored.append([rec.with_text(raw, rec.TEXT_STREAM, b"") if rec.text_section(raw)[0] == rec.TEXT_STREAM
                       else raw for raw in records])
    assert stored[0] == stored[1]
    assert sum(1 for raw in stored[0] if rec.text_section(raw)[0] == rec.TEXT_DELTA) == 18
