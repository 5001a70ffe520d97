"""The engine: one decision path from an extracted article to a cluster and the canonical stream."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import queue
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain, islice

import redis

from dedup import decider as dec
from dedup import hourly
from dedup import record as rec
from dedup.article import Article, Decision
from dedup.boilerplate import CAPACITY as BOILERPLATE_CAPACITY
from dedup.boilerplate import BoilerplateLearner, discount
from dedup.cluster import get_many
from dedup.index import IndexParams, Thresholds, ensure_params, slots
from dedup.policy import ClusterValue
from dedup.junk import looks_syndicated, strip_junk
from dedup.keys import Keys
from dedup.recent import RecentTexts
from dedup.keys import reply_text as _text
from dedup.signature import MIN_TOKENS, Fingerprint, fingerprints_of_clean
from dedup.spin import SpinVerifier, spin_sketch
from dedup.thin import is_list_article
from dedup.urls import BadURL, canonical_url, same_publisher, site_of, url_id
from dedup.validate import validate

log = logging.getLogger(__name__)

_EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC).timestamp()
_FUTURE_SLACK = 2 * 86400
# Why a cluster's canonical won (the codes stored with each cluster, dedup.policy).
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
    spin: bool = True
    """The spin stage (dedup.spin): spin keys indexed beside the LSH bands, and candidates on other
    sites they find verified by sentence alignment as near copies. Off: the decisions and index of the
    policy before it (tests/test_differential.py compares those with the reference Lua)."""
    thin_copies: bool = True
    """Thin pages long enough to compare are indexed and compared with articles on other sites: one
    that repeats an article is decided like one (dedup.decider.Settings.thin_copies). Off: the policy
    before it (tests/test_differential.py compares that with the reference Lua)."""
    cache_bytes: int = 64 * 1024 * 1024
    """Records and cluster values the decider keeps in memory while it holds the lease batch after
    batch (dedup.decider.ValueCache; 0: none): a hot story's members are then not read again."""


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
class Fingerprinted:
    """An article validated and fingerprinted, its site's boilerplate counted and discounted: what
    Prepared holds that does not depend on the moment of the decision. The crawler makes it in its
    extraction workers; Engine.prepare_many packs it when it is decided (its arrival stamped then)."""

    article: Article
    fingerprint: Fingerprint
    """Of the text without its site's boilerplate lines."""
    boilerplate_lines: int = 0


@dataclass(frozen=True)
class Prepared:
    """An article fingerprinted and packed, ready to decide (pure, no I/O)."""

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


