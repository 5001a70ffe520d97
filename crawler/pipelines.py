"""The item pipeline: extract each fetched page off the event loop, then hand the article to the inbox."""

from __future__ import annotations

import asyncio
import logging
import zlib
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime
from typing import Any

from scrapy.crawler import Crawler

from crawler.compression import BodyTooLarge, decompress_body
from crawler.logs import about
from crawler.workers import FingerprintSpec, fingerprinted
from dedup.article import Article
from dedup.engine import Fingerprinted

log = logging.getLogger(__name__)


def extract_page(
    url: str, body: bytes, final_url: str | None, encoding: str | None, fetched_at: str, source: str,
    entry_title: str = "", entry_published: str = "", fingerprint: FingerprintSpec | None = None,
    content_encoding: str = "", max_size: int = 0,
) -> Article | Fingerprinted | None:
    """Worker: one page to an Article, fingerprinted with `fingerprint` (crawler.workers) when given;
    the feed's title and date fill in what the page lacks. A body still in its gzip or deflate
    `content_encoding` is decompressed first, to at most max_size bytes (else BodyTooLarge)."""
    # Here, not at the top: the service process imports this module but never extracts (crawler.service).
    from crawler.extract import extract_article

    if content_encoding:
        body = decompress_body(body, content_encoding, max_size)
    article = extract_article(
        body, url, final_url=final_url if final_url != url else None, headers_encoding=encoding,
        fetched_at=datetime.fromisoformat(fetched_at) if fetched_at else None, source=source,
    )
    if article is None:
        return None
    if not article.title and entry_title:
        article = replace(article, title=entry_title)
    if article.published is None and entry_published:
        article = replace(article, published=datetime.fromisoformat(entry_published))
    return fingerprinted(article, fingerprint)


class ExtractPipeline:
    """Extraction in the job's process pool; the article goes to the inbox with its URL marked seen."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._until_check = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractPipeline:
        return cls(crawler)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        spider = self.crawler.spider
        job = spider.job  # type: ignore[union-attr]
        source, url = job.source.name, item["url"]
        args = (url, item["body"], item["final_url"], item["encoding"], item["fetched_at"], source,
                item["entry_title"], item["entry_published"], job.fingerprint, item.get("content_encoding", ""),
                job.crawl.max_response_size)
        try:
            if job.executor is not None:
                article = await asyncio.get_running_loop().run_in_executor(job.executor, extract_page, *args)
            else:
                article = await asyncio.to_thread(extract_page, *args)
        except BodyTooLarge as exc:  # a gzip bomb: as if the download had been cut off at the limit
            await spider.page_failed(url, item.get("listing", ""), "too_large", f"{type(exc).__name__}: {exc}")  # type: ignore[union-attr]
            return {"url": url, "outcome": "fetch_failed"}
        except zlib.error as exc:  # a body that does not decompress: the download failed
            await spider.page_failed(url, item.get("listing", ""), "other", f"undecodable body: {exc}")  # type: ignore[union-attr]
            return {"url": url, "outcome": "fetch_failed"}
        except BrokenProcessPool:
            # A worker died (out of memory, a crash in a parser); the page is tried again next crawl.
            job.metrics.extraction_failures.labels(source, "worker_died").inc()
            job.count("extraction_failures")
            log.error("extraction worker died", extra=about(source, url))
            return {"url": url, "outcome": "extraction_failed"}
        except ImportError as exc:
            # The workers cannot load the extractor (a broken install): no fault of the page's, which is
            # not marked seen and is tried again by the next crawl, once the install is mended.
            job.metrics.extraction_failures.labels(source, "no_extractor").inc()
            job.count("extraction_failures")
            log.error("the extractor cannot be loaded: %s", exc, extra=about(source, url))
            return {"url": url, "outcome": "extraction_failed"}
        except Exception as exc:  # one page never stops a crawl
            job.metrics.extraction_failures.labels(source, "error").inc()
            job.count("extraction_failures")
            log.warning("extraction failed: %s: %s", type(exc).__name__, exc, extra=about(source, url))
            await job.redis(job.inbox.mark_seen, [url])
            return {"url": url, "outcome": "extraction_failed"}
        if article is None:
            job.metrics.extraction_failures.labels(source, "no_article").inc()
            job.count("no_article")
            log.info("no article text", extra=about(source, url))
            await job.redis(job.inbox.mark_seen, [url])
            return {"url": url, "outcome": "no_article"}
        await self._wait_for_room(job)
        await job.hand_over(article, url)
        job.metrics.extracted.labels(source).inc()
        job.count("extracted")
        log.debug("extracted, queued for a decision", extra=about(source, url))
        return {"url": url, "outcome": "queued"}

    async def _wait_for_room(self, job: Any) -> None:
        """Pause this crawl while the decider is far behind (the inbox is bounded; checked every 32 items)."""
        self._until_check -= 1
        if self._until_check > 0:
            return
        self._until_check = 32
        while (await job.redis(job.inbox.length, stage="inbox")) >= job.inbox_maxlen:
            if job.stopping.is_set():
                return
            await asyncio.sleep(0.5)
