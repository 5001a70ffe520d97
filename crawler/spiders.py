"""The source spider: fetch a source's feeds and sitemaps, then the articles they list (each once)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import scrapy

# Imported here, at a shallow stack, not by the first crawl's download handlers: Scrapy 2.19 builds deprecated
# aliases in it with inspect.stack(), which reads the source of every frame (0.2 s or more deep in the reactor).
import scrapy.core.downloader.contextfactory
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.httpobj import urlparse_cached
from twisted.python.failure import Failure

from crawler.compression import DECOMPRESS_IN_WORKER
from crawler.config import CrawlSettings, SourceSettings
from crawler.control import MAX_FAILURES
from crawler.feeds import FeedError, parse_listing
from crawler.health import Metrics
from crawler.inbox import Inbox, InboxWriter, redis_retry
from crawler.logs import about
from crawler.workers import FingerprintSpec
from dedup.article import Article
from dedup.engine import Fingerprinted
from dedup.keys import Keys
from dedup.urls import canonical_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)

MAX_SITEMAP_DEPTH = 3
_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml+xhtml")
# An article that answers these is gone for good: remember it as handled, like a decided one.
_GONE = frozenset({404, 410, 451})
# Failures that the next crawl would meet again: remembered as handled too.
_REMEMBERED = frozenset({"too_large", "too_many_redirects"})


@dataclass
class CrawlJob:
    """Everything one crawl of one source needs, handed to the spider and its pipeline."""

    source: SourceSettings
    crawl: CrawlSettings
    inbox: Inbox
    keys: Keys
    metrics: Metrics
    executor: Executor | None
    retention: float
    inbox_maxlen: int = 100_000
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    fingerprint: FingerprintSpec | None = None
    """How the extraction workers fingerprint what they extract (None: the decider does)."""
    on_written: Callable[[], None] | None = None
    """Called as each handed-over article is in the inbox (the service's decider sizes its batches by it)."""
    counts: dict[str, int] = field(default_factory=dict)
    stop_reason: str = ""
    """Set by stop_crawl(): from then on no request of this crawl is sent."""
    listed_at: float | None = None
    """When the crawl's first feed or sitemap request went out: it sees the sources as of then."""
    failures: dict[str, str] = field(default_factory=dict)
    """URL -> why it failed in this crawl (for the source's status; at most MAX_FAILURES kept)."""
    _writer: InboxWriter | None = field(default=None, init=False, repr=False)

    def count(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def failed(self, url: str, reason: str) -> None:
        """Note a URL this crawl failed on, for the source's status."""
        if len(self.failures) < MAX_FAILURES or url in self.failures:
            self.failures[url] = reason

    async def hand_over(self, article: Article | Fingerprinted, seen_url: str) -> None:
        """Put an extracted article in the inbox and mark its URL seen (batched with its neighbours)."""
        if self._writer is None:
            self._writer = InboxWriter(self.inbox, metrics=self.metrics, stopping=self.stopping)
        await self._writer.put(article, seen_url)
        if self.on_written is not None:
            self.on_written()

    async def redis(self, call: Any, *args: Any, stage: str = "crawl") -> Any:
        return await redis_retry(call, *args, stage=stage, metrics=self.metrics, stopping=self.stopping)

    # Conditional-GET validators, kept in the source's state hash.

    def validators(self) -> dict[str, tuple[str, str]]:
        raw = self.inbox.client.hgetall(self.keys.source_state(self.source.name))
        result: dict[str, tuple[str, str]] = {}
        for key, value in raw.items():
            name = key.decode("utf-8", "replace")
            for prefix, slot in (("etag:", 0), ("modified:", 1)):
                if name.startswith(prefix):
                    url = name[len(prefix):]
                    pair = list(result.get(url, ("", "")))
                    pair[slot] = value.decode("utf-8", "replace")
                    result[url] = (pair[0], pair[1])
        return result

    @staticmethod
    def validator_state(validators: dict[str, tuple[str, str]]) -> dict[str, str]:
        """The source-state fields that keep these validators (see validators())."""
        mapping = {}
        for url, (etag, modified) in validators.items():
            mapping[f"etag:{url}"] = etag
            mapping[f"modified:{url}"] = modified
        return mapping


class SourceSpider(scrapy.Spider):
    """One crawl of one configured source."""

    name = "newsdedup"

    def __init__(self, job: CrawlJob, **kwargs: Any) -> None:
        super().__init__(name=f"source-{job.source.name}", **kwargs)
        self.job = job
        self.source = job.source.name
        self.queued: set[str] = set()
        self.incomplete: set[str] = set()
        """Listings some of whose articles were not fetched: their validators are not saved."""
        self.new_validators: dict[str, tuple[str, str]] = {}
        # For the SSRF guard (crawler.netguard): the listings we were configured with may be on
        # any address; what they list must be on their host or in allow_networks.
        self.feed_urls = [*job.source.feeds, *job.source.sitemaps]
        self.allow_networks = list(job.source.allow_networks)

    async def start(self) -> AsyncIterator[Request]:
        known: dict[str, tuple[str, str]] = await self.job.redis(self.job.validators)
        if self.job.stop_reason:
            return
        for url in (*self.job.source.feeds, *self.job.source.sitemaps):
            yield self._listing_request(url, known.get(url), 0)

    def _listing_request(self, url: str, validators: tuple[str, str] | None, depth: int,
                         parent: str | None = None) -> Request:
        headers: dict[str, str] = {}
        if validators:
            etag, modified = validators
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
        return Request(
            url, callback=self.parse_listing, errback=self.listing_failed, headers=headers, priority=10,
            meta={"listing": url, "sitemap_depth": depth, "handle_httpstatus_list": [304],
                  "feed_url": parent or url, "allow_networks": self.allow_networks},
            dont_filter=depth == 0,
        )

    async def parse_listing(self, response: Response) -> AsyncIterator[Request]:
        """A feed or sitemap: follow child sitemaps, request the articles not yet seen."""
        listing_url: str = response.meta["listing"]
        self.job.metrics.pages.labels(self.source, "listing").inc()
        self.job.count("listings")
        if response.status == 304:
            self.job.metrics.skipped.labels(self.source, "not_modified").inc()
            self.job.count("not_modified")
            log.debug("listing not modified", extra=about(self.source, listing_url))
            return
        try:
            listing = await asyncio.to_thread(parse_listing, response.body, response.url)
        except FeedError as exc:
            self.job.metrics.fetch_errors.labels(self.source, "bad_listing").inc()
            self.job.count("bad_listings")
            self.job.failed(listing_url, f"unreadable feed or sitemap: {exc}")
            log.warning("unreadable feed or sitemap: %s", exc, extra=about(self.source, listing_url))
            return
        if listing.truncated:
            # Its validators are not kept, so the next crawl fetches it whole rather than "not modified".
            self.incomplete.add(listing_url)
            self.job.metrics.fetch_errors.labels(self.source, "truncated_listing").inc()
            self.job.count("truncated_listings")
            log.warning("feed or sitemap cut off mid-document; kept the %d entries closed before the cut",
                        len(listing.entries) + len(listing.sitemaps), extra=about(self.source, listing_url))
        if listing.skipped:
            self.job.metrics.skipped.labels(self.source, "bad_entry").inc(listing.skipped)
            self.job.count("bad_entries", listing.skipped)
            log.warning("%d entries without a usable URL left out", listing.skipped,
                        extra=about(self.source, listing_url))
        etag = _header(response, b"ETag")
        modified = _header(response, b"Last-Modified")
        if etag or modified:
            self.new_validators[listing_url] = (etag, modified)
        depth = response.meta.get("sitemap_depth", 0)
        if listing.sitemaps:
            known: dict[str, tuple[str, str]] = await self.job.redis(self.job.validators)
            for child in listing.sitemaps:
                if depth + 1 > MAX_SITEMAP_DEPTH:
                    log.warning("sitemap index nested too deep", extra=about(self.source, child))
                    break
                try:
                    canonical_url(child)  # only checked: validators stay keyed by the URL as listed
                    request = self._listing_request(child, known.get(child), depth + 1, parent=listing_url)
                except ValueError as exc:  # BadURL, or a URL Scrapy refuses
                    self._bad_entry(listing_url, child, exc)
                    continue
                yield request
        cutoff = time.time() - self.job.crawl.max_age if self.job.crawl.max_age else None
        candidates: dict[str, tuple[str, datetime | None]] = {}
        for entry in listing.entries:
            # One entry is one article: whatever is wrong with it, the listing's other entries go on.
            try:
                if cutoff and entry.published is not None and entry.published.timestamp() < cutoff:
                    self.job.metrics.skipped.labels(self.source, "too_old").inc()
                    continue
                url = canonical_url(entry.url)
            except (ValueError, OverflowError) as exc:  # BadURL; a date out of the platform's range
                self._bad_entry(listing_url, entry.url, exc)
                continue
            if url not in self.queued and url not in candidates:
                candidates[url] = (entry.title, entry.published)
        self.job.metrics.listing_entries.labels(self.source).inc(len(listing.entries))
        urls = list(candidates)
        seen: list[bool] = await self.job.redis(self.job.inbox.seen, urls)
        fresh = seen.count(False)
        # INFO only when it lists something new: a quiet tick logs one INFO line per source, its crawl's result.
        log.log(logging.INFO if fresh else logging.DEBUG,
                "%s with %d entries (%d not seen before), %d child sitemaps", listing.kind, len(listing.entries),
                fresh, len(listing.sitemaps), extra=about(self.source, listing_url))
        limit = self.job.crawl.max_articles
        for url, already in zip(urls, seen, strict=True):
            if already:
                self.job.metrics.skipped.labels(self.source, "seen").inc()
                self.job.count("seen")
                continue
            if limit and len(self.queued) >= limit:
                self.job.metrics.skipped.labels(self.source, "max_articles").inc()
                self.incomplete.add(listing_url)
                continue
            title, published = candidates[url]
            try:
                request = Request(url, callback=self.parse_article, errback=self.article_failed,
                                  meta={"listing": listing_url, "feed_url": listing_url,
                                        "allow_networks": self.allow_networks, "article": url,
                                        DECOMPRESS_IN_WORKER: True,
                                        "entry_title": title,
                                        "entry_published": published.isoformat() if published else ""})
            except ValueError as exc:  # a canonical URL Scrapy still refuses
                self._bad_entry(listing_url, url, exc)
                continue
            self.queued.add(url)
            yield request

    def _bad_entry(self, listing_url: str, url: str, error: Exception) -> None:
        """Count and log one feed or sitemap entry that cannot be fetched; the listing goes on."""
        self.job.metrics.skipped.labels(self.source, "bad_entry").inc()
        self.job.count("bad_entries")
        log.warning("entry skipped: %s (listed in %s)", error, listing_url, extra=about(self.source, url[:300]))

    async def parse_article(self, response: Response) -> AsyncIterator[dict[str, Any]]:
        """An article page: hand HTML on to the extraction pipeline, count anything else."""
        url: str = response.meta["article"]
        self.job.metrics.pages.labels(self.source, "article").inc()
        self.job.count("articles_fetched")
        content_type = _header(response, b"Content-Type").lower()
        if content_type and not content_type.split(";")[0].strip() in _HTML_TYPES:
            self.job.metrics.skipped.labels(self.source, "not_html").inc()
            self.job.count("not_html")
            log.info("skipped, not HTML (%s)", content_type, extra=about(self.source, url))
            await self.job.redis(self.job.inbox.mark_seen, [url])
            return
        yield {
            "url": url,
            "final_url": response.url,
            "body": response.body,
            "encoding": _charset(content_type),
            # Set when crawler.compression left a gzip or deflate body for the extraction worker.
            "content_encoding": _header(response, b"Content-Encoding"),
            "fetched_at": datetime.now(UTC).isoformat(),
            "entry_title": response.meta.get("entry_title", ""),
            "entry_published": response.meta.get("entry_published", ""),
            "listing": response.meta.get("listing", ""),
        }

    async def article_failed(self, failure: Failure) -> None:
        """Count a failed article fetch; a gone page is remembered, a transient failure retried next crawl."""
        request = failure.request  # type: ignore[attr-defined]
        url = request.meta.get("article", request.url)
        listing = request.meta.get("listing", "")
        if failure.check(CrawlStopped):
            self.incomplete.add(listing)
            log.debug("not fetched: %s", failure.value, extra=about(self.source, url))
            return
        reason = _failure_reason(failure)
        if reason in ("robots", "ignored"):
            self.job.metrics.skipped.labels(self.source, reason).inc()
            self.job.count(reason)
            log.info("not fetched: %s", failure.value, extra=about(self.source, url))
            return
        gone = bool(failure.check(HttpError)) and failure.value.response.status in _GONE
        await self.page_failed(url, listing, reason, _failure_text(failure), remember=gone)

    async def page_failed(self, url: str, listing: str, reason: str, text: str, *, remember: bool = False) -> None:
        """Count an article page that could not be fetched or read; remembered as handled when it is gone."""
        self.job.metrics.fetch_errors.labels(self.source, reason).inc()
        self.job.count("fetch_errors")
        self.job.failed(url, text)
        log.warning("fetch failed: %s", text, extra=about(self.source, url))
        if remember or reason in _REMEMBERED:
            # Gone pages stay gone, a page over the size limit will not shrink, and a redirect loop
            # or endless chain is a broken URL: none is fetched again on the next crawl (a gzip bomb
            # or a loop would otherwise cost the publisher the same requests every tick).
            await self.job.redis(self.job.inbox.mark_seen, [url])
        else:
            self.incomplete.add(listing)

    def listing_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(CrawlStopped):
            log.debug("not fetched: %s", failure.value, extra=about(self.source, request.url))
            return
        self.job.metrics.fetch_errors.labels(self.source, "listing_" + _failure_reason(failure)).inc()
        self.job.count("bad_listings")
        self.job.failed(request.url, "feed or sitemap fetch failed: " + _failure_text(failure))
        log.warning("feed or sitemap fetch failed: %s", _failure_text(failure),
                    extra=about(self.source, request.url))

    def redirected_to_requested(self, request: Request) -> None:
        """Count a redirect Scrapy's duplicate filter dropped (a loop, or an alias of a listed page)."""
        url = request.meta.get("article") or request.meta.get("listing") or request.url
        self.job.metrics.skipped.labels(self.source, "redirect_repeat").inc()
        self.job.count("redirect_repeat")
        log.info("not fetched: redirected to %s, already requested in this crawl (a redirect loop, or another URL "
                 "of a listed page)", request.url, extra=about(self.source, url))

    def closed(self, reason: str) -> None:
        self.job.counts["close_reason"] = reason  # type: ignore[assignment]


class RedirectAwareDupeFilter(RFPDupeFilter):
    """Scrapy's duplicate filter, except that a redirect it drops is logged and counted: otherwise a
    redirect loop (a -> b -> a) ends in silence, with no error and no count."""

    def log(self, request: Request, spider: scrapy.Spider) -> None:
        super().log(request, spider)
        if request.meta.get("redirect_urls") and isinstance(spider, SourceSpider):
            spider.redirected_to_requested(request)


def _header(response: Response, name: bytes) -> str:
    value = response.headers.get(name)
    return value.decode("latin-1").strip() if value else ""


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def _failure_reason(failure: Failure) -> str:
    if failure.check(HttpError):
        return f"http_{failure.value.response.status}"
    return _exception_reason(failure.value)


def _exception_reason(exception: BaseException) -> str:
    if isinstance(exception, IgnoreRequest):
        message = str(exception).lower()
        if "robots" in message:
            return "robots"
        if "size" in message:
            return "too_large"
        if "redirections" in message:
            return "too_many_redirects"
        return "ignored"
    name = type(exception).__name__
    if "Timeout" in name:
        return "timeout"
    if "Cancelled" in name:
        return "too_large"
    if "Refused" in name or "Connect" in name or "Resolve" in name:
        return "connection"
    return "other"


def _failure_text(failure: Failure) -> str:
    if failure.check(HttpError):
        return f"HTTP {failure.value.response.status}"
    # Scrapy cancels an over-long body with an empty message (it logs the sizes itself).
    return f"{type(failure.value).__name__}: {failure.value or _failure_reason(failure).replace('_', ' ')}"


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries on 429/5xx and network errors, waiting (exponentially, or Retry-After) first."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.backoff = settings.getfloat("NEWSDEDUP_RETRY_BACKOFF", 1.0)
        self.backoff_max = settings.getfloat("NEWSDEDUP_RETRY_BACKOFF_MAX", 60.0)

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, f"HTTP {response.status}")
        if retry is None:
            return response
        await asyncio.sleep(self._delay(retry, _retry_after(response)))
        return retry

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or not isinstance(exception, self.exceptions_to_retry):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await asyncio.sleep(self._delay(retry, None))
        return retry

    def _delay(self, retry: Request, retry_after: float | None) -> float:
        attempt = max(1, int(retry.meta.get("retry_times", 1)))
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.backoff_max)


