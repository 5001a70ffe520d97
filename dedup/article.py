"""The article the engine decides on, and the decision it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dedup.urls import url_id as article_id


@dataclass(frozen=True)
class Article:
    """One fetched (or batch-ingested) article, already extracted to text."""

    url: str
    text: str
    title: str = ""
    final_url: str | None = None
    published: datetime | None = None
    """Trustworthy publication date from page metadata (never a scrape-date header)."""
    canonical_link: str | None = None
    """The page's own rel=canonical or og:url, when it names another URL."""
    source_link: str | None = None
    """A "Source:" / "Read Full Article" / "Continue reading at" link to the original."""
    site: str | None = None
    fetched_at: datetime | None = None
    source: str = ""
    """Name of the configured source (or ingest file) the article came from."""
    dropped: tuple[str, ...] = field(default=(), compare=False)
    """What validation dropped or cut from the page's fields, one reason each (see dedup.validate)."""

    @property
    def id(self) -> str:
        return article_id(self.url)


@dataclass(frozen=True)
class Decision:
    """What the engine decided for one article."""

    article_id: str
    url: str
    cluster: str
    canonical_id: str
    is_canonical: bool
    kind: str | None = None
    """None for a canonical; "exact", "near" or "excerpt" for a duplicate; "thin" for a page with
    too little text to compare."""
    duplicate_of: str | None = None
    similarity: float | None = None
    containment: float | None = None
    replaced: str | None = None
    """Id of the canonical this article displaced, when it became the new canonical."""
    known: bool = False
    """True when the article had already been decided (an idempotent retry)."""
    events: tuple[str, ...] = field(default_factory=tuple)
    """Stream entry ids written by this decision."""
    adopted: tuple[str, ...] = ()
    """Ids of thin pages this article repeats: decided thin before, articles of its cluster now."""
