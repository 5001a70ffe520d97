"""The memo of pure functions of a text: the results are the function's, each new text worked on once, its size bounded."""

from __future__ import annotations

from collections.abc import Callable

from dedup.recent import RecentTexts
from dedup.signature import fingerprints_of_clean
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
