"""Recent duplicates, one story's cluster and its diffs, for the dashboard; every read is bounded.

Listings walk the engine's time buckets (the ids decided in each minute) from the newest, and stop
after `MAX_SCAN` decisions: the page says so when older ones were not looked at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crawler.config import parse_duration
from crawler.render import diff_rows, matching_words
from dedup import record as rec
from dedup.engine import REASONS, Engine
from dedup.overrides import Override, Overrides

MAX_SCAN = 3000
"""Most decisions one listing request reads (newest first) looking for rows that pass its filters."""
MAX_MEMBERS = 500
"""Most members a story page lists; a larger cluster says how many it left out."""
OVERRIDES_WINDOW = 1000
"""A story page looks for overrides of its members among this many latest entries of the log."""
DUPLICATE_KINDS = ("exact", "near", "excerpt")
_KIND_ORDER = {None: 0, "exact": 1, "near": 2, "excerpt": 3, "thin": 4}


def parse_since(text: str, now: float | None = None) -> float | None:
    """The cutoff time a `since` filter names: relative ("30m", "2h", "7d") or a UTC date/time
    ("2026-11-29", "2026-11-29 14:00", ISO 8601 with an offset); None for an empty filter."""
    text = text.strip()
    if not text:
        return None
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use e.g. 30m, 2h, 7d, or 2026-11-29 14:00 in UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class DuplicateRow:
    """A copy and the canonical it was found to copy."""

    record: rec.Record
    canonical: rec.Record | None


@dataclass(frozen=True)
class DuplicatePage:
    """Rows that passed the filters, and how much was looked at to find them."""

    rows: list[DuplicateRow]
    scanned: int
    complete: bool
    """True when every decision in the window was looked at (or the page filled up first)."""


def _newest_ids(engine: Engine, cutoff: float | None, budget: int) -> Iterator[list[str]]:
    """Article ids newest first, in batches, at most `budget` of them, none decided before cutoff's minute."""
    client, keys = engine.client, engine.keys
    span = engine.config.params.time_bucket
    low = int(cutoff // span) if cutoff is not None else "-inf"
    offset = 0
    while budget > 0:
        buckets: Any = client.zrevrangebyscore(keys.time_buckets, "+inf", low, start=offset, num=16)
        if not buckets:
            return
        offset += len(buckets)
        pipe = client.pipeline(transaction=False)
        for bucket in buckets:
            pipe.lrange(keys.time_bucket(int(bucket)), -budget, -1)  # the newest of each minute
        batch: list[str] = []
        for raw_ids in pipe.execute():
            for raw in reversed(raw_ids):
                if budget <= 0:
                    break
                batch.append(raw.hex())
                budget -= 1
        if batch:
            yield batch


def recent_duplicates(engine: Engine, *, kinds: tuple[str, ...] = (), source: str = "",
                      since: float | None = None, limit: int = 50, max_scan: int = MAX_SCAN) -> DuplicatePage:
    """The newest duplicate decisions of these kinds, from this source or site, since a time."""
    wanted = set(kinds or DUPLICATE_KINDS)
    source = source.strip()
    found: list[rec.Record] = []
    scanned = 0
    for batch in _newest_ids(engine, since, max_scan):
        scanned += len(batch)
        for start in range(0, len(batch), 500):
            for record in engine.get_many(batch[start : start + 500]):
                if record.kind not in wanted or (since is not None and record.arrived < since):
                    continue
                if source and source not in (record.source, record.site):
                    continue
                found.append(record)
                if len(found) >= limit:
                    break
            if len(found) >= limit:
                break
        if len(found) >= limit:
            break
    canonicals = {r.id: r for r in engine.get_many(sorted({r.duplicate_of for r in found if r.duplicate_of}))}
    rows = [DuplicateRow(r, canonicals.get(r.duplicate_of or "")) for r in found]
    return DuplicatePage(rows, scanned, complete=len(rows) >= limit or scanned < max_scan)


@dataclass(frozen=True)
class Story:
    """One article's cluster: the canonical, why it won, the members and the overrides about them."""

    asked: rec.Record
    cluster: str
    canonical: rec.Record | None
    reason: int
    members: list[rec.Record]
    total_members: int
    overrides: list[Override]

    @property
    def reason_text(self) -> str:
        return REASONS.get(self.reason, f"reason {self.reason}")

    def names_canonical(self, member: rec.Record) -> bool:
        """The member's rel=canonical, og:url or Source link points at the canonical."""
        canonical_id = self.canonical.id if self.canonical else None
        return bool(canonical_id) and member.id != canonical_id and canonical_id in (
            member.canonical_link, member.source_link)

    @property
    def named_by(self) -> list[rec.Record]:
        """The members whose pages name the canonical."""
        return [m for m in self.members if self.names_canonical(m)]

    def member(self, ref: str) -> rec.Record | None:
        return next((m for m in self.members if ref in (m.id, m.url)), None)


FLAGS = (
    (rec.PINNED, "pinned", "an operator made it the canonical"),
    (rec.SPLIT, "split", "an operator split it out: never merged by the engine"),
    (rec.SYNDICATED, "syndicated", "the page says it republishes (a Source or Read Full Article line)"),
    (rec.CANONICAL_ELSEWHERE, "canonical elsewhere", "its rel=canonical or og:url names a page on another site"),
)


def flag_names(record: rec.Record) -> list[tuple[str, str]]:
    """(name, meaning) of each flag the record carries."""
    return [(name, meaning) for flag, name, meaning in FLAGS if record.flags & flag]


def story(engine: Engine, ref: str) -> Story | None:
    """The cluster of the article named by id or URL; None when there is no such article."""
    asked = engine.find(ref)
    if asked is None:
        return None
    if asked.kind == "thin":
        return Story(asked, asked.cluster, None, 0, [asked], 1, [])
    canonical_id, reason, member_ids = engine.cluster(asked.cluster)
    shown = member_ids[:MAX_MEMBERS]
    for must in (canonical_id, asked.id):
        if must not in shown:
            shown.append(must)
    members = engine.get_many(shown)
    canonical = next((m for m in members if m.id == canonical_id), None)
    members.sort(key=lambda m: (m.id != canonical_id, _KIND_ORDER.get(m.kind, 5), -(m.similarity or 0), m.url))
    overrides = Overrides(engine).about({m.id for m in members}, latest=OVERRIDES_WINDOW)
    return Story(asked, asked.cluster, canonical, reason, members, len(member_ids), overrides)


@dataclass(frozen=True)
class DiffLine:
    """One aligned paragraph pair: its op ("same", "changed", "only_a", "only_b") and each side as
    runs of (text, differs) so the template can mark the differing words."""

    op: str
    left: tuple[tuple[str, bool], ...]
    right: tuple[tuple[str, bool], ...]


def _runs(words: list[str], keep: set[int]) -> tuple[tuple[str, bool], ...]:
    """Consecutive words that differ (or not) joined by spaces (the template puts a space between runs)."""
    runs: list[tuple[str, bool]] = []
    for index, word in enumerate(words):
        differs = index not in keep
        if runs and runs[-1][1] == differs:
            runs[-1] = (runs[-1][0] + " " + word, differs)
        else:
            runs.append((word, differs))
    return tuple(runs)


def side_by_side(canonical_text: str, member_text: str) -> list[DiffLine]:
    """The canonical's and a member's paragraphs aligned, differing words marked."""
    lines = []
    for row in diff_rows(canonical_text, member_text):
        if row.op == "changed":
            words_a, words_b = row.text_a.split(), row.text_b.split()
            keep_a, keep_b = matching_words(words_a, words_b)
            lines.append(DiffLine(row.op, _runs(words_a, keep_a), _runs(words_b, keep_b)))
        else:
            left = ((row.text_a, row.op == "only_a"),) if row.text_a else ()
            right = ((row.text_b, row.op == "only_b"),) if row.text_b else ()
            lines.append(DiffLine(row.op, left, right))
    return lines


def override_log(engine: Engine, limit: int) -> list[Override]:
    """The latest `limit` overrides, newest first."""
    return list(reversed(Overrides(engine).log(latest=limit)))
