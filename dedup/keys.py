"""Every Redis key newsdedup uses, under one prefix."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def time_buckets(self) -> str:
        """Sorted set: the time buckets that hold articles (score = bucket number)."""
        return self.prefix + "hours"

    def source_lease(self, source: str) -> str:
        """String with expiry: which instance is crawling this source now."""
        return f"{self.prefix}lease:{source}"

    def source_state(self, source: str) -> str:
        """Hash: a source's last crawl (when, outcome, counts) and conditional-GET validators."""
        return f"{self.prefix}source:{source}"

    def boilerplate(self, site: str) -> str:
        """Hash: on how many of a site's pages each line (8-byte hash) appeared, and b"#pages"."""
        return f"{self.prefix}bp:{site}"

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
