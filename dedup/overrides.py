"""Operator overrides of duplicate decisions: split, merge, promote, and undo.

Each override is decided in Python under the decider lease (dedup/decider.py) and written as one
journalled write set: it rewrites the clusters, appends an audit entry (who, when, why, what it
changed) to the overrides log, and queues the stream events, all or (after a kill, replayed by the
next process to take the lease) nothing.

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

from dedup import policy
from dedup import record as rec
from dedup.decider import Store, keep_base_beside, relabel, sealed, stored_event
from dedup.engine import Engine
from dedup.policy import ClusterValue, Facts


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
        with engine.leased():
            store = engine.decider.store()
            entry = _Apply(engine, store).run(action, arguments, audit)  # writes nothing on an error
            engine._commit(store)
        return _override(entry)

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


class _Apply:
    """One override, decided on a Store (the overlay of one write set)."""

    def __init__(self, engine: Engine, store: Store) -> None:
        self.engine = engine
        self.s = store
        self.ratio = engine.config.thresholds.excerpt_ratio
        self.log_key = engine.keys.overrides_log
        self.tag = ""
        self.events: list[dict[str, str]] = []

    def set_flag(self, r: Facts, flag: int, on: bool) -> None:
        if r.has(flag) == on:
            return
        r.flags = r.flags | flag if on else r.flags & ~flag
        self.s.put_record(r)

    def queue_event(self, event: str, canonical: Facts, cluster: bytes, replaces: bytes | None) -> None:
        """An event whose canonical is a stored member; the tag keeps each override's event ids distinct."""
        event_id = f"{event}:{cluster.hex()}:{canonical.id.hex()}"
        if replaces:
            event_id += f":{replaces.hex()}"
        event_id += f":{self.tag}"
        self.s.events.append(stored_event(self.s, event, event_id, canonical, cluster, replaces))
        self.events.append({"event": event, "id": canonical.id.hex(), "cluster": cluster.hex(),
                            "replaces": replaces.hex() if replaces else ""})

    def cluster_of(self, r: Facts) -> list[Facts]:
        value = self.s.cluster(r.cluster)
        if value is None:
            return [r]
        ids = value.ids
        self.s.prefetch_records(ids)
        return [o for o in (r if m == r.id else self.s.record(m) for m in ids) if o is not None]

    def canonical_of(self, cluster: bytes) -> bytes:
        value = self.s.cluster(cluster)
        return value.canonical if value else cluster

    def settle(self, cluster_id: bytes, records: list[Facts]) -> Facts:
        """Make `records` the cluster `cluster_id`: elect the canonical, rewrite every member's cluster and
        relation and the counters, store the cluster (none for a singleton), and queue the events: a member
        that was a canonical and is no longer one is `replaced`; a canonical that was not one before,
        replacing nobody here, is `new`."""
        best, reason = policy.choose_canonical(records, self.ratio)
        canonical = records[best]
        was_canonical = canonical.kind == policy.KIND_CANONICAL
        replaced = [r.id for r in records if r.id != canonical.id and r.kind == policy.KIND_CANONICAL]
        members = {r.id for r in records}
        for r in records:
            if r.cluster != cluster_id:
                r.cluster = cluster_id
                self.s.put_record(r)
            keep_base_beside(self.s, r, members)
        relabel(self.s, records, canonical, self.ratio, None)
        if len(records) > 1:
            self.s.put_cluster(cluster_id, ClusterValue.of(canonical.id, reason, records))
        else:
            self.s.put_cluster(cluster_id, None)
        for old in replaced:
            self.queue_event("replaced", canonical, cluster_id, old)
        if not was_canonical and not replaced:
            self.queue_event("new", canonical, cluster_id, None)
        return canonical

    def group_id(self, records: list[Facts], preferred: bytes | None) -> bytes:
        if len(records) == 1:
            return records[0].id
        if preferred is not None and any(r.id == preferred for r in records):
            return preferred
        return records[policy.choose_canonical(records, self.ratio)[0]].id

    def detach(self, cluster: bytes, group: list[Facts], rest: list[Facts], preferred: bytes | None
               ) -> tuple[Facts, Facts]:
        """Move `group` out of `cluster` (whose other members are `rest`) into a cluster of its own. The
        rest keeps the cluster id unless it was a member of the group or the rest is a singleton."""
        in_group = {r.id for r in group}
        rest_id = cluster
        if len(rest) == 1 or cluster in in_group:
            rest_id = self.group_id(rest, None)
        self.s.put_cluster(cluster, None)
        group_canonical = self.settle(self.group_id(group, preferred), group)
        rest_canonical = self.settle(rest_id, rest)
        self.s.incr("clusters", 1)
        return group_canonical, rest_canonical

    def join(self, a: Facts, b: Facts) -> Facts:
        """One cluster of both records' clusters; the id is a's cluster's, unless only b's is sealed."""
        target = a.cluster
        if sealed(self.s, b.cluster) and not sealed(self.s, a.cluster):
            target = b.cluster
        records = self.cluster_of(a) + self.cluster_of(b)
        self.s.put_cluster(a.cluster, None)
        self.s.put_cluster(b.cluster, None)
        self.s.incr("clusters", -1)
        return self.settle(target, records)

    def article(self, id_hex: object, role: str) -> tuple[Facts, str]:
        if not isinstance(id_hex, str) or len(id_hex) != 16:
            raise OverrideError(f"{role}: not an article id")
        try:
            r = self.s.record(bytes.fromhex(id_hex))
        except ValueError:
            r = None
        if r is None:
            raise OverrideError(f"{role} {id_hex}: no such article (expired or never decided)")
        url = rec.strings_of(r.raw)[0]
        if r.has(rec.THIN):
            raise OverrideError(f"{role} {url}: too little text to compare, it is never clustered")
        return r, url

    def run(self, action: str, args: dict[str, Any], audit: dict[str, Any]) -> dict[str, Any]:
        s = self.s
        maxlen = self.engine.config.overrides_maxlen
        # Numbered after the newest entry, not by the log's length: the log is trimmed, and a number given
        # twice would make `undo N` ambiguous and reuse stream event ids.
        pipe = s.client.pipeline(transaction=False)
        pipe.llen(self.log_key)
        pipe.lindex(self.log_key, -1)
        length, newest = pipe.execute()
        s.lengths[self.log_key] = int(length)
        seq = json.loads(newest)["id"] + 1 if newest else 1
        self.tag = f"override-{seq}"
        entry: dict[str, Any] = {"id": seq, "action": action, "who": audit["who"], "at": audit["at"],
                                 "reason": audit["reason"]}
        h = bytes.hex
        if action == "split":
            m, url = self.article(args.get("member"), "member")
            records = self.cluster_of(m)
            if len(records) < 2:
                raise OverrideError(f"{url} is alone in its cluster: nothing to split")
            cluster = m.cluster
            rest = [r for r in records if r.id != m.id]
            entry["articles"], entry["urls"] = [h(m.id)], [url]
            entry["undo"] = {"member": h(m.id), "former": [h(r.id) for r in rest], "was_split": m.has(rec.SPLIT)}
            entry["before"] = {"cluster": h(cluster), "canonical": h(self.canonical_of(cluster))}
            self.set_flag(m, rec.SPLIT, True)
            _, rest_canonical = self.detach(cluster, [m], rest, m.id)
            entry["after"] = {"cluster": h(m.id), "canonical": h(m.id), "rest_cluster": h(rest_canonical.cluster),
                              "rest_canonical": h(rest_canonical.id)}
        elif action == "merge":
            a, a_url = self.article(args.get("a"), "A")
            b, b_url = self.article(args.get("b"), "B")
            if a.cluster == b.cluster:
                raise OverrideError(f"{a_url} and {b_url} are already in one cluster")
            b_records = self.cluster_of(b)
            entry["articles"], entry["urls"] = [h(a.id), h(b.id)], [a_url, b_url]
            entry["undo"] = {"a": h(a.id), "b": h(b.id), "b_members": [h(r.id) for r in b_records],
                             "b_cluster": h(b.cluster)}
            entry["before"] = {"cluster": h(a.cluster), "other_cluster": h(b.cluster)}
            canonical = self.join(a, b)
            entry["after"] = {"cluster": h(canonical.cluster), "canonical": h(canonical.id)}
        elif action == "promote":
            m, url = self.article(args.get("member"), "member")
            records = self.cluster_of(m)
            cleared = [h(r.id) for r in records if r.id != m.id and r.has(rec.PINNED)]
            entry["articles"], entry["urls"] = [h(m.id)], [url]
            entry["undo"] = {"member": h(m.id), "was_pinned": m.has(rec.PINNED), "cleared": cleared}
            entry["before"] = {"cluster": h(m.cluster), "canonical": h(self.canonical_of(m.cluster))}
            for r in records:
                self.set_flag(r, rec.PINNED, r.id == m.id)
            canonical = self.settle(m.cluster, records)
            entry["after"] = {"cluster": h(m.cluster), "canonical": h(canonical.id)}
        elif action == "undo":
            self.undo(entry, args, maxlen)
        else:
            raise OverrideError(f"unknown override {action}")
        entry["events"] = self.events
        s.rpush(self.log_key, json.dumps(entry).encode())
        if maxlen > 0:
            s.extra.append([b"LTRIM", self.log_key.encode(), str(-maxlen).encode(), b"-1"])
        return entry

    def undo(self, entry: dict[str, Any], args: dict[str, Any], maxlen: int) -> None:
        """The override to undo: the one named, or the latest one not undone yet."""
        entries = [json.loads(raw) for raw in self.s.client.lrange(self.log_key, 0, -1)]
        undone = {e["undoes"]: e["id"] for e in entries if e.get("action") == "undo"}
        try:
            target = int(args.get("target") or 0)
        except (TypeError, ValueError):
            target = 0
        original = None
        if target == 0:
            original = next((e for e in reversed(entries) if e["action"] != "undo" and e["id"] not in undone), None)
            if original is None:
                raise OverrideError("no override to undo")
        else:
            original = next((e for e in entries if e["id"] == target), None)
            if original is None:
                if entries and 1 <= target < entries[0]["id"]:
                    kept = f" (it keeps the newest {maxlen} entries)" if maxlen > 0 else ""
                    raise OverrideError(f"override #{target} was trimmed from the log{kept}: it can no longer be undone")
                raise OverrideError(f"no override #{target}")
            if original["action"] == "undo":
                raise OverrideError(f"override #{target} is itself an undo; redo the original instead")
            if target in undone:
                raise OverrideError(f"override #{target} was already undone by #{undone[target]}")
        u = original["undo"]
        entry["undoes"], entry["undoes_action"] = original["id"], original["action"]
        entry["articles"], entry["urls"] = original.get("articles"), original.get("urls")
        self.tag = f"undo-{entry['id']}"
        h = bytes.hex
        if original["action"] == "split":
            m, _ = self.article(u.get("member"), "member")
            anchor = None
            for other in _entries(u.get("former")):
                r = self.s.record(bytes.fromhex(other))
                if r is not None and r.cluster != m.cluster:
                    anchor = r
                    break
            self.set_flag(m, rec.SPLIT, bool(u.get("was_split")))
            if anchor is not None:
                canonical = self.join(anchor, m)
                entry["after"] = {"cluster": h(canonical.cluster), "canonical": h(canonical.id)}
        elif original["action"] == "merge":
            a, _ = self.article(u.get("a"), "A")
            records = self.cluster_of(a)
            wanted = {bytes.fromhex(other) for other in _entries(u.get("b_members"))}
            group = [r for r in records if r.id in wanted]
            rest = [r for r in records if r.id not in wanted]
            if not group or not rest:
                raise OverrideError(f"override #{original['id']}: the merged articles are no longer together")
            group_canonical, rest_canonical = self.detach(a.cluster, group, rest, bytes.fromhex(u["b_cluster"]))
            entry["after"] = {"cluster": h(rest_canonical.cluster), "canonical": h(rest_canonical.id),
                              "other_cluster": h(group_canonical.cluster), "other_canonical": h(group_canonical.id)}
        elif original["action"] == "promote":
            m, _ = self.article(u.get("member"), "member")
            restore = {bytes.fromhex(other) for other in _entries(u.get("cleared"))}
            records = self.cluster_of(m)
            for r in records:
                if r.id == m.id:
                    self.set_flag(r, rec.PINNED, bool(u.get("was_pinned")))
                elif r.id in restore:
                    self.set_flag(r, rec.PINNED, True)
            canonical = self.settle(m.cluster, records)
            entry["after"] = {"cluster": h(m.cluster), "canonical": h(canonical.id)}
