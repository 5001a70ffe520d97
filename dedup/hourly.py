"""Decisions per hour by kind and by source: one small hash per hour that expires by itself.

Charts and rates read a day or a week of these (a few dozen small hashes) instead of scanning
articles. The counts are of decisions as made on arrival: an article later displaced from
canonical to copy stays counted as a canonical decision of its hour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from dedup.keys import Keys

HOUR = 3600
KEEP = 8 * 86400
"""Seconds an hour's counts are kept: a week of hours, and the day before it for comparison."""
KINDS = ("canonical", "exact", "near", "excerpt", "thin")
"""What a decision can be: a new story (canonical), a copy of one kind, or a page too thin to compare."""


@dataclass(frozen=True)
class HourCounts:
    """The decisions of one hour: by kind, and by source then kind."""

    hour: int
    """Hours since the epoch (UTC)."""
    kinds: dict[str, int] = field(default_factory=dict)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def start(self) -> int:
        return self.hour * HOUR

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def count(pipe: Any, keys: Keys, decided: Iterable[tuple[float, str, str]]) -> None:
    """Queue the increments for (arrival time, kind, source) decisions on a pipeline (or client)."""
    increments: dict[int, dict[str, int]] = {}
    for arrived, kind, source in decided:
        fields = increments.setdefault(int(arrived // HOUR), {})
        for name in (kind, f"{kind}|{source}"):
            fields[name] = fields.get(name, 0) + 1
    for hour, fields in increments.items():
        key = keys.decisions_hour(hour)
        for name, amount in fields.items():
            pipe.hincrby(key, name, amount)
        pipe.expire(key, KEEP)


def read(client: redis.Redis, keys: Keys, first_hour: int, last_hour: int) -> list[HourCounts]:
    """Counts of every hour from first_hour to last_hour (inclusive), oldest first; empty hours too."""
    hours = list(range(first_hour, last_hour + 1))
    pipe = client.pipeline(transaction=False)
    for hour in hours:
        pipe.hgetall(keys.decisions_hour(hour))
    result = []
    for hour, raw in zip(hours, pipe.execute(), strict=True):
        kinds: dict[str, int] = {}
        sources: dict[str, dict[str, int]] = {}
        for raw_name, raw_value in raw.items():
            name = raw_name.decode("utf-8", "replace")
            try:
                value = int(raw_value)
            except ValueError:  # not ours to interpret: leave it out rather than fail the chart
                continue
            kind, _, source = name.partition("|")
            if source:
                sources.setdefault(source, {})[kind] = value
            else:
                kinds[kind] = value
        result.append(HourCounts(hour, kinds, sources))
    return result
