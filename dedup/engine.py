"""The engine: one decision path from an extracted article to a cluster and the canonical stream."""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import redis

from dedup import hourly
from dedup import record as rec
from dedup.article import Article, Decision
from dedup.boilerplate import CAPACITY as BOILERPLATE_CAPACITY
from dedup.boilerplate import BoilerplateLearner, discount
from dedup.index import IndexParams, Scripts, Thresholds, ensure_params, shard_names, slots, spin_slot
from dedup.junk import looks_syndicated, strip_junk
from dedup.keys import Keys
from dedup.keys import reply_text as _text
from dedup.signature import MIN_TOKENS, Fingerprint, fingerprints_of_clean
from dedup.spin import (
    SPIN_KEYS,
    SPIN_MAX_VERIFIED,
    SPIN_MIN_JACCARD,
    SPIN_MIN_SHARED,
    SpinVerifier,
    spin_sketch,
)
from dedup.thin import is_list_article
from dedup.urls import BadURL, canonical_url, same_publisher, site_of, url_id
from dedup.validate import validate

log = logging.getLogger(__name__)

_EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC).timestamp()
_FUTURE_SLACK = 2 * 86400
# Why a cluster's canonical won (the codes the scripts store with each cluster).
REASONS = {
    0: "only member",
    1: "operator override",
    2: "named by other members (rel=canonical, og:url or a Source link)",
    3: "the others declare a canonical page elsewhere",
    4: "the others say they republish (Source / Read Full Article)",
    5: "complete text (the others are excerpts)",
    6: "earliest publication date",
    7: "first to arrive",
}


# The spin keys of a batch read in one call (a pipeline of HGETs costs more in the client): per
# article, the ids found under at least `min_shared` of its keys, and the stored header and signature
# of each (a record's first `head_len` bytes), read once. An article whose content hash is already
# indexed gets none (the decide script takes the exact copy and ignores spun ids). KEYS: each
# article's spin shard keys then its content-hash shard key, in turn; ARGV: prefix, spin keys per
# article, min_shared, head_len, then the fields in the same order.
_SPIN_LOOKUP = """
local prefix, per = ARGV[1], tonumber(ARGV[2])
local min_shared, head_len = tonumber(ARGV[3]), tonumber(ARGV[4])
local found, heads, fetched = {}, {}, {}
for a = 0, #KEYS / (per + 1) - 1 do
  local counts, order, picked = {}, {}, {}
  local base = a * (per + 1)
  if redis.call('HEXISTS', KEYS[base + per + 1], ARGV[4 + base + per + 1]) == 1 then order = nil end
  for k = 1, order and per or 0 do
    local i = base + k
    local value = redis.call('HGET', KEYS[i], ARGV[4 + i])
    if value then
      for pos = 1, #value - 7, 8 do
        local id = string.sub(value, pos, pos + 7)
        if not counts[id] then counts[id] = 0; order[#order + 1] = id end
        counts[id] = counts[id] + 1
      end
    end
  end
  for _, id in ipairs(order or {}) do
    if counts[id] >= min_shared then
      picked[#picked + 1] = id
      if not fetched[id] then
        fetched[id] = true
        local key = prefix .. 'a:' .. string.format(string.rep('%02x', 8), string.byte(id, 1, 8))
        heads[#heads + 1] = id
        heads[#heads + 1] = redis.call('GETRANGE', key, 0, head_len - 1)
      end
    end
  end
  found[a + 1] = table.concat(picked)
end
return {found, heads}
"""


@dataclass(frozen=True)
class EngineConfig:
    """Everything that shapes decisions and storage; built from settings by the service layer."""

    params: IndexParams = field(default_factory=IndexParams)
    thresholds: Thresholds = field(default_factory=Thresholds)
    retention: float = 30 * 86400
    stream_maxlen: int = 1_000_000
    stream_retention: float = 0.0
    overrides_maxlen: int = 10_000
    """Entries the overrides audit log keeps, the newest (0: no cap)."""
    batch_size: int = 64
    boilerplate_capacity: int = BOILERPLATE_CAPACITY
    """Lines counted per site for boilerplate learning before the counts halve (0: no learning)."""


