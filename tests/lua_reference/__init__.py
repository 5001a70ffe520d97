"""The Lua scripts that decided before the decision path moved to Python (dedup/policy.py,
dedup/decider.py), kept only as the reference of tests/test_differential.py, with the code that called
them (from dedup/engine.py and dedup/overrides.py as they were), unchanged in what they do.

Their cluster values list member ids only (8 bytes each): they run on a key prefix of their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import redis

from dedup import record as rec
from dedup.engine import Engine, Prepared
from dedup.index import slots
from dedup.keys import Keys
from dedup.keys import reply_text as _text

HERE = Path(__file__).parent


def _script(name: str) -> str:
    return (HERE / "lib.lua").read_text() + "\n" + (HERE / f"{name}.lua").read_text()


class LuaReference:
    """The old decision path: one script per decision, override, forget (with its re-index to-do)."""

    def __init__(self, client: redis.Redis, keys: Keys, engine: Engine) -> None:
        self.client = client
        self.keys = keys
        self.config = engine.config
        self.decide_script = client.register_script(_script("decide"))
        self.forget_script = client.register_script(_script("forget"))
        self.index_script = client.register_script(_script("index_article"))
        self.emit_script = client.register_script(_script("emit"))
        self.peek_script = client.register_script(_script("peek"))
        self.override_script = client.register_script(_script("override"))
        p, t = self.config.params, self.config.thresholds
        self.decide_config = " ".join(str(value) for value in (
            p.bands, p.rows, p.lead_bands, p.lead_rows, p.shards, t.bucket_cap, t.near,
            t.same_site_near, t.contained, t.contained_jaccard, t.excerpt_lead,
            t.excerpt_containment, t.excerpt_jaccard, t.min_shared, t.max_candidates,
            t.excerpt_ratio, self.config.stream_maxlen, t.max_merge, t.reach,
        ))

    def _slots(self, item: Prepared) -> tuple[list[str], bytes]:
        fp = item.fingerprint
        return slots(self.keys, self.config.params, fp.signature, fp.lead_signature, fp.content_hash,
                     fp.second_lead_signature)

    def decide(self, prepared: list[Prepared]) -> list[list]:
        # As the engine now does: only the time buckets that get an article (not a known one's).
        fresh: set[int] = set()
        seen: set[str] = set()
        for item in prepared:
            if item.id not in seen and not self.client.exists(self.keys.article(item.id)):
                fresh.add(item.bucket)
            seen.add(item.id)
        pipe = self.client.pipeline(transaction=False)
        for bucket in sorted(fresh):
            pipe.zadd(self.keys.time_buckets, {bucket: bucket}, nx=True)
        for item in prepared:
            slot_keys, slot_fields = self._slots(item)
            self.decide_script(keys=slot_keys, args=[
                self.keys.prefix, item.id, item.packed, item.bucket, item.fingerprint.clean_text,
                item.published_iso, self.decide_config, slot_fields], client=pipe)
        results = pipe.execute()[-len(prepared):]
        if any(len(result) > 9 and int(result[9]) > 0 for result in results):
            self.emit_pending()
        return results

    def peek(self, item: Prepared, limit: int = 10) -> dict:
        slot_keys, slot_fields = self._slots(item)
        return json.loads(self.peek_script(keys=slot_keys, args=[
            self.keys.prefix, item.id, item.packed, self.decide_config, slot_fields, limit]))

    def emit_pending(self) -> int:
        emitted = 0
        for event_id, payload in self.client.hgetall(self.keys.pending_events).items():
            event = json.loads(payload)
            raw = self.client.get(self.keys.article(event["id"]))
            stored = rec.unpack(event["id"], raw) if raw else None
            text = self.text_of(stored) if stored else ""
            published = stored.published_at.isoformat() if stored and stored.published_at else ""
            if self.emit_script(keys=[], args=[self.keys.prefix, event_id, text or "", published,
                                               self.config.stream_maxlen, "1" if text is None else ""]):
                emitted += 1
        return emitted

    def text_of(self, stored: rec.Record) -> str | None:
        """The text of a record as the engine read it back before (stored compressed, or in the canonical
        stream entry named by the record: decide.lua keeps a canonical's text there only); None once
        that entry is trimmed. (Copies' texts as deltas were written by the engine after the
        decision, not by these scripts: the reference has none.)"""
        if stored.text_ref:
            entries = self.client.xrange(self.keys.canonical_stream, stored.text_ref, stored.text_ref, count=1)
            return _text(entries[0][1].get(b"text", b"")) if entries else None
        return stored.text

    def forget(self, article_ids: list[str]) -> int:
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for article_id in article_ids:
            raw = self.client.get(self.keys.article(article_id))
            if not raw:
                continue
            stored = rec.unpack(article_id, raw)
            slot_keys, slot_fields = slots(self.keys, self.config.params, stored.signature, stored.lead_signature,
                                           stored.content_hash, stored.second_lead_signature)
            self.forget_script(keys=[*slot_keys, self.keys.reindex],
                               args=[self.keys.prefix, article_id, f"{self.config.thresholds.excerpt_ratio}",
                                     slot_fields], client=pipe)
            count += 1
        if not count:
            return 0
        results = pipe.execute()
        self.resume_reindex()
        return sum(int(removed) for removed, _ in results)

    def resume_reindex(self) -> int:
        done = 0
        pipe = self.client.pipeline(transaction=False)
        for survivor in sorted(_text(raw) for raw in self.client.smembers(self.keys.reindex)):
            stored = self.client.get(self.keys.article(survivor))
            slot_keys: list[str] = []
            slot_fields = b""
            if stored:
                record = rec.unpack(survivor, stored)
                slot_keys, slot_fields = slots(self.keys, self.config.params, record.signature,
                                               record.lead_signature, record.content_hash,
                                               record.second_lead_signature)
            self.index_script(keys=[*slot_keys, self.keys.reindex], args=[
                self.keys.prefix, survivor, slot_fields, self.config.thresholds.bucket_cap], client=pipe)
        done += sum(int(indexed) for indexed in pipe.execute())
        return done

    def override(self, action: str, arguments: dict, audit: dict) -> dict:
        raw = self.override_script(keys=[], args=[
            self.keys.prefix, action, json.dumps(arguments), self.config.thresholds.excerpt_ratio,
            json.dumps(audit), self.config.overrides_maxlen])
        result = json.loads(raw)
        if "error" not in result:
            self.emit_pending()
        return result

    def cluster(self, cluster_id: str) -> tuple[str, int, list[str]]:
        raw = self.client.get(self.keys.cluster(cluster_id))
        if not raw:
            return cluster_id, 0, [cluster_id]
        return raw[:8].hex(), raw[8], [raw[pos : pos + 8].hex() for pos in range(9, len(raw) - 7, 8)]
