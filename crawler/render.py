"""Rendering for the operator CLI: times, scores, and texts compared passage by passage."""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from rich.table import Table
from rich.text import Text

from dedup.normalize import fold, tokens
from dedup.signature import shingle_hashes

MIN_PASSAGE_WORDS = 8
"""Shorter runs of shared words are coincidence (names, stock phrases), not a shared passage."""


def when(stamp: float | None) -> str:
    """A UTC time to the minute, or "-"."""
    if not stamp:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


def iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp, UTC).isoformat() if stamp else None


def ago(stamp: float | None, now: float | None = None) -> str:
    """How long ago: "42s ago", "5m ago", "3h ago", "2d ago"."""
    if not stamp:
        return "never"
    return span(max(0.0, (time.time() if now is None else now) - stamp)) + " ago"


def span(seconds: float) -> str:
    """A duration in its largest whole unit: "42s", "5m", "3h", "2d"."""
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def byte_size(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


# Comparing two texts

@dataclass(frozen=True)
class Passage:
    """A run of words two texts share, in both texts' wording."""

    words: int
    text_a: str
    text_b: str


@dataclass(frozen=True)
class Comparison:
    """Exact overlap of two texts' word shingles and the passages they share."""

    shingles_a: int
    shingles_b: int
    shared_shingles: int
    jaccard: float
    containment_a: float
    """Share of A's shingles found in B."""
    containment_b: float
    passages: tuple[Passage, ...]
    covered_a: float
    """Share of A's words inside shared passages."""
    covered_b: float


def _words(text: str) -> list[str]:
    return text.split()


def _key(word: str) -> str:
    """A word as the engine sees it: folded, case-folded, punctuation dropped."""
    parts = tokens(word)
    return b"".join(parts).decode("utf-8", "replace")


def shingles(text: str) -> np.ndarray:
    """The distinct word-shingle hashes of a text, as the engine computes them."""
    return shingle_hashes(tokens(text))


def compare(text_a: str, text_b: str) -> Comparison:
    """Exact Jaccard and containment of two (clean) texts, and their shared passages."""
    set_a, set_b = shingles(text_a), shingles(text_b)
    shared = len(np.intersect1d(set_a, set_b, assume_unique=True))
    union = len(set_a) + len(set_b) - shared
    words_a, words_b = _words(text_a), _words(text_b)
    keys_a, keys_b = [_key(w) for w in words_a], [_key(w) for w in words_b]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    passages = []
    covered_a = covered_b = 0
    for block in matcher.get_matching_blocks():
        if block.size >= MIN_PASSAGE_WORDS:
            passages.append(Passage(
                block.size, " ".join(words_a[block.a : block.a + block.size]),
                " ".join(words_b[block.b : block.b + block.size]),
            ))
            covered_a += block.size
            covered_b += block.size
    return Comparison(
        shingles_a=len(set_a), shingles_b=len(set_b), shared_shingles=shared,
        jaccard=shared / union if union else 0.0,
        containment_a=shared / len(set_a) if len(set_a) else 0.0,
        containment_b=shared / len(set_b) if len(set_b) else 0.0,
        passages=tuple(sorted(passages, key=lambda p: -p.words)),
        covered_a=covered_a / len(words_a) if words_a else 0.0,
        covered_b=covered_b / len(words_b) if words_b else 0.0,
    )


@dataclass(frozen=True)
class DiffRow:
    """One aligned row of a side-by-side diff: "same", "changed", "only_a" or "only_b"."""

    op: str
    text_a: str
    text_b: str


_PARAGRAPH_KEY = re.compile(r"\W+")


def _paragraph_key(paragraph: str) -> str:
    return _PARAGRAPH_KEY.sub(" ", fold(paragraph).casefold()).strip()


def diff_rows(text_a: str, text_b: str) -> list[DiffRow]:
    """Paragraphs of two texts aligned: shared ones, changed ones, and ones only one side has."""
    paras_a = [p for p in text_a.splitlines() if p.strip()]
    paras_b = [p for p in text_b.splitlines() if p.strip()]
    matcher = difflib.SequenceMatcher(None, [_paragraph_key(p) for p in paras_a],
                                      [_paragraph_key(p) for p in paras_b], autojunk=False)
    rows: list[DiffRow] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            pairs = zip(range(a0, a1), range(b0, b1), strict=True)
            rows.extend(DiffRow("same", paras_a[i], paras_b[j]) for i, j in pairs)
        elif op == "delete":
            rows.extend(DiffRow("only_a", p, "") for p in paras_a[a0:a1])
        elif op == "insert":
            rows.extend(DiffRow("only_b", "", p) for p in paras_b[b0:b1])
        else:
            left, right = paras_a[a0:a1], paras_b[b0:b1]
            for index in range(max(len(left), len(right))):
                a = left[index] if index < len(left) else ""
                b = right[index] if index < len(right) else ""
                rows.append(DiffRow("changed" if a and b else ("only_a" if a else "only_b"), a, b))
    return rows


_MARKS = {"same": "=", "changed": "~", "only_a": "-", "only_b": "+"}


def _marked(words: list[str], keep: set[int], style: str) -> Text:
    """Words joined, the ones not in `keep` styled (they differ from the other side)."""
    text = Text()
    for index, word in enumerate(words):
        if index:
            text.append(" ")
        text.append(word, style=None if index in keep else style)
    return text


def matching_words(words_a: list[str], words_b: list[str]) -> tuple[set[int], set[int]]:
    """Indexes of the words each side shares with the other (as the engine compares words)."""
    matcher = difflib.SequenceMatcher(None, [_key(w) for w in words_a], [_key(w) for w in words_b],
                                      autojunk=False)
    keep_a: set[int] = set()
    keep_b: set[int] = set()
    for block in matcher.get_matching_blocks():
        keep_a.update(range(block.a, block.a + block.size))
        keep_b.update(range(block.b, block.b + block.size))
    return keep_a, keep_b


def _word_marks(a: str, b: str) -> tuple[Text, Text]:
    words_a, words_b = a.split(), b.split()
    keep_a, keep_b = matching_words(words_a, words_b)
    return _marked(words_a, keep_a, "bold red"), _marked(words_b, keep_b, "bold green")


def diff_table(rows: list[DiffRow], title_a: str, title_b: str) -> Table:
    """Side by side: shared paragraphs dim, differing words in bold, a mark column for no-colour output."""
    table = Table(show_lines=True, expand=True)
    table.add_column("", width=1, no_wrap=True)
    table.add_column(title_a, ratio=1, overflow="fold")
    table.add_column(title_b, ratio=1, overflow="fold")
    for row in rows:
        if row.op == "same":
            table.add_row(_MARKS[row.op], Text(row.text_a, style="dim"), Text(row.text_b, style="dim"))
        elif row.op == "changed":
            left, right = _word_marks(row.text_a, row.text_b)
            table.add_row(_MARKS[row.op], left, right)
        else:
            table.add_row(_MARKS[row.op], Text(row.text_a, style="bold red"), Text(row.text_b, style="bold green"))
    return table


DIFF_LEGEND = ("= shared paragraph (dim)   ~ changed: differing words in bold   "
               "- only in the canonical   + only in this member")
