"""Every Redis key newsdedup uses, under one prefix.

Source status and control (written by the service and `newsdedup pause|resume|crawl-now`, read by
`newsdedup status` and the dashboard; crawler.control reads and writes them):
- `source:{name}` hash: last_started, last_finished, last_outcome, last_counts (JSON), last_instance,
  next_crawl (when the scheduler ticks next, epoch seconds), plus lease and conditional-GET fields.
- `results:{name}` sorted set, score = when the crawl ended: one JSON member per crawl that ran
  ({"finished", "started", "outcome", "instance", "counts", "failures"}), kept for the status window.
- `failures:{name}` hash: URL -> JSON {"reason", "at", "count"} for pages and listings that failed,
  kept for the status window (at most a few hundred, the newest).
- `control:paused` hash: source -> JSON {"at", "who", "reason"}; a paused source is not crawled.
- `control:crawl-now` hash: source -> JSON {"at", "who"}; a running instance takes the request
  (HDEL decides which one) and starts a crawl within about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from dedup.cluster import beside

DEFAULT_PREFIX = "newsdedup:"


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix; pass a Keys to everything that touches Redis."""

    prefix: str = DEFAULT_PREFIX

    @property
    def params(self) -> str:
        """Hash: the signature scheme and index layout this data was written with."""
        return self.prefix + "params"

    @property
    def stats(self) -> str:
        """Hash: counters (articles, canonicals, duplicates by kind, thin, clusters)."""
        return self.prefix + "stats"

    @property
    def canonical_stream(self) -> str:
        """Stream: new and replaced canonical articles, for downstream consumers."""
        return self.prefix + "canonical"

    @property
    def pending_events(self) -> str:
        """Hash: stream events decided but still waiting for their text (event id -> JSON)."""
        return self.prefix + "pending"

    @property
    def overrides_log(self) -> str:
        """List: the audit log of operator overrides (JSON entries, newest last)."""
        return self.prefix + "overrides"

    @property
    def instances(self) -> str:
        """Hash: running service instances and their last heartbeat (JSON)."""
        return self.prefix + "instances"

    @property
    def reindex(self) -> str:
        """Set: hex ids of articles retention made canonical that still await indexing (Engine.forget)."""
        return self.prefix + "reindex"

    def article(self, article_id: str) -> str:
        """String: the packed record of one article (see dedup.record)."""
        return f"{self.prefix}a:{article_id}"

    def cluster(self, cluster_id: str) -> str:
        """String: canonical id, reason code, then the member ids of a multi-member cluster."""
        return f"{self.prefix}c:{cluster_id}"

    def band_shard(self, shard: int) -> str:
        """Hash: LSH band buckets and content hashes of one shard -> concatenated article ids."""
        return f"{self.prefix}b:{shard}"

    def time_bucket(self, bucket: int) -> str:
        """List: ids of the articles decided in one time bucket (for retention and recent listings)."""
        return f"{self.prefix}t:{bucket}"

    def decisions_hour(self, hour: int) -> str:
        """Hash with expiry: decisions made in one hour (hours since the epoch), by kind and by kind|source."""
        return f"{self.prefix}dh:{hour}"

    @property
    def time_buckets(self) -> str:
        """Sorted set: the time buckets that hold articles (score = bucket number)."""
        return self.prefix + "hours"

    def source_lease(self, source: str) -> str:
        """String with expiry: which instance is crawling this source now. Its hash tag is the source's
        state key, so that the lease scripts, which touch both, run on one Redis Cluster slot (before
        this name, `lease:<source>`: such a lease simply expires after its TTL)."""
        return beside(self.source_state(source), f"{self.prefix}lease:")

    def source_state(self, source: str) -> str:
        """Hash: a source's last crawl (when, outcome, counts) and conditional-GET validators."""
        return f"{self.prefix}source:{source}"

    def boilerplate(self, site: str) -> str:
        """Hash: on how many of a site's pages each line (8-byte hash) appeared, and b"#pages"."""
        return f"{self.prefix}bp:{site}"

    def source_results(self, source: str) -> str:
        """Sorted set: a source's recent crawl results (JSON, score = end time), kept for a window."""
        return f"{self.prefix}results:{source}"

    def source_failures(self, source: str) -> str:
        """Hash: URLs a source's recent crawls failed on -> JSON {reason, at, count}, kept for a window."""
        return f"{self.prefix}failures:{source}"

    @property
    def paused_sources(self) -> str:
        """Hash: paused sources -> JSON {at, who, reason}; kept across restarts until resumed."""
        return self.prefix + "control:paused"

    @property
    def crawl_requests(self) -> str:
        """Hash: sources an operator asked to crawl now -> JSON {at, who}; one instance takes each."""
        return self.prefix + "control:crawl-now"

    def seen(self, day: int) -> str:
        """Set: canonicalised article URLs already fetched on one day (the crawler's seen-set)."""
        return f"{self.prefix}seen:{day}"

    @property
    def inbox(self) -> str:
        """Stream: fetched and extracted articles waiting for a decision (crash-safe handoff)."""
        return self.prefix + "inbox"

    @property
    def dead_letters(self) -> str:
        """Stream: records that could not be decided, each with its error (see dedup.deadletter)."""
        return self.prefix + "dead"

    @property
    def health(self) -> str:
        return self.prefix + "health"

    def ingest_roles(self, run: str, shard: int) -> str:
        """Hash: article id (8 bytes) -> the role one `ingest` run counted it under, for the articles of
        that run whose id starts with the three hex digits `shard` (deleted at the end of the run;
        expires if the run dies)."""
        return f"{self.prefix}ingest:{run}:roles:{shard:03x}"


def reply_text(value: object) -> str:
    """A Redis reply (bytes, or a value already decoded) as text; None as ""."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
