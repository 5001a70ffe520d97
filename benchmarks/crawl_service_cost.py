"""The crawling service's own CPU per page on real pages, without the cost of extraction.

The same crawl as benchmarks/crawl_throughput.py (the extraction benchmark's 181 pages, gzip, from COPIES
loopback hosts, politeness off), run by the real `Service` in this process (Scrapy, the SSRF guard, robots.txt,
the pipeline's hand-off to the process pool, the inbox, the decider), except that the extraction workers return
each page's article from a cache (each page extracted once, beforehand, into CACHE) after decompressing the body
as they would. What is left in the service process is what issue 13 asks to cut; a run takes a minute instead of
several, and the figures do not depend on extraction sharing the cores.

    NEWSDEDUP_SHARED_DATA=../shared/data python benchmarks/crawl_service_cost.py [--copies 8] [--profile FILE]

Prints CPU ms per page: the whole service process, its main thread (the event loop: Scrapy and the pipeline),
its other threads (the decider, Redis calls, the process pool's feeder and manager), and the workers (here only
decompression and unpickling). --profile writes cProfile stats of the main thread (thread CPU clock). Uses the
Redis at --redis-url under a private key prefix, deleted afterwards. Not a test: the extraction is replaced.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import pickle
import resource
import sys
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import crawl_throughput as bench  # noqa: E402

CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "newsdedup-crawl-service-cost-articles.pickle"
_cache: dict[str, Any] | None = None


def cached_extract_page(url: str, body: bytes, final_url: str | None, encoding: str | None, fetched_at: str,
                        source: str, entry_title: str = "", entry_published: str = "", fingerprint: Any = None,
                        content_encoding: str = "", max_size: int = 0) -> Any:
    """Worker: crawler.pipelines.extract_page's signature, the page's article from the cache."""
    from crawler.compression import decompress_body

    global _cache
    if _cache is None:
        _cache = pickle.loads(CACHE.read_bytes())  # our own file, written by build_cache
    if content_encoding:
        body = decompress_body(body, content_encoding, max_size)
    article = _cache["/" + url.split("/", 3)[3]]
    if article is None:
        return None
    return replace(article, url=url, site=urlsplit(final_url or url).hostname, source=source,
                   final_url=final_url if final_url != url else None,
                   fetched_at=datetime.fromisoformat(fetched_at) if fetched_at else None)


def build_cache(pages: list[bench.Page]) -> None:
    from crawler.extract import extract_article

    CACHE.write_bytes(pickle.dumps({path: extract_article(body, f"http://127.0.0.{bench.FIRST_HOST}{path}")
                                    for path, body, _ in pages}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8, help="hosts, each serving every page once")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--profile", default=None, metavar="FILE", help="cProfile stats of the main thread")
    parser.add_argument("--data", type=Path, default=bench.SHARED_DATA, help="the shared data folder")
    args = parser.parse_args()
    pages = bench.real_pages(args.data / "extraction-benchmark" / "html")
    if not pages:
        parser.error(f"no pages under {args.data / 'extraction-benchmark' / 'html'} (set NEWSDEDUP_SHARED_DATA)")
    if not CACHE.exists():
        build_cache(pages)
    import crawler.pipelines

    crawler.pipelines.extract_page = cached_extract_page  # type: ignore[assignment] # before the pool forks
    context = multiprocessing.get_context("fork")
    fetched, ready = context.Value("q", 0), context.Queue()
    site = context.Process(target=bench.serve, args=([pages] * args.copies, bench.compressed(pages), fetched, ready),
                           daemon=True)
    site.start()
    bases = ready.get(timeout=300)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"newsdedup-service-cost-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    prefix = f"bench-cost-{uuid.uuid4().hex[:8]}:"
    from crawler.config import load_settings
    from crawler.logs import configure_logging
    from crawler.redis_conn import connect
    from crawler.service import Service, extraction_pool, run_in_reactor

    settings = load_settings(bench._write_config(workdir, bases, args.redis_url, prefix, 2))
    configure_logging("text", logging.WARNING)
    pool = extraction_pool(2)
    client = connect(args.redis_url, settings.data_dir, check=False, exclusive=False)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.thread_time)
    cpu = lambda usage: usage.ru_utime + usage.ru_stime  # noqa: E731
    own, main_thread = cpu(resource.getrusage(resource.RUSAGE_SELF)), time.thread_time()
    children = cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    try:
        code = run_in_reactor(lambda: Service(settings, client, executor=pool, health=False, once=True).run())
    finally:
        if profile is not None:
            profile.disable()
        elapsed = time.perf_counter() - started
        own, main_thread = cpu(resource.getrusage(resource.RUSAGE_SELF)) - own, time.thread_time() - main_thread
        pool.shutdown(wait=True)  # the service shut it down already; the workers' CPU counts once they are waited for
        workers = cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - children
        site.kill()
    count = len(pages) * args.copies
    stats = {key.decode(): int(value) for key, value in client.hgetall(prefix + "stats").items()}
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    if profile is not None:
        profile.dump_stats(args.profile)
    per_page = lambda seconds: round(seconds / count * 1000, 3)  # noqa: E731
    print(json.dumps({
        "pages": count, "exit_code": code, "wall_s": round(elapsed, 1), "load_average": os.getloadavg(),
        "cpu_ms_per_page": {"service": per_page(own), "main_thread": per_page(main_thread),
                            "other_threads": per_page(own - main_thread), "workers": per_page(workers)},
        "decisions": stats,
    }, indent=1))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