class CrawlStopped(IgnoreRequest):
    """A request of a crawl that was told to stop (its lease lost, or the service stopping): not sent."""


async def stop_crawl(crawler: Crawler, job: CrawlJob, reason: str) -> None:
    """Stop a crawl early without sending another request; return when it has stopped.

    Downloads in flight finish and their pages go through the pipeline to the inbox; requests waiting
    in the downloader or the scheduler are dropped (not marked seen: the next crawl fetches them).
    """
    if job.stop_reason:
        return
    job.stop_reason = reason
    engine = crawler._engine  # Scrapy's way to look before the crawl has started
    if engine is not None:
        for slot in engine.downloader.slots.values():
            while slot.queue:
                _request, waiting = slot.queue.popleft()
                waiting.errback(CrawlStopped(f"crawl stopped ({reason})"))
    await crawler.stop_async()


class CrawlGateMiddleware:
    """Last before the download: a request of a crawl being stopped (stop_crawl) is not sent, even one that
    waited for its robots.txt or an engine that had not started yet; notes when the first listing goes out."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlGateMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        spider = self.crawler.spider
        if not isinstance(spider, SourceSpider):
            return
        if spider.job.stop_reason:
            raise CrawlStopped(f"crawl stopped ({spider.job.stop_reason})")
        if spider.job.listed_at is None and request.meta.get("sitemap_depth") == 0:
            spider.job.listed_at = time.time()


class NoRefererRedirectMiddleware(RedirectMiddleware):
    """Scrapy's redirects for crawls that send no Referer (RefererMiddleware is off, see crawler.settings):
    a redirected request carries none either. Scrapy's own looks for RefererMiddleware when the engine
    starts and logs a warning at every crawl when it is off."""

    def handle_referer(self, request: Request, response: Response) -> None:
        request.headers.pop("Referer", None)

    def _engine_started(self) -> None:
        pass


class RobotsTxtErrorMiddleware:
    """A robots.txt that cannot be fetched (refused, timed out, no such host) is one warning and a count.

    Scrapy's RobotsTxtMiddleware logs such a failure as an error with a full traceback (and its retry
    middleware adds "Gave up retrying"); here it becomes IgnoreRequest, which it takes quietly, and it
    then crawls the host as it always does when robots.txt is unreachable: as if there were none.
    Runs after the retries (below RetryMiddleware's 550), so only the final failure is reported.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtErrorMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if _is_robots_txt(request):
            request.meta.setdefault("give_up_log_level", "DEBUG")  # our warning below says it once

    def process_exception(self, request: Request, exception: Exception) -> None:
        if not _is_robots_txt(request) or isinstance(exception, IgnoreRequest):
            return
        spider = self.crawler.spider
        reason = _exception_reason(exception)
        if isinstance(spider, SourceSpider):
            spider.job.metrics.fetch_errors.labels(spider.source, f"robots_{reason}").inc()
            spider.job.count("robots_unreachable")
        log.warning("robots.txt unreachable (%s: %s); crawling the host as if it had none",
                    type(exception).__name__, exception, extra=about(getattr(spider, "source", "?"), request.url))
        raise IgnoreRequest(f"robots.txt unreachable: {exception}")


def _is_robots_txt(request: Request) -> bool:
    """The request Scrapy's RobotsTxtMiddleware makes for a host's robots.txt."""
    return bool(request.meta.get("dont_obey_robotstxt")) and urlparse_cached(request).path == "/robots.txt"


def _retry_after(response: Response) -> float | None:
    value = _header(response, b"Retry-After")
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


__all__ = ["BackoffRetryMiddleware", "CrawlGateMiddleware", "CrawlJob", "CrawlStopped", "RedirectAwareDupeFilter",
           "RobotsTxtErrorMiddleware", "SourceSpider", "stop_crawl"]