@dataclass(frozen=True)
class Match:
    """A candidate from the index, verified against an article by the decide rules."""

    id: str
    cluster: str
    canonical_id: str
    kind: str | None
    """"exact", "near" or "excerpt"; None when verification rejected it."""
    score: float
    jaccard: float
    containment: float
    """Shared shingles over the smaller text's: the share of the smaller one found in the other."""
    same_site: bool
    split: bool


@dataclass(frozen=True)
class Peek:
    """What the engine would decide for an article now, computed without writing anything."""

    article_id: str
    status: str
    """"new" (founds a cluster), "dup" (joins one) or "thin" (too little text to compare)."""
    cluster: str
    canonical_id: str
    kind: str | None
    """None when the article would be the canonical; else its kind of copy (or "thin")."""
    similarity: float | None
    containment: float | None
    reason: int
    """Why the canonical would win (a REASONS code)."""
    replaces: tuple[str, ...]
    candidates: int
    matches: tuple[Match, ...]
    """The candidates verified, copies first, best first."""
    known: bool
    stored_kind: str | None = None
    stored_cluster: str | None = None


@dataclass(frozen=True)
class Prepared:
    """An article fingerprinted and packed, ready for the decide script (pure, no I/O)."""

    article: Article
    id: str
    fingerprint: Fingerprint
    """Of the text without its site's boilerplate lines."""
    packed: bytes
    bucket: int
    """The time bucket (arrival // IndexParams.time_bucket) the article is listed under."""
    published_iso: str
    slot_keys: list[str]
    slot_fields: bytes
    spin: tuple[int, ...] = ()
    """The spin keys (dedup.spin.spin_sketch; empty for thin and short texts)."""
    site: str = ""


