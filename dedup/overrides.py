"""Operator overrides of duplicate decisions: split, merge, promote, and undo.

Each override runs as one server-side script (dedup/lua/override.lua): it rewrites the clusters,
appends an audit entry (who, when, why, what it changed) to the overrides log, and queues the
stream events in the same atomic step; `Engine.emit_pending` then completes the events.

What each override means, now and for every later decision:

- split MEMBER: "this is not a copy". The member gets the SPLIT flag and leaves its cluster as
  the founder and canonical of a cluster of its own (`new` on the stream when it was a duplicate;
  when it was the canonical, the cluster it left elects another one, which is `new`). A split
  cluster is *sealed*: later articles that copy the split member join it (it stays a candidate),
  but no decision ever merges it with another cluster, so neither the member nor its copies are
  folded back into the cluster it was split from. An article matching both joins its best match.
- merge A B: "these are the same story". B's whole cluster joins A's (A's cluster id is kept,
  unless only B's cluster is sealed: then the merged cluster keeps B's seal) and the canonical
  policy elects one canonical; the canonical that loses is `replaced`. Decisions only ever add
  to clusters, so the merged cluster stays together.
- promote MEMBER: "this is the canonical". The member gets the PINNED flag (any other pinned
  member of its cluster loses it); the canonical policy ranks a pinned member first in every
  later election, so a later original, or a cluster merged in, does not displace it. A changed
  canonical is `replaced`.
- undo [ID]: reverses one override (default: the latest not undone) from what it recorded:
  a split member loses the flag and its cluster rejoins the cluster it left; a merge moves the
  articles B's cluster held back out into a cluster of their own (articles decided since stay with
  A's); a promote restores the pins as they were. Undo is itself logged and emits the events of
  the change it makes. Articles that expired since are simply left out.

The log keeps the newest `EngineConfig.overrides_maxlen` entries (trimmed in the same script that
writes one); an override trimmed away can no longer be undone. Entry numbers keep counting.

Every override names articles by id; thin articles (too little text) are never clustered and
cannot be overridden.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from dedup.engine import Engine


class OverrideError(ValueError):
    """The override cannot apply (unknown article, nothing to split, already undone, ...)."""


@dataclass(frozen=True)
class Override:
    """One entry of the overrides log."""

    id: int
    action: str
    """"split", "merge", "promote" or "undo"."""
    who: str
    at: float
    reason: str
    articles: tuple[str, ...]
    urls: tuple[str, ...]
    undoes: int | None = None
    undoes_action: str | None = None
    undone_by: int | None = None
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    events: tuple[dict[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "action": self.action, "who": self.who, "at": self.at, "reason": self.reason,
            "articles": list(self.articles), "urls": list(self.urls), "undoes": self.undoes,
            "undoes_action": self.undoes_action, "undone_by": self.undone_by, "before": self.before,
            "after": self.after,
            "events": list(self.events),
        }


def default_who() -> str:
    """The operator's name for the audit log: $USER, else the login name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _mapping(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _entries(value: Any) -> list[Any]:
    # cjson encodes an empty Lua table as {}.
    return list(value) if isinstance(value, list) else []


def _override(entry: dict[str, Any], undone_by: int | None = None) -> Override:
    return Override(
        id=int(entry["id"]), action=str(entry["action"]), who=str(entry.get("who") or ""),
        at=float(entry.get("at") or 0), reason=str(entry.get("reason") or ""),
        articles=tuple(_entries(entry.get("articles"))), urls=tuple(_entries(entry.get("urls"))),
        undoes=int(entry["undoes"]) if entry.get("undoes") else None,
        undoes_action=str(entry["undoes_action"]) if entry.get("undoes_action") else None, undone_by=undone_by,
        before=_mapping(entry.get("before")), after=_mapping(entry.get("after")),
        events=tuple(_mapping(e) for e in _entries(entry.get("events"))),
    )


class Overrides:
    """Apply and list operator overrides on the engine's clusters."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def split(self, member_id: str, *, who: str, reason: str = "") -> Override:
        """Take a member out of its cluster for good: it is not a copy of the others."""
        return self._apply("split", {"member": member_id}, who, reason)

    def merge(self, a_id: str, b_id: str, *, who: str, reason: str = "") -> Override:
        """Join B's cluster to A's: they are the same story."""
        return self._apply("merge", {"a": a_id, "b": b_id}, who, reason)

    def promote(self, member_id: str, *, who: str, reason: str = "") -> Override:
        """Make a member its cluster's canonical, now and in every later election."""
        return self._apply("promote", {"member": member_id}, who, reason)

    def undo(self, override_id: int | None = None, *, who: str, reason: str = "") -> Override:
        """Reverse one override (default: the latest one not undone yet)."""
        return self._apply("undo", {"target": override_id or 0}, who, reason)

    def _apply(self, action: str, arguments: dict[str, Any], who: str, reason: str) -> Override:
        engine = self.engine
        audit = {"who": who, "at": round(time.time(), 3), "reason": reason}
        raw = engine.scripts.override(
            keys=[],
            args=[engine.keys.prefix, action, json.dumps(arguments), engine.config.thresholds.excerpt_ratio,
                  json.dumps(audit), engine.config.overrides_maxlen],
        )
        result = json.loads(raw)
        if "error" in result:
            raise OverrideError(str(result["error"]))
        engine.emit_pending()
        return _override(result["entry"])

    def log(self, latest: int | None = None) -> list[Override]:
        """Every override (or the `latest` ones), oldest first, each with the id of the undo that
        reversed it (if any: an undo always comes after what it reverses, so the newest entries know)."""
        start = -latest if latest else 0
        raw_entries = [json.loads(raw) for raw in self.engine.client.lrange(self.engine.keys.overrides_log, start, -1)]
        undone = {int(e["undoes"]): int(e["id"]) for e in raw_entries if e.get("action") == "undo"}
        return [_override(e, undone.get(int(e["id"]))) for e in raw_entries]

    def about(self, article_ids: set[str], latest: int | None = None) -> list[Override]:
        """The overrides (of the `latest` ones, if given) that named any of these articles, oldest first."""
        return [o for o in self.log(latest) if article_ids.intersection(o.articles)]
