"""The canonical stream from the reading side: its state, its entries, and consumer groups."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from dedup.keys import reply_text as _text


@dataclass(frozen=True)
class Entry:
    """One stream entry: its id and its fields (see ARCHITECTURE.md, "Stream entry fields")."""

    id: str
    fields: dict[str, str]

    @property
    def at(self) -> float:
        """When the entry was added (the millisecond part of its id)."""
        return entry_time(self.id)

    def as_json(self) -> dict[str, Any]:
        added = datetime.fromtimestamp(self.at, UTC).isoformat()
        return {"stream_id": self.id, "added": added, **self.fields}


@dataclass(frozen=True)
class ConsumerState:
    """One consumer of a group: entries delivered to it and not acknowledged, and its idle time."""

    name: str
    pending: int
    idle: float


@dataclass(frozen=True)
class GroupState:
    """One consumer group: how far it has read and what it holds unacknowledged."""

    name: str
    consumers: tuple[ConsumerState, ...]
    pending: int
    last_delivered: str
    lag: int | None
    """Entries not yet delivered to the group: Redis 7's own figure, or counted (see LAG_COUNT_LIMIT);
    None when there are more than that to count."""
    oldest_pending: str | None = None
    oldest_pending_age: float | None = None
    """Seconds since the oldest unacknowledged entry was added to the stream."""
    oldest_pending_idle: float | None = None
    """Seconds since the oldest unacknowledged entry was last delivered."""


@dataclass(frozen=True)
class StreamState:
    """The stream at a glance."""

    key: str
    exists: bool
    length: int = 0
    first: Entry | None = None
    last: Entry | None = None
    groups: tuple[GroupState, ...] = field(default_factory=tuple)


LAG_COUNT_LIMIT = 1000
"""Redis before 7.0 reports no lag (nor 7.x after some deletions): the entries after the group's last
delivered one are counted instead, up to this many (reading them costs their size)."""


def _count_after(client: redis.Redis, key: str, last_delivered: str) -> int | None:
    """Entries after last_delivered, or None when more than LAG_COUNT_LIMIT."""
    entries: Any = client.xrange(key, min="(" + last_delivered, max="+", count=LAG_COUNT_LIMIT + 1)
    return len(entries) if len(entries) <= LAG_COUNT_LIMIT else None


def entry_time(entry_id: str) -> float:
    return int(entry_id.split("-", 1)[0]) / 1000



def _entry(raw_id: object, raw_fields: dict[Any, Any] | None) -> Entry:
    return Entry(_text(raw_id), {_text(k): _text(v) for k, v in (raw_fields or {}).items()})


def state(client: redis.Redis, key: str, now: float | None = None) -> StreamState:
    """Length, first and last entry, and every consumer group with its pending entries and lag."""
    now = time.time() if now is None else now
    if not client.exists(key):
        return StreamState(key, exists=False)
    first: Any = client.xrange(key, count=1)
    last: Any = client.xrevrange(key, count=1)
    groups = []
    for group in client.xinfo_groups(key):
        name = _text(group["name"])
        consumers = tuple(
            ConsumerState(_text(c["name"]), int(c["pending"]), int(c["idle"]) / 1000)
            for c in client.xinfo_consumers(key, name)
        )
        oldest = client.xpending_range(key, name, min="-", max="+", count=1) if group["pending"] else []
        lag = group.get("lag")
        if lag is None:  # Redis 6.2 has no lag field; 7.x may not know it: count
            lag = _count_after(client, key, _text(group["last-delivered-id"]))
        groups.append(GroupState(
            name=name, consumers=consumers, pending=int(group["pending"]),
            last_delivered=_text(group["last-delivered-id"]), lag=None if lag is None else int(lag),
            oldest_pending=_text(oldest[0]["message_id"]) if oldest else None,
            oldest_pending_age=now - entry_time(_text(oldest[0]["message_id"])) if oldest else None,
            oldest_pending_idle=int(oldest[0]["time_since_delivered"]) / 1000 if oldest else None,
        ))
    return StreamState(
        key, exists=True, length=int(client.xlen(key)),
        first=_entry(*first[0]) if first else None, last=_entry(*last[0]) if last else None,
        groups=tuple(groups),
    )


def _since_id(since: float | None) -> str:
    return "-" if since is None else f"{int(since * 1000)}-0"


def latest(client: redis.Redis, key: str, count: int, since: float | None = None) -> list[Entry]:
    """The newest `count` entries (added at or after `since`, a timestamp, if given), newest first."""
    entries: Any = client.xrevrange(key, max="+", min=_since_id(since), count=count)
    return [_entry(i, f) for i, f in entries]


def oldest(client: redis.Redis, key: str, count: int, since: float | None = None) -> list[Entry]:
    """The oldest `count` entries still in the stream (added at or after `since`, if given), oldest first."""
    entries: Any = client.xrange(key, min=_since_id(since), max="+", count=count)
    return [_entry(i, f) for i, f in entries]


def ensure_group(client: redis.Redis, key: str, group: str) -> bool:
    """Create the consumer group reading from the start of the stream; False when it existed."""
    try:
        client.xgroup_create(key, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
    return True


def consume(client: redis.Redis, key: str, group: str, consumer: str, limit: int | None = None,
            block_ms: int | None = None, batch: int = 100) -> Iterator[Entry]:
    """Entries for one consumer of a group, acknowledged by the caller with `ack` once handled.

    First the entries delivered to this consumer earlier and never acknowledged (it died between
    handling and acknowledging: at-least-once), then new ones. Stops after `limit` entries, or when
    none are left (after waiting up to block_ms for more, when given).
    """
    ensure_group(client, key, group)
    remaining = limit
    cursor = "0"  # this consumer's unacknowledged entries, then ">" for new ones
    while remaining is None or remaining > 0:
        count = batch if remaining is None else min(batch, remaining)
        block = block_ms if cursor == ">" else None
        response: Any = client.xreadgroup(group, consumer, {key: cursor}, count=count, block=block)
        raw_entries = response[0][1] if response else []
        if not raw_entries:
            if cursor == ">":
                return
            cursor = ">"
            continue
        for raw_id, raw_fields in raw_entries:
            if cursor != ">":
                cursor = _text(raw_id)
            if raw_fields is None:  # trimmed from the stream while pending: nothing to hand out
                ack(client, key, group, [_text(raw_id)])
                continue
            yield _entry(raw_id, raw_fields)
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    return


def ack(client: redis.Redis, key: str, group: str, entry_ids: list[str]) -> int:
    """Acknowledge handled entries."""
    return int(client.xack(key, group, *entry_ids)) if entry_ids else 0