class Engine:
    """Decides articles against the index in Redis; safe to run in many processes at once."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None, config: EngineConfig | None = None) -> None:
        self.client = client
        self.keys = keys or Keys()
        self.config = config or EngineConfig()
        ensure_params(client, self.keys, self.config.params)
        self.scripts = Scripts(client)
        self.boilerplate = (
            BoilerplateLearner(client, self.keys, self.config.retention, self.config.boilerplate_capacity)
            if self.config.boilerplate_capacity > 0 else None
        )
        self._last_expiry = 0.0
        self._resumed = False
        """Whether this engine has completed the re-indexing an earlier process left (see forget)."""
        p, t = self.config.params, self.config.thresholds
        self._decide_config = " ".join(
            str(value)
            for value in (
                p.bands, p.rows, p.lead_bands, p.lead_rows, p.shards, t.bucket_cap, t.near,
                t.same_site_near, t.contained, t.contained_jaccard, t.excerpt_lead,
                t.excerpt_containment, t.excerpt_jaccard, t.min_shared, t.max_candidates,
                t.excerpt_ratio, self.config.stream_maxlen, t.max_merge, t.reach,
            )
        )
        self._forget_config = f"{t.excerpt_ratio}"
        self.spin = SpinVerifier(near=t.near)
        self._spin_lookup = client.register_script(_SPIN_LOOKUP)

    # Deciding

    def prepare(self, article: Article, now: float | None = None, learn: bool = True) -> Prepared:
        """Fingerprint and pack one article (learn=False: read the site's boilerplate, count nothing);
        raises InvalidArticle."""
        return self.prepare_many([article], now, learn)[0]

    def prepare_many(self, articles: list[Article], now: float | None = None, learn: bool = True) -> list[Prepared]:
        """prepare() for a batch: the same results, with the hashing done in a few array operations
        and the site boilerplate counted in one round trip."""
        articles = [validate(article).article for article in articles]
        cleans = [strip_junk(article.text, article.title) for article in articles]
        found = [frozenset[bytes]()] * len(articles)
        if self.boilerplate is not None:
            pages = [(_site(article), clean) for article, clean in zip(articles, cleans, strict=True)]
            if learn:
                found = self.boilerplate.observe(pages)
            else:
                found = [self.boilerplate.known(site, clean) for site, clean in pages]
        discounted = [discount(clean, lines) for clean, lines in zip(cleans, found, strict=True)]
        prints = fingerprints_of_clean([d.text for d in discounted])
        return [self._pack(article, fp, now, d.lines)
                for article, fp, d in zip(articles, prints, discounted, strict=True)]

    def _pack(self, article: Article, fp: Fingerprint, now: float | None, boilerplate_lines: int = 0) -> Prepared:
        now = time.time() if now is None else now
        own_url = article.final_url or article.url
        site = _site(article)
        own_id = url_id(article.url)
        thin = fp.thin
        flags = rec.BOILERPLATE if boilerplate_lines else 0
        # A dated article page whose body is a list has little running text but is an article.
        if thin and fp.n_tokens >= MIN_TOKENS and is_list_article(own_url, article.title or "", fp.clean_text,
                                                                 article.published):
            thin = False
            flags |= rec.LIST_ARTICLE
        if thin:
            flags |= rec.THIN
        canonical_link = None
        if article.canonical_link:
            linked = url_id(article.canonical_link)
            if linked not in (own_id, url_id(own_url)):
                canonical_link = linked
                if not same_publisher(article.canonical_link, own_url):
                    flags |= rec.CANONICAL_ELSEWHERE
        source_link = None
        if article.source_link and not same_publisher(article.source_link, own_url):
            source_link = url_id(article.source_link)
        if source_link or looks_syndicated(article.text):
            flags |= rec.SYNDICATED
        published = 0
        if article.published is not None:
            stamp = _timestamp(article.published)
            if _EARLIEST_DATE <= stamp <= now + _FUTURE_SLACK:
                published = int(stamp)
        record = rec.Record(
            id=own_id, url=article.url, title=article.title or "", site=site, source=article.source,
            flags=flags, kind="thin" if thin else None, arrived=int(now), published=published,
            n_shingles=fp.n_shingles, n_tokens=fp.n_tokens, similarity=None, containment=None,
            cluster=own_id, duplicate_of=None, canonical_link=canonical_link, source_link=source_link,
            content_hash=fp.content_hash, site_hash=hashlib.sha256(site.encode()).digest()[:8],
            signature=fp.signature, lead_signature=fp.lead_signature,
            second_lead_signature=fp.second_lead_signature,
            text_z=zlib.compress(fp.clean_text.encode("utf-8", "replace"), 1),
            boilerplate_lines=boilerplate_lines,
        )
        iso = datetime.fromtimestamp(published, UTC).isoformat() if published else ""
        spin = () if thin else spin_sketch(fp.clean_text)
        slot_keys, slot_fields = slots(self.keys, self.config.params, fp.signature, fp.lead_signature,
                                       fp.content_hash, fp.second_lead_signature, spin)
        return Prepared(article, own_id, fp, rec.pack(record), int(now // self.config.params.time_bucket), iso,
                        slot_keys, slot_fields, spin, site)

    def add(self, article: Article) -> Decision:
        """Decide one article: exactly the decision a batch or another process would reach."""
        return self.decide([self.prepare(article)])[0]

    def add_many(self, articles: Iterable[Article]) -> Iterator[Decision]:
        """Decide articles in pipelined batches, in order; the next batch is fingerprinted while
        Redis runs the previous one (one round trip per batch, one script per article)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdedup-redis") as io:
            in_flight: Future[list[Decision]] | None = None
            batch: list[Article] = []
            for article in articles:
                batch.append(article)
                if len(batch) >= self.config.batch_size:
                    prepared = self.prepare_many(batch)
                    if in_flight is not None:
                        yield from in_flight.result()
                    in_flight, batch = io.submit(self.decide, prepared), []
            if in_flight is not None:
                yield from in_flight.result()
            if batch:
                yield from self.decide(self.prepare_many(batch))

    def decide(self, prepared: list[Prepared]) -> list[Decision]:
        """Run the decide script for each prepared article, in order, in one pipeline."""
        if not self._resumed:  # before the first decision: a canonical left unindexed would be missed
            self.resume_reindex()
            self._resumed = True
        spun = self._spun(prepared)
        pipe = self.client.pipeline(transaction=False)
        for bucket in sorted({item.bucket for item in prepared}):
            pipe.zadd(self.keys.time_buckets, {bucket: bucket}, nx=True)
        for item, spun_ids in zip(prepared, spun, strict=True):
            self.scripts.decide(
                keys=item.slot_keys,
                args=[
                    self.keys.prefix, item.id, item.packed, item.bucket,
                    item.fingerprint.clean_text, item.published_iso, self._decide_config,
                    item.slot_fields, spun_ids,
                ],
                client=pipe,
            )
        results = pipe.execute()[-len(prepared):]
        decisions = [self._decision(item, result) for item, result in zip(prepared, results, strict=True)]
        self._count_hourly(prepared, decisions)
        # An event whose canonical is an older member waits for its stored text: complete it now.
        if any(len(result) > 9 and int(result[9]) > 0 for result in results):
            self.emit_pending()
        self.maybe_expire()
        return decisions

    def _spun(self, prepared: list[Prepared]) -> list[bytes]:
        """Per article, the ids of stored or earlier-in-batch articles on other sites verified as
        its spun copies or originals (8 raw bytes each, for the decide script).

        Candidates share SPIN_MIN_SHARED spin keys with the article; their stored headers and
        signatures are read in one round trip (after one for the spin keys of the whole batch); only
        those on other sites with an estimated Jaccard between SPIN_MIN_JACCARD and the near
        threshold are profiled and compared (dedup.spin). An article with a plain copy among them
        (Jaccard at or above near) joins that copy by the rules and is not profiled. Not atomic with
        the decision: an article another process stores meanwhile finds this one by its own keys."""
        out = [b""] * len(prepared)
        wanted = [i for i, item in enumerate(prepared) if item.spin]
        if not wanted:
            return out
        params = self.config.params
        names = shard_names(self.keys.prefix, params.shards)
        slot_keys: list[str] = []
        slot_fields: list[bytes] = []
        for i in wanted:
            for position, value in enumerate(prepared[i].spin):
                key, spin_field = spin_slot(names, params.shards, position, value)
                slot_keys.append(key)
                slot_fields.append(spin_field)
            slot_keys.append(prepared[i].slot_keys[-1])  # the content-hash slot (see index.slots)
            slot_fields.append(b"\xff" + prepared[i].fingerprint.content_hash)
        head_len = rec.HEADER.size + 2 + len(prepared[wanted[0]].fingerprint.signature)
        found_raw, head_list = self._spin_lookup(
            keys=slot_keys, args=[self.keys.prefix, SPIN_KEYS, SPIN_MIN_SHARED, head_len, *slot_fields])
        heads: dict[bytes, tuple[bool, bytes, bytes]] = {}
        for other, raw in zip(head_list[::2], head_list[1::2], strict=True):
            head = _spin_head(raw) if raw else None
            if head is not None:
                heads[other] = head
        found: dict[int, list[bytes]] = {}
        mates: dict[int, list[int]] = {}
        earlier: dict[tuple[int, int], list[int]] = {}
        for i, raw in zip(wanted, found_raw, strict=True):
            own = bytes.fromhex(prepared[i].id)
            found[i] = [other for other in (raw[pos : pos + 8] for pos in range(0, len(raw) - 7, 8)) if other != own]
            mate_counts: Counter[int] = Counter()
            for key in enumerate(prepared[i].spin):
                mate_counts.update(earlier.setdefault(key, []))
                earlier[key].append(i)
            mates[i] = [j for j, n in mate_counts.items() if n >= SPIN_MIN_SHARED and prepared[j].id != prepared[i].id]
        for i in wanted:
            item = prepared[i]
            site_hash = hashlib.sha256(item.site.encode()).digest()[:8]
            others: list[tuple[str, bytes, str | Callable[[], str]]] = []
            for other in found[i]:
                head = heads.get(other)
                if head is None or head[0]:  # gone, or thin
                    continue
                if head[1] == site_hash:
                    continue
                others.append((other.hex(), head[2], partial(self._stored_text, other.hex())))
            for j in mates[i]:
                mate = prepared[j]
                if mate.site != item.site:
                    others.append((mate.id, mate.fingerprint.signature, mate.fingerprint.clean_text))
            if not others:
                continue
            scores = self.spin.jaccards(item.fingerprint.signature, [sig for _, sig, _ in others])
            window = [(float(jaccard), other_id, text)
                      for (other_id, _, text), jaccard in zip(others, scores, strict=True)
                      if SPIN_MIN_JACCARD <= jaccard < self.spin.near]
            window.sort(key=lambda entry: (-entry[0], entry[1]))
            verified = [other_id for _, other_id, text in window[:SPIN_MAX_VERIFIED]
                        if self.spin.verify(item.id, item.fingerprint.clean_text, other_id, text)]
            out[i] = b"".join(bytes.fromhex(other) for other in verified)
        return out

    def _stored_text(self, article_id: str) -> str:
        stored = self.get(article_id)
        return stored.text if stored else ""

    def _count_hourly(self, prepared: list[Prepared], decisions: list[Decision]) -> None:
        """Decisions per hour for charts (dedup.hourly); a retried article is not counted again."""
        span = self.config.params.time_bucket
        decided = [(item.bucket * span, decision.kind or "canonical", item.article.source)
                   for item, decision in zip(prepared, decisions, strict=True) if not decision.known]
        if not decided:
            return
        pipe = self.client.pipeline(transaction=False)
        hourly.count(pipe, self.keys, decided)
        try:
            pipe.execute()
        except redis.RedisError as exc:  # the decisions stand; only the chart misses them
            log.warning("decisions per hour: %d decisions not counted: %s", len(decided), exc)

    def _decision(self, item: Prepared, result: list) -> Decision:
        status = _text(result[0])
        kind = rec.KINDS.get(int(result[3]))
        is_dup = kind not in (None, "thin")
        events: tuple[str, ...] = tuple(e for e in _text(result[8]).split(",") if e)
        canonical_id = _text(result[2])
        return Decision(
            article_id=item.id,
            url=item.article.url,
            cluster=_text(result[1]),
            canonical_id=canonical_id,
            is_canonical=canonical_id == item.id and kind is None,
            kind=kind,
            duplicate_of=_text(result[6]) or None,
            similarity=int(result[4]) / 10000 if is_dup else None,
            containment=int(result[5]) / 10000 if is_dup else None,
            replaced=_text(result[7]) or None,
            known=status == "known",
            events=events,
        )

    def peek(self, article: Article, limit: int = 10) -> Peek:
        """The decision `add` would make now and the nearest candidates, without changing anything."""
        item = self.prepare(article, learn=False)
        raw = self.scripts.peek(
            keys=item.slot_keys,
            args=[self.keys.prefix, item.id, item.packed, self._decide_config, item.slot_fields, limit,
                  self._spun([item])[0]],
        )
        result = json.loads(raw)
        stored = result.get("stored") or {}
        kind = result["kind"]
        is_dup = kind in ("exact", "near", "excerpt")
        return Peek(
            article_id=item.id,
            status=result["status"],
            cluster=result["cluster"],
            canonical_id=result["canonical"],
            kind=None if kind == "canonical" else kind,
            similarity=round(float(result["similarity"]), 4) if is_dup else None,
            containment=round(float(result["containment"]), 4) if is_dup else None,
            reason=int(result["reason"]),
            replaces=tuple(result["replaces"] or ()),
            candidates=int(result["candidates"]),
            matches=tuple(
                Match(id=m["id"], cluster=m["cluster"], canonical_id=m["canonical"], kind=m["kind"] or None,
                      score=float(m["score"]), jaccard=float(m["jaccard"]),
                      containment=float(m["containment"]), same_site=bool(m["same_site"]),
                      split=bool(m["split"]))
                for m in (result["matches"] or ())
            ),
            known=bool(result["known"]),
            stored_kind=stored.get("kind"),
            stored_cluster=stored.get("cluster"),
        )

    def emit_pending(self) -> int:
        """Complete stream events whose canonical is an older member (its text is stored compressed)."""
        emitted = 0
        for event_id, payload in self.client.hgetall(self.keys.pending_events).items():
            try:
                event = json.loads(payload)
                stored = self.get(event["id"])
            except (ValueError, KeyError) as exc:
                log.error("pending event %s unreadable: %s", _text(event_id), exc)
                continue
            text = stored.text if stored else ""
            published = stored.published_at.isoformat() if stored and stored.published_at else ""
            if self.scripts.emit(
                keys=[], args=[self.keys.prefix, event_id, text, published, self.config.stream_maxlen]
            ):
                emitted += 1
        return emitted

    # Reading

    def get(self, article_id: str) -> rec.Record | None:
        """The stored record of one article, or None."""
        raw = self.client.get(self.keys.article(article_id))
        return rec.unpack(article_id, raw) if raw else None

    def get_by_url(self, url: str) -> rec.Record | None:
        return self.get(url_id(url))

    def find(self, ref: str) -> rec.Record | None:
        """The stored article an operator names: by its 16-hex-digit id, or by URL."""
        ref = ref.strip()
        if len(ref) == 16 and all(c in "0123456789abcdef" for c in ref.lower()):
            found = self.get(ref.lower())
            if found:
                return found
        if "://" not in ref and "." not in ref:
            return None
        try:
            return self.get_by_url(ref)
        except BadURL:  # no page has that URL, so no stored article does
            return None

    def get_many(self, article_ids: list[str]) -> list[rec.Record]:
        """The stored records of these ids, in order (missing ones left out)."""
        return list(self._fetch(article_ids)) if article_ids else []

    def cluster_records(self, cluster_id: str) -> tuple[rec.Record | None, int, list[rec.Record]]:
        """(canonical record, reason code, member records) of a cluster."""
        canonical_id, reason, members = self.cluster(cluster_id)
        records = self.get_many(members)
        canonical = next((r for r in records if r.id == canonical_id), None)
        return canonical, reason, records

    def cluster(self, cluster_id: str) -> tuple[str, int, list[str]]:
        """(canonical id, reason code, member ids) of a cluster; a singleton is its own canonical."""
        raw = self.client.get(self.keys.cluster(cluster_id))
        if not raw:
            return cluster_id, 0, [cluster_id]
        members = [raw[pos : pos + 8].hex() for pos in range(9, len(raw) - 7, 8)]
        return raw[:8].hex(), raw[8], members

    def article_ids(self, newest_first: bool = False) -> Iterator[str]:
        """Ids of every stored article, by the time bucket they were decided in."""
        buckets = [int(b) for b in self.client.zrange(self.keys.time_buckets, 0, -1)]
        if newest_first:
            buckets.reverse()
        for bucket in buckets:
            raw_ids = self.client.lrange(self.keys.time_bucket(bucket), 0, -1)
            if newest_first:
                raw_ids.reverse()
            for raw in raw_ids:
                yield raw.hex()

    def records(self, newest_first: bool = False, batch: int = 500) -> Iterator[rec.Record]:
        """Every stored record (in batches of MGET)."""
        ids: list[str] = []
        for article_id in self.article_ids(newest_first):
            ids.append(article_id)
            if len(ids) >= batch:
                yield from self._fetch(ids)
                ids = []
        if ids:
            yield from self._fetch(ids)

    def _fetch(self, ids: list[str]) -> Iterator[rec.Record]:
        for article_id, raw in zip(ids, self.client.mget([self.keys.article(i) for i in ids]), strict=True):
            if raw:
                yield rec.unpack(article_id, raw)

    def stats(self) -> dict[str, int]:
        """Counters: clusters, canonicals, dup_exact, dup_near, dup_excerpt, thin, and their sum."""
        counts = {_text(k): int(v) for k, v in self.client.hgetall(self.keys.stats).items()}
        counts["articles"] = sum(v for k, v in counts.items() if k != "clusters")
        return counts

    # Retention

    def forget(self, article_ids: list[str]) -> int:
        """Remove articles from the index and store; their clusters re-elect a canonical quietly.

        Two steps per cluster: the forget script removes the article and puts the new canonical on the
        re-index to-do set (one atomic step), then `resume_reindex` indexes it and takes it off. A process
        killed in between leaves the to-do, which the next expiry (or the next start) completes.
        """
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for article_id, raw in zip(article_ids, self.client.mget([self.keys.article(i) for i in article_ids]),
                                   strict=True):
            if not raw:
                continue
            stored = rec.unpack(article_id, raw)
            slot_keys, slot_fields = slots(self.keys, self.config.params, stored.signature,
                                           stored.lead_signature, stored.content_hash,
                                           stored.second_lead_signature, _stored_spin(stored))
            self.scripts.forget(keys=[*slot_keys, self.keys.reindex],
                                args=[self.keys.prefix, article_id, self._forget_config, slot_fields], client=pipe)
            count += 1
        if not count:
            return 0
        results = pipe.execute()
        self.resume_reindex()
        return sum(int(removed) for removed, _ in results)

    def resume_reindex(self) -> int:
        """Index the canonicals retention elected that still await it (see forget); returns how many."""
        done = 0
        for chunk in _chunks(sorted(_text(raw) for raw in self.client.smembers(self.keys.reindex)), 256):
            pipe = self.client.pipeline(transaction=False)
            for survivor, stored in zip(chunk, self.client.mget([self.keys.article(i) for i in chunk]), strict=True):
                slot_keys: list[str] = []
                slot_fields = b""
                if stored:  # gone meanwhile: the script only takes it off the to-do set
                    record = rec.unpack(survivor, stored)
                    slot_keys, slot_fields = slots(self.keys, self.config.params, record.signature,
                                                   record.lead_signature, record.content_hash,
                                                   record.second_lead_signature, _stored_spin(record))
                self.scripts.index_article(keys=[*slot_keys, self.keys.reindex], args=[
                    self.keys.prefix, survivor, slot_fields, self.config.thresholds.bucket_cap], client=pipe)
            done += sum(int(indexed) for indexed in pipe.execute())
        return done

    def maybe_expire(self, interval: float = 60.0) -> int:
        """Expire old articles at most once per interval (cheap enough to call after every batch)."""
        now = time.time()
        if now - self._last_expiry < interval:
            return 0
        self._last_expiry = now
        return self.expire(now)

    def expire(self, now: float | None = None) -> int:
        """Remove articles older than the retention window from the index and store."""
        now = time.time() if now is None else now
        self.resume_reindex()  # what a process killed during the last expiry left to do
        # A bucket goes once all of it is older than the window.
        span = self.config.params.time_bucket
        cutoff = int((now - self.config.retention) // span)
        removed = 0
        for raw_bucket in self.client.zrangebyscore(self.keys.time_buckets, "-inf", cutoff - 1):
            bucket_key = self.keys.time_bucket(int(raw_bucket))
            ids = [raw.hex() for raw in self.client.lrange(bucket_key, 0, -1)]
            for start in range(0, len(ids), 256):
                removed += self.forget(ids[start : start + 256])
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(bucket_key)
            pipe.zrem(self.keys.time_buckets, raw_bucket)
            pipe.execute()
        if self.config.stream_retention > 0:
            min_ms = int((now - self.config.stream_retention) * 1000)
            self.client.xtrim(self.keys.canonical_stream, minid=f"{min_ms}-0", approximate=True)
        if removed:
            log.info("retention: %d articles older than %.0f s removed", removed, self.config.retention)
        return removed


def _spin_head(raw: bytes) -> tuple[bool, bytes, bytes] | None:
    """(thin, site hash, signature bytes) of a stored record, read without decoding the rest."""
    try:
        fields = rec.HEADER.unpack_from(raw)
        (length,) = struct.unpack_from("<H", raw, rec.HEADER.size)
    except struct.error:
        return None
    start = rec.HEADER.size + 2
    return bool(fields[1] & rec.THIN), fields[15], raw[start : start + length]


def _stored_spin(record: rec.Record) -> tuple[int, ...]:
    """The spin keys a stored article was indexed under (computed again from its stored text)."""
    return () if record.flags & rec.THIN else spin_sketch(record.text)


def _site(article: Article) -> str:
    return article.site or site_of(article.final_url or article.url)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _timestamp(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()




__all__ = ["REASONS", "Engine", "EngineConfig", "Match", "Peek", "canonical_url"]
