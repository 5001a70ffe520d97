"""Crawl throughput: pages/s from a sitemap into the canonical stream, next to extraction alone.

A local site (its own process) serves PAGES article pages built from the extraction benchmark's real
article bodies (../shared/data/extraction-benchmark) and one sitemap listing them. The script measures
1. extraction alone: the same pages through extract_page in a pool of WORKERS processes;
2. end to end: the crawler service (`newsdedup crawl`'s code path: Scrapy, the pool, the inbox,
   the decider, the engine) from the first request until every page is decided.
The target is end-to-end >= 80% of the extraction-only rate.

    python benchmarks/crawl_throughput.py [--pages 3000] [--workers 0] [--redis-url redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def end_to_end(base: str, count: int, workers: int, redis_url: str | None) -> tuple[float, int, int]:
    """(pages/s, stream entries) for one crawl of the sitemap by the service, until all are decided."""
    import redis

    from crawler.config import CrawlSettings, ServiceSettings, Settings, SourceSettings
    from crawler.redis_conn import connect
    from crawler.service import Service, configure_logging, extraction_pool, run_in_reactor
    from dedup.keys import Keys

    configure_logging("text", int(os.environ.get("BENCH_LOG", "30")))
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    data_dir = Path(f"/tmp/newsdedup-bench-{os.getpid()}")
    source = SourceSettings("bench", sitemaps=(base + "/sitemap.xml",), every=3600.0)
    settings = Settings(
        data_dir=data_dir, sources=(source,),
        crawl=CrawlSettings(concurrency=64, concurrency_per_domain=32, delay=0.0, autothrottle=False,
                            max_articles=0, timeout=60.0),
        service=ServiceSettings(health_port=0, extract_workers=workers, shutdown_timeout=600.0),
    )
    from dataclasses import replace

    settings = replace(settings, redis=replace(settings.redis, url=redis_url, prefix=prefix))
    pool = extraction_pool(workers)
    client = connect(redis_url, data_dir)
    service = Service(settings, client, once=True, health=False, executor=pool)
    started = time.perf_counter()
    run_in_reactor(service.run)
    elapsed = time.perf_counter() - started
    keys = Keys(prefix)
    entries = client.xlen(keys.canonical_stream)
    decided = len(service.decisions)
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    if isinstance(client, redis.Redis):
        client.close()
    return decided / elapsed, entries, decided


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=0, help="extraction processes (0: one per core)")
    parser.add_argument("--redis-url", default=None, help="Redis URL (default: the embedded Redis)")
    args = parser.parse_args()
    workers = args.workers or (os.cpu_count() or 1)
    ready: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
    site = multiprocessing.get_context("fork").Process(target=serve, args=(args.pages, ready), daemon=True)
    site.start()
    base = ready.get(timeout=300)
    try:
        sample = build_pages(min(args.pages, 600))
        extract_rate, per_page_ms = extraction_only(sample, workers)
        crawl_rate, entries, decided = end_to_end(base, args.pages, workers, args.redis_url)
    finally:
        site.kill()
    share = crawl_rate / extract_rate
    print(json.dumps({"pages": args.pages, "workers": workers, "cpus": os.cpu_count(),
                      "extraction_ms_per_page_one_core": round(per_page_ms, 1),
                      "extraction_only_pages_per_s": round(extract_rate, 1),
                      "end_to_end_pages_per_s": round(crawl_rate, 1), "decided": decided, "stream_entries": entries,
                      "share_of_extraction_rate": round(share, 3), "target": 0.8}, indent=1))
    return 0 if share >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
