"""Crawl throughput: pages/s from a sitemap into the canonical stream, next to extraction alone.

A local site (its own process) serves PAGES article pages built from the extraction benchmark's real
article bodies (../shared/data/extraction-benchmark) and one sitemap listing them. The script measures
1. extraction alone: the same pages through extract_page in a pool of WORKERS processes;
2. end to end: the crawler service (`newsdedup crawl`'s code path: Scrapy, the pool, the inbox,
   the decider, the engine) from the first request until every page is decided.
3. fetch only (its own process): Scrapy with the service's settings and middlewares fetching the
   same pages and discarding them, which is what the crawler costs before anything is extracted.
The target is end-to-end >= 80% of the extraction-only rate. With all processes sharing the machine's
cores, end to end cannot beat extraction / (extraction + fetching + deciding) CPU per page; the script
prints that ceiling next to the result.

    python benchmarks/crawl_throughput.py [--pages 3000] [--workers 0] [--redis-url redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from crawler.config import CrawlSettings

GROUND_TRUTH = Path(__file__).resolve().parents[2] / "shared" / "data" / "extraction-benchmark" / "ground-truth.json"


def build_pages(count: int) -> list[tuple[str, str]]:
    """(path, html) pages, each a distinct article: halves of two real bodies."""
    from crawler.demo.site import Story, publisher_page

    bodies = [item["articleBody"] for item in json.loads(GROUND_TRUTH.read_text()).values()]
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=1)
    pages = []
    for number in range(count):
        first, second = rng.sample(range(len(bodies)), 2)
        a = [p for p in bodies[first].split("\n") if p.strip()]
        b = [p for p in bodies[second].split("\n") if p.strip()]
        text = "\n".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
        title = f"Report {number}: " + " ".join(a[0].split()[:8])
        story = Story(f"a{number}", title, text, start + timedelta(seconds=number))
        path = f"/news/{story.slug}.html"
        pages.append((path, publisher_page("Bench Times", story, path)))
    return pages


def serve(count: int, ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Site process: the pages and a sitemap, until killed."""
    from crawler.demo.site import Site, SiteServer, sitemap

    site = Site("bench", "127.0.0.31")
    server = SiteServer([site]).start()
    pages = build_pages(count)
    for path, html in pages:
        site.page(path, html)
    site.page("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    site.page("/sitemap.xml", sitemap([site.url(path) for path, _ in pages]), "application/xml")
    ready.put(site.base)
    while True:
        time.sleep(3600)


def extraction_only(pages: list[tuple[str, str]], workers: int) -> tuple[float, float]:
    """(pages/s with `workers` processes, ms per page on one core) for extract_page alone."""
    from crawler.pipelines import extract_page
    from crawler.service import extraction_pool

    now = datetime.now(UTC).isoformat()
    args = [(f"http://127.0.0.31/{path}", html.encode(), None, "utf-8", now, "bench") for path, html in pages]
    started = time.perf_counter()
    for item in args[:50]:
        extract_page(*item)
    per_page_ms = (time.perf_counter() - started) / 50 * 1000
    pool = extraction_pool(workers)
    started = time.perf_counter()
    list(pool.map(extract_page, *zip(*args, strict=True), chunksize=1))
    rate = len(args) / (time.perf_counter() - started)
    pool.shutdown()
    return rate, per_page_ms


def _bench_crawl() -> CrawlSettings:
    """The crawl settings of both measured crawls: as fast as the local site allows."""
    from crawler.config import CrawlSettings

    return CrawlSettings(concurrency=64, concurrency_per_domain=32, delay=0.0, autothrottle=False,
                         max_articles=0, timeout=60.0)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _redis_cpu(client: object) -> float:
    info = client.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def end_to_end(base: str, count: int, workers: int, redis_url: str | None,
               site_pid: int) -> tuple[float, int, int, dict[str, float]]:
    """(pages/s, stream entries, decided, CPU ms per page by process) for one crawl of the sitemap by
    the service, until all are decided."""
    import redis

    from crawler.config import ServiceSettings, Settings, SourceSettings
    from crawler.redis_conn import connect
    from crawler.service import Service, configure_logging, extraction_pool, run_in_reactor
    from dedup.keys import Keys

    configure_logging("text", int(os.environ.get("BENCH_LOG", "30")))
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    data_dir = Path(f"/tmp/newsdedup-bench-{os.getpid()}")
    source = SourceSettings("bench", sitemaps=(base + "/sitemap.xml",), every=3600.0)
    settings = Settings(
        data_dir=data_dir, sources=(source,),
        crawl=_bench_crawl(),
        service=ServiceSettings(health_port=0, extract_workers=workers, shutdown_timeout=600.0),
    )
    from dataclasses import replace

    settings = replace(settings, redis=replace(settings.redis, url=redis_url, prefix=prefix))
    pool = extraction_pool(workers)
    client = connect(redis_url, data_dir)
    service = Service(settings, client, once=True, health=False, executor=pool)
    # The extraction workers' CPU is counted when they have exited and been waited for (the service
    # shuts its pool down when it stops): this process's other children are not reaped meanwhile.
    cpu_before = {"crawler": time.process_time(), "site": _cpu_seconds(site_pid), "redis": _redis_cpu(client),
                  "extraction": _children_cpu()}
    started = time.perf_counter()
    run_in_reactor(service.run)
    elapsed = time.perf_counter() - started
    pool.shutdown(wait=True)
    cpu_after = {"crawler": time.process_time(), "site": _cpu_seconds(site_pid), "redis": _redis_cpu(client),
                 "extraction": _children_cpu()}
    keys = Keys(prefix)
    entries = client.xlen(keys.canonical_stream)
    decided = len(service.decisions)
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    if isinstance(client, redis.Redis):
        client.close()
    cpu_ms = {name: round((cpu_after[name] - cpu_before[name]) / max(decided, 1) * 1000, 2) for name in cpu_after}
    return decided / elapsed, entries, decided, cpu_ms


def fetch_only(base: str, count: int) -> dict[str, float]:
    """Scrapy alone, as the service configures it, fetching every page and discarding it."""
    import scrapy
    from scrapy.crawler import AsyncCrawlerRunner
    from scrapy.utils.defer import deferred_from_coro
    from scrapy.utils.reactor import install_reactor

    from crawler.netguard import FEED_URL_META
    from crawler.settings import ASYNCIO_REACTOR, crawl_scrapy_settings

    install_reactor(ASYNCIO_REACTOR)
    from twisted.internet import reactor

    urls = [base + path for path, _ in build_pages(count)]

    class FetchOnly(scrapy.Spider):
        name = "fetch-only"
        fetched = 0

        async def start(self):  # type: ignore[override]
            for url in urls:
                yield scrapy.Request(url, callback=self.parse, meta={FEED_URL_META: base + "/sitemap.xml"})

        def parse(self, response: scrapy.http.Response) -> None:
            FetchOnly.fetched += len(response.body) > 0

    settings = crawl_scrapy_settings(_bench_crawl(), "newsdedup-bench")
    settings["ITEM_PIPELINES"] = {}
    runner = AsyncCrawlerRunner(settings)
    cpu, started = time.process_time(), time.perf_counter()
    done = deferred_from_coro(runner.crawl(FetchOnly))
    done.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    return {"pages_per_s": round(FetchOnly.fetched / elapsed, 1),
            "crawler_cpu_ms_per_page": round((time.process_time() - cpu) / max(FetchOnly.fetched, 1) * 1000, 2),
            "fetched": FetchOnly.fetched}


def _fetch_only_child(base: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(fetch_only(base, count))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=0, help="extraction processes (0: one per core)")
    parser.add_argument("--redis-url", default=None, help="Redis URL (default: the embedded Redis)")
    args = parser.parse_args()
    if not GROUND_TRUTH.exists():
        parser.error(f"needs the extraction benchmark's article bodies at {GROUND_TRUTH} "
                     "(../shared/data beside the repository; see its README for the source)")
    workers = args.workers or (os.cpu_count() or 1)
    ready: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
    site = multiprocessing.get_context("fork").Process(target=serve, args=(args.pages, ready), daemon=True)
    site.start()
    base = ready.get(timeout=300)
    try:
        sample = build_pages(min(args.pages, 600))
        extract_rate, per_page_ms = extraction_only(sample, workers)
        results: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
        child = multiprocessing.get_context("fork").Process(target=_fetch_only_child, args=(base, args.pages, results))
        child.start()
        fetched = results.get(timeout=600)
        child.join()
        crawl_rate, entries, decided, cpu_ms = end_to_end(base, args.pages, workers, args.redis_url, site.pid)
    finally:
        site.kill()
    share = crawl_rate / extract_rate
    # What the cores allow when every process shares them: extraction's CPU over all CPU per page.
    ceiling = cpu_ms["extraction"] / sum(cpu_ms.values())
    print(json.dumps({"pages": args.pages, "workers": workers, "cpus": os.cpu_count(),
                      "extraction_ms_per_page_one_core": round(per_page_ms, 1),
                      "extraction_only_pages_per_s": round(extract_rate, 1),
                      "end_to_end_pages_per_s": round(crawl_rate, 1), "decided": decided, "stream_entries": entries,
                      "end_to_end_cpu_ms_per_page": cpu_ms, "fetch_only": fetched,
                      "extraction_share_of_cpu": round(ceiling, 3),
                      "share_of_extraction_rate": round(share, 3), "target": 0.8}, indent=1))
    return 0 if share >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
