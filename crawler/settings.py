"""Scrapy settings for one source's crawl, built from our settings model (nothing else reads them)."""

from __future__ import annotations

from typing import Any

from crawler.config import CrawlSettings, Settings, SourceSettings

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
MIN_DELAY = 0.001
"""Seconds between two requests to one domain, at the least (see DOWNLOAD_DELAY below)."""


def scrapy_settings(settings: Settings, source: SourceSettings) -> dict[str, Any]:
    """The Scrapy settings dict for crawling `source`: its own [crawl] overrides over the defaults."""
    return crawl_scrapy_settings(source.crawl_settings(settings.crawl), settings.service.user_agent)


def crawl_scrapy_settings(crawl: CrawlSettings, default_user_agent: str) -> dict[str, Any]:
    user_agent = crawl.user_agent or default_user_agent
    return {
        "TWISTED_REACTOR": ASYNCIO_REACTOR,
        # Off: RemoteControl runs a local HTTP server that executes code; telnet is a debug console.
        "REMOTE_CONTROL_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # Only the extensions a crawl can use. Listing the others in EXTENSIONS as None would still import them
        # (Scrapy loads every key to normalise it): RemoteControl alone imports aiohttp, a quarter of a second
        # of every start. Off, too: TelnetConsole (a debug console), Scrapy's own counters (CoreStats,
        # LogCount, LogStats, fed by signals on every page; the service counts in crawler.health),
        # MemoryUsage, MemoryDebugger, FeedExporter and SpiderState (no feeds, no JOBDIR).
        "EXTENSIONS_BASE": {
            "scrapy.extensions.closespider.CloseSpider": 0,
            "scrapy.extensions.throttle.AutoThrottle": 0,
        },
        "STATS_CLASS": "scrapy.statscollectors.DummyStatsCollector",
        "LOG_ENABLED": True,
        "LOG_LEVEL": "WARNING",
        "STATS_DUMP": False,
        # Scrapy's byte counts of every request and response: nothing reads them, and they cost per page.
        "DOWNLOADER_STATS": False,
        "USER_AGENT": user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "ROBOTSTXT_USER_AGENT": user_agent,
        "CONCURRENT_REQUESTS": crawl.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency_per_domain,
        # Never 0: with no delay Scrapy 2.19 starts every queued request of a domain in one pass,
        # before any counts as transferring, and CONCURRENT_REQUESTS_PER_DOMAIN is not enforced.
        "DOWNLOAD_DELAY": max(crawl.delay, MIN_DELAY),
        "DOWNLOAD_DELAY_JITTER": 0.5,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(crawl.delay, 0.1),
        "AUTOTHROTTLE_MAX_DELAY": max(crawl.max_delay, crawl.delay),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": crawl.autothrottle_target,
        "RETRY_ENABLED": crawl.retries > 0,
        "RETRY_TIMES": crawl.retries,
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504, 522, 524, 408],
        "NEWSDEDUP_RETRY_BACKOFF": crawl.retry_backoff,
        "NEWSDEDUP_RETRY_BACKOFF_MAX": crawl.retry_backoff_max,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        # Enforced on the body as received and, by HttpCompressionMiddleware, after decompression.
        "DOWNLOAD_MAXSIZE": crawl.max_response_size,
        "DOWNLOAD_WARNSIZE": 0,
        "REDIRECT_MAX_TIMES": crawl.max_redirects,
        "METAREFRESH_ENABLED": False,
        "COOKIES_ENABLED": False,
        # Read only where a CrawlerProcess installs Scrapy's caching resolver (the SSRF guard's integration test);
        # the service's AsyncCrawlerRunner installs none, so the service pins answers itself (crawler.resolver).
        "DNSCACHE_ENABLED": True,
        "DOWNLOADER_MIDDLEWARES": {
            # Off: the spider names no allowed_domains (Offsite passes every request; the SSRF guard judges
            # hosts) and the service sends no HTTP credentials (HTTPAUTH_USER is never set).
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
            # Before robots.txt: a refused private address gets no request at all.
            "crawler.netguard.SSRFGuardMiddleware": 40,
            # Just after RobotsTxtMiddleware (100): an unreachable robots.txt is one line, after the retries.
            "crawler.spiders.RobotsTxtErrorMiddleware": 110,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.spiders.BackoffRetryMiddleware": 550,
            # Scrapy's decompression, without a charset guess over the compressed body (crawler.compression).
            "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
            "crawler.compression.HttpCompressionMiddleware": 590,
            # Scrapy's, less its search for RefererMiddleware (off, below) and the warning at every crawl.
            "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
            "crawler.spiders.NoRefererRedirectMiddleware": 600,
            # Last before the download: nothing more is sent once a crawl is being stopped.
            "crawler.spiders.CrawlGateMiddleware": 950,
        },
        "SPIDER_MIDDLEWARES": {
            # A development aid (warns once when a spider copies Scrapy's internal meta keys into a new request),
            # and another async generator layer around every callback's output.
            "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
            # Would send each article's feed or sitemap URL as its Referer: nothing a site needs from a crawler,
            # worked out for every listed URL (a quarter of the cost of turning a listing into requests) and
            # one more layer around every callback's output.
            "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
            # The spider bounds its own depth (crawler.spiders.MAX_SITEMAP_DEPTH: sitemap indexes three deep,
            # articles yield nothing), so Scrapy's count of every request's depth is another layer for nothing.
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
        },
        "ITEM_PIPELINES": {"crawler.pipelines.ExtractPipeline": 100},
        "DUPEFILTER_CLASS": "crawler.spiders.RedirectAwareDupeFilter",
        # Per callback: Scrapy starts this many worker tasks (and a queue) for every response. An article yields
        # one item, and a listing's requests are only queued (synchronous), so one is all they use.
        "CONCURRENT_ITEMS": 1,
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en",
        },
    }
