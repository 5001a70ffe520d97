"""A bounded memo of pure functions of a text: the same text met again (a page crawled under several URLs,
a story syndicated word for word) is not worked on twice."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_CHARS = 4_000_000
"""Characters of text (keys) a memo keeps at most, the most recently used: a few megabytes."""


class RecentTexts(Generic[T]):
    """Results of one pure function, keyed by its text argument (and anything else it depends on)."""

    def __init__(self, max_chars: int = MAX_CHARS) -> None:
        self.max_chars = max_chars
        self._results: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def many(self, keys: Sequence[Hashable], sizes: Sequence[int], compute: Callable[[list[int]], list[T]]) -> list[T]:
        """The results for `keys` (`sizes`: each key's length in characters); compute(indices) gives the
        results of the keys at those indices that are not kept, in order (once for a key repeated here)."""
        results: list[T | None] = [None] * len(keys)
        missing: dict[Hashable, list[int]] = {}
        with self._lock:
            for index, key in enumerate(keys):
                kept = self._results.get(key)
                if kept is None:
                    missing.setdefault(key, []).append(index)
                else:
                    self._results.move_to_end(key)
                    results[index] = kept[0]
        if missing:
            firsts = [indices[0] for indices in missing.values()]
            for indices, value in zip(missing.values(), compute(firsts), strict=True):
                for index in indices:
                    results[index] = value
            with self._lock:
                for key, first in zip(missing, firsts, strict=True):
                    self._keep(key, results[first], sizes[first])  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def _keep(self, key: Hashable, value: T, size: int) -> None:
        if size > self.max_chars // 8 or key in self._results:
            return  # one huge text would push out everything else
        self._results[key] = (value, size)
        self._chars += size
        while self._chars > self.max_chars:
            _, (_, dropped) = self._results.popitem(last=False)
            self._chars -= dropped
