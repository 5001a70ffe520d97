"""newsdedup's duplicate engine: MinHash LSH on Redis, canonical policy, canonical stream."""

from __future__ import annotations

from dedup.article import Article, Decision

__all__ = ["Article", "Decision"]