class Engine:
    """Decides articles against the index in Redis; safe to run in many processes at once."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None, config: EngineConfig | None = None) -> None:
        self.client = client
        self.keys = keys or Keys()
        config = config or EngineConfig()
        # The stored shard count wins: an index keeps the size it was created with.
        self.config = replace(config, params=ensure_params(client, self.keys, config.params))
        self.lease = dec.Lease(client, self.keys)
        self.decider = dec.Decider(client, self.keys, dec.Settings(
            self.config.thresholds, self.config.stream_maxlen, self._slots_of,
            SpinVerifier(near=self.config.thresholds.near) if self.config.spin else None,
            self.config.thin_copies), self.config.cache_bytes)
        self.boilerplate = (
            BoilerplateLearner(client, self.keys, self.config.retention, self.config.boilerplate_capacity)
            if self.config.boilerplate_capacity > 0 else None
        )
        # Pure functions of the text, kept for the texts met last: an exact copy is not fingerprinted again.
        self._stripped: RecentTexts[str] = RecentTexts()
        self._fingerprints: RecentTexts[Fingerprint] = RecentTexts()
        self._spins: RecentTexts[tuple[int, ...]] = RecentTexts()
        self._compressed: RecentTexts[bytes] = RecentTexts()
        self._last_expiry = 0.0
        self._resumed = False
        """Whether this engine has completed the re-indexing an earlier process left (see forget)."""

    # Deciding

    def prepare(self, article: Article | Fingerprinted, now: float | None = None, learn: bool = True) -> Prepared:
        """Fingerprint and pack one article (learn=False: read the site's boilerplate, count nothing);
        raises InvalidArticle."""
        return self.prepare_many([article], now, learn)[0]

    def prepare_many(self, articles: list[Article | Fingerprinted], now: float | None = None,
                     learn: bool = True) -> list[Prepared]:
        """prepare() for a batch: the same results, with the hashing done in a few array operations
        and the site boilerplate counted in one round trip. An article fingerprinted already (where
        it was extracted) is only packed: stamped as arriving now."""
        plain = [article for article in articles if isinstance(article, Article)]
        fresh = iter(self.fingerprint_many(plain, learn) if plain else [])
        done = [item if isinstance(item, Fingerprinted) else next(fresh) for item in articles]
        return [self._pack(item.article, item.fingerprint, now, item.boilerplate_lines) for item in done]

    def fingerprint_many(self, articles: list[Article], learn: bool = True) -> list[Fingerprinted]:
        """Validate, strip junk, count and discount site boilerplate, and fingerprint a batch (all of
        prepare_many but the packing); raises InvalidArticle."""
        articles = [validate(article).article for article in articles]
        cleans = self._stripped.many(
            [(article.text, article.title) for article in articles], [len(article.text) for article in articles],
            lambda indices: [strip_junk(articles[i].text, articles[i].title) for i in indices])
        found = [frozenset[bytes]()] * len(articles)
        if self.boilerplate is not None:
            pages = [(_site(article), clean) for article, clean in zip(articles, cleans, strict=True)]
            if learn:
                found = self.boilerplate.observe(pages)
            else:
                found = [self.boilerplate.known(site, clean) for site, clean in pages]
        discounted = [discount(clean, lines) for clean, lines in zip(cleans, found, strict=True)]
        texts = [d.text for d in discounted]
        prints = self._fingerprints.many(texts, [len(text) for text in texts],
                                         lambda indices: fingerprints_of_clean([texts[i] for i in indices]))
        return [Fingerprinted(article, fp, d.lines)
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
        spin = self._spins.many([fp.clean_text], [len(fp.clean_text)], lambda _: [spin_sketch(fp.clean_text)])[0] \
            if self.config.spin and not thin else ()
        record = rec.Record(
            id=own_id, url=article.url, title=article.title or "", site=site, source=article.source,
            flags=flags, kind="thin" if thin else None, arrived=int(now), published=published,
            n_shingles=fp.n_shingles, n_tokens=fp.n_tokens, similarity=None, containment=None,
            cluster=own_id, duplicate_of=None, canonical_link=canonical_link, source_link=source_link,
            content_hash=fp.content_hash, site_hash=hashlib.sha256(site.encode()).digest()[:8],
            signature=fp.signature, lead_signature=fp.lead_signature,
            second_lead_signature=fp.second_lead_signature,
            text_z=self._compressed.many([fp.clean_text], [len(fp.clean_text)],
                                         lambda _: [zlib.compress(fp.clean_text.encode("utf-8", "replace"), 1)])[0],
            boilerplate_lines=boilerplate_lines, spin=spin,
        )
        iso = datetime.fromtimestamp(published, UTC).isoformat() if published else ""
        slot_keys, slot_fields = slots(self.keys, self.config.params, fp.signature, fp.lead_signature,
                                       fp.content_hash, fp.second_lead_signature, spin)
        return Prepared(article, own_id, fp, rec.pack(record), int(now // self.config.params.time_bucket), iso,
                        slot_keys, slot_fields)

    def add(self, article: Article | Fingerprinted) -> Decision:
        """Decide one article: exactly the decision a batch or another process would reach."""
        return self.decide([self.prepare(article)])[0]

    def add_many(self, articles: Iterable[Article | Fingerprinted]) -> Iterator[Decision]:
        """Decide articles in batches, in order. From a few batches on, a child process fingerprints the
        next batches while this one decides (deciding is Python now, so a thread would share one core
        with fingerprinting); fewer batches are fingerprinted here, the next one in a thread."""
        size = max(1, self.config.batch_size)
        source = iter(articles)
        ahead: list[list[Article | Fingerprinted]] = []
        while len(ahead) < _FORK_FROM_BATCHES and (batch := list(islice(source, size))):
            ahead.append(batch)
        batches = chain(ahead, iter(lambda: list(islice(source, size)), []))
        if len(ahead) >= _FORK_FROM_BATCHES and "fork" in multiprocessing.get_all_start_methods():
            yield from self._add_forked(batches)
        else:
            yield from self._add_threaded(batches)

    def _add_threaded(self, batches: Iterable[list[Article | Fingerprinted]]) -> Iterator[Decision]:
        pending = iter(batches)
        first = next(pending, None)
        if first is None:
            return
        following = next(pending, None)
        if following is None:
            # One batch (the service's decider, every time): nothing to overlap, so no thread to start and join.
            yield from self.decide(self.prepare_many(first))
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdedup-redis") as io:
            in_flight: Future[list[Decision]] | None = None
            for batch in chain([first, following], pending):
                prepared = self.prepare_many(batch)
                if in_flight is not None:
                    yield from in_flight.result()
                in_flight = io.submit(self.decide, prepared)
            if in_flight is not None:
                yield from in_flight.result()

    def _add_forked(self, batches: Iterable[list[Article | Fingerprinted]]) -> Iterator[Decision]:
        """Fingerprint in a child process (forked: it shares this engine's settings and opens its own
        Redis connections), at most _PREPARE_AHEAD batches ahead, and decide here, in order."""
        context = multiprocessing.get_context("fork")
        requests = context.Queue(maxsize=_PREPARE_AHEAD)
        results = context.Queue()
        child = context.Process(target=self._prepare_worker, args=(requests, results), daemon=True,
                                name="newsdedup-prepare")
        child.start()
        in_flight = 0
        try:
            for batch in batches:
                requests.put(batch)
                in_flight += 1
                if in_flight > _PREPARE_AHEAD:
                    yield from self.decide(self._prepared(results, child))
                    in_flight -= 1
            while in_flight:
                yield from self.decide(self._prepared(results, child))
                in_flight -= 1
        finally:
            try:
                requests.put_nowait(None)
            except (queue.Full, ValueError, OSError):
                pass
            child.join(5)
            if child.is_alive():
                child.terminate()
                child.join(5)
            requests.close()
            results.close()

    @staticmethod
    def _prepared(results: multiprocessing.queues.Queue, child: multiprocessing.process.BaseProcess) -> list[Prepared]:
        while True:
            try:
                status, value = results.get(timeout=1.0)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the fingerprinting process died (exit code {child.exitcode})") from None
                continue
            if status == "error":
                raise value
            return value

    def _prepare_worker(self, requests: multiprocessing.queues.Queue, results: multiprocessing.queues.Queue) -> None:
        """The child of _add_forked: prepare_many for each batch, in order; an error goes back in its place."""
        while (batch := requests.get()) is not None:
            try:
                results.put(("ok", self.prepare_many(batch)))
            except Exception as exc:  # raised in the parent, where the batch is decided
                results.put(("error", _portable(exc)))

    def decide(self, prepared: list[Prepared]) -> list[Decision]:
        """Decide prepared articles, in order, as one batch under the decider lease (dedup.decider):
        one process decides at a time per key prefix, and a batch's writes are journalled, then applied."""
        if not prepared:
            return []
        if not self._resumed:  # before the first decision: a canonical left unindexed would be missed
            self.resume_reindex()
            self._resumed = True
        items = [self._item(p) for p in prepared]
        with self.leased():
            store = self.decider.store()
            outcomes = self.decider.decide(store, items)
            # The time buckets that got an article (a batch of known articles adds none).
            buckets = sorted({p.bucket for p, o in zip(prepared, outcomes, strict=True) if o.status != "known"})
            if buckets:
                store.zadds[self.keys.time_buckets] = {str(b).encode(): b for b in buckets}
            self._commit(store)
        decisions = [self._decision(item, outcome) for item, outcome in zip(prepared, outcomes, strict=True)]
        self._count_hourly(prepared, decisions)
        self.maybe_expire()
        return decisions

    def _item(self, item: Prepared) -> dec.Article:
        return dec.Article(bytes.fromhex(item.id), item.packed, self.keys.time_bucket(item.bucket),
                           item.fingerprint.clean_text, item.published_iso, item.slot_keys, item.slot_fields)

    def _slots_of(self, facts: object, text: str | None) -> tuple[list[str], bytes]:
        """The slots a stored article was indexed under: its spin keys as its record holds them (a
        record written before they were recorded: computed again from its text, none once that
        text has expired)."""
        raw: bytes = facts.raw  # type: ignore[attr-defined]
        full, lead, second = rec.signatures(raw)
        spin = rec.spin_of(raw)
        if spin is None:
            spin = spin_sketch(text) if self.config.spin and text and not rec.header(raw).flags & rec.THIN else ()
        return slots(self.keys, self.config.params, full, lead, facts.content, second, spin)  # type: ignore[attr-defined]

    @contextmanager
    def leased(self) -> Iterator[None]:
        """Hold the decider lease (re-entrant): wait while another process holds it; apply the
        writes a process killed mid-batch journalled before anything else."""
        self.lease.acquire(self._replay)
        try:
            if self.lease.depth == 1:
                self.decider.cache.hold(self.lease.fence_number, self.lease.changes_between)
            yield
        except BaseException:
            self.decider.cache.clear()  # a batch that failed may have been applied in part
            raise
        finally:
            self.lease.release()

    def _replay(self, payload: bytes) -> None:
        self.decider.cache.clear()
        dec.apply(self.client, dec.unpack(payload), payload)

    def _commit(self, store: dec.Store) -> None:
        """Journal a batch's write set (fenced by the lease), apply it, clear the journal."""
        commands = store.commands(self.config.stream_maxlen)
        if not commands:
            return
        packed = dec.pack(commands)
        self.lease.journal(packed, self.decider.cache.changed_keys(commands))
        if self.lease.remaining() < dec.APPLY_MARGIN_MS / 1000:
            raise dec.LeaseLost("the decider lease is about to expire: the journalled batch is left to the next holder")
        dec.apply(self.client, commands, packed)
        self.decider.cache.applied(commands)
        self.lease.clear()

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

    def _decision(self, item: Prepared, outcome: dec.Outcome) -> Decision:
        kind = rec.KINDS.get(outcome.kind)
        is_dup = kind not in (None, "thin")
        return Decision(
            article_id=item.id,
            url=item.article.url,
            cluster=outcome.cluster.hex(),
            canonical_id=outcome.canonical.hex(),
            is_canonical=outcome.canonical.hex() == item.id and kind is None,
            kind=kind,
            duplicate_of=rec.to_hex(outcome.duplicate_of),
            similarity=outcome.similarity / 10000 if is_dup else None,
            containment=outcome.containment / 10000 if is_dup else None,
            replaced=outcome.replaced.hex() or None,
            known=outcome.status == "known",
            events=tuple(e.entry_id for e in outcome.events if e.entry_id),
            adopted=tuple(adopted.hex() for adopted in outcome.adopted),
        )

    def peek(self, article: Article, limit: int = 10, now: float | None = None) -> Peek:
        """The decision `add` would make now (or for an article arriving at `now`) and the nearest
        candidates, without changing anything."""
        item = self.prepare(article, now, learn=False)
        result: dict = self.decider.peek(self.decider.store(cached=False), self._item(item), limit)
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
        """Complete stream events an earlier version left waiting for their canonical's stored text."""
        if not self.client.hlen(self.keys.pending_events):
            return 0
        with self.leased():
            store = self.decider.store()
            for event_id, payload in self.client.hgetall(self.keys.pending_events).items():
                store.hdels.append((self.keys.pending_events, event_id))
                try:
                    event = json.loads(payload)
                    canonical = store.record(bytes.fromhex(event["id"]))
                except (ValueError, KeyError) as exc:
                    log.error("pending event %s unreadable: %s", _text(event_id), exc)
                    continue
                if canonical is None:
                    continue
                value = store.get(self.keys.cluster(canonical.cluster.hex()))
                if (value[:8] if value else canonical.cluster) != canonical.id:
                    continue  # a later decision moved the canonical on (and queued its own event)
                emitted = dec.stored_event(store, str(event["event"]), _text(event_id), canonical,
                                           bytes.fromhex(str(event["cluster"])),
                                           bytes.fromhex(event["replaces"]) if event.get("replaces") else None)
                emitted.deferred = False
                store.events.append(emitted)
            self._commit(store)
            return len(store.events)

    # Reading

    def get(self, article_id: str) -> rec.Record | None:
        """The stored record of one article, or None."""
        raw = self.client.get(self.keys.article(article_id))
        return self._with_text([rec.unpack(article_id, raw)])[0] if raw else None

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
        members = [m.hex() for m in ClusterValue.member_ids(raw)]
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
        """Every stored record (in batches of MGET), without reading texts kept on the stream or as
        deltas (Record.text is "" for those: get and get_many read them)."""
        ids: list[str] = []
        for article_id in self.article_ids(newest_first):
            ids.append(article_id)
            if len(ids) >= batch:
                yield from self._fetch(ids, text=False)
                ids = []
        if ids:
            yield from self._fetch(ids, text=False)

    def _fetch(self, ids: list[str], text: bool = True) -> Iterator[rec.Record]:
        found = [rec.unpack(article_id, raw) for article_id, raw in
                 zip(ids, get_many(self.client, [self.keys.article(i) for i in ids]), strict=True) if raw]
        yield from self._with_text(found) if text else found

    def _with_text(self, records: list[rec.Record]) -> list[rec.Record]:
        """Records with the text of those that keep it in the canonical stream read from there, and
        of those stored as a delta rebuilt from their base's; a trimmed entry or a base gone leaves
        stream_text None (Record.text_expired). Single-key reads only (fine on a cluster)."""
        out = self._with_stream_text(records)
        deltas = [index for index, record in enumerate(out) if record.text_base]
        if not deltas:
            return out
        base_ids = sorted({out[index].text_base or "" for index in deltas})
        raws = get_many(self.client, [self.keys.article(i) for i in base_ids])
        bases = {r.id: r for r in self._with_stream_text(
            [rec.unpack(i, raw) for i, raw in zip(base_ids, raws, strict=True) if raw])}
        for index in deltas:
            base = bases.get(out[index].text_base or "")
            if base is None or base.text_base or base.text_expired:
                continue
            try:
                out[index] = rec.replace(out[index], stream_text=rec.undelta(out[index].text_delta, base.text))
            except zlib.error:
                log.error("article %s: its text delta does not match its base %s", out[index].id, base.id)
        return out

    def _with_stream_text(self, records: list[rec.Record]) -> list[rec.Record]:
        refs = [index for index, record in enumerate(records) if record.text_ref]
        if not refs:
            return records
        pipe = self.client.pipeline(transaction=False)
        for index in refs:
            pipe.xrange(self.keys.canonical_stream, records[index].text_ref, records[index].text_ref, count=1)
        out = list(records)
        for index, entries in zip(refs, pipe.execute(), strict=True):
            if entries:
                out[index] = rec.replace(records[index], stream_text=_text(entries[0][1].get(b"text", b"")))
        return out

    def stats(self) -> dict[str, int]:
        """Counters: clusters, canonicals, dup_exact, dup_near, dup_excerpt, thin, and their sum."""
        counts = {_text(k): int(v) for k, v in self.client.hgetall(self.keys.stats).items()}
        counts["articles"] = sum(v for k, v in counts.items() if k != "clusters")
        return counts

    # Retention

    def forget(self, article_ids: list[str]) -> int:
        """Remove articles from the index and store; their clusters re-elect a canonical quietly, and the
        new canonicals are indexed, all in one journalled write set under the decider lease."""
        if not article_ids:
            return 0
        with self.leased():
            store = self.decider.store()
            removed = self.decider.forget(store, [bytes.fromhex(i) for i in article_ids])
            self._commit(store)
        return removed

    def resume_reindex(self) -> int:
        """Index the canonicals an earlier version's retention left on its re-index to-do set."""
        todo = sorted(_text(raw) for raw in self.client.smembers(self.keys.reindex))
        if not todo:
            return 0
        done = 0
        with self.leased():
            for chunk in _chunks(todo, 256):
                store = self.decider.store()
                store.prefetch_records(bytes.fromhex(i) for i in chunk)
                for survivor in chunk:
                    store.srems.setdefault(self.keys.reindex, []).append(survivor.encode())
                    done += self.decider.index(store, bytes.fromhex(survivor))
                self._commit(store)
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
        with self.leased():  # a batch a killed process journalled is applied first
            return self._expire(now)

    def _expire(self, now: float) -> int:
        self.resume_reindex()  # what an earlier version's expiry left to do
        # A bucket goes once all of it is older than the window.
        span = self.config.params.time_bucket
        cutoff = int((now - self.config.retention) // span)
        removed = 0
        for raw_bucket in self.client.zrangebyscore(self.keys.time_buckets, "-inf", cutoff - 1):
            bucket_key = self.keys.time_bucket(int(raw_bucket))
            ids = [raw.hex() for raw in self.client.lrange(bucket_key, 0, -1)]
            for start in range(0, len(ids), 256):
                removed += self.forget(ids[start : start + 256])
            # One key at a time (they may live on different cluster nodes): a process killed between
            # the two leaves an empty bucket listed, which the next expiry takes off.
            self.client.delete(bucket_key)
            self.client.zrem(self.keys.time_buckets, raw_bucket)
        if self.config.stream_retention > 0:
            min_ms = int((now - self.config.stream_retention) * 1000)
            self.client.xtrim(self.keys.canonical_stream, minid=f"{min_ms}-0", approximate=True)
        if removed:
            log.info("retention: %d articles older than %.0f s removed", removed, self.config.retention)
        return removed


_FORK_FROM_BATCHES = 3
"""add_many fingerprints in a child process when the input has at least this many batches."""
_PREPARE_AHEAD = 2
"""Batches the child fingerprints ahead of the one being decided."""


def _portable(exc: Exception) -> Exception:
    """An exception that crosses a process boundary with its type and message (or a RuntimeError saying so)."""
    try:
        copy = type(exc)(*exc.args)
        copy.__reduce__()
        return copy
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _site(article: Article) -> str:
    return article.site or site_of(article.final_url or article.url)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _timestamp(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()




__all__ = ["REASONS", "Engine", "EngineConfig", "Fingerprinted", "Match", "Peek", "canonical_url"]
