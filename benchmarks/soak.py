"""Soak: the service against a news web that never stops publishing; memory sampled as it runs.

A local newsroom (tests/sites/newsroom.py) publishes RATE new stories a second on two publishers,
with a copy of every third on an aggregator; each feed lists the latest WINDOW stories. One
`newsdedup run` crawls it every EVERY seconds into a private redis-server this script starts (so
used_memory is ours alone), with a short retention. Every SAMPLE seconds the script prints Redis
used_memory, the number of stored articles, the stream and inbox lengths, and the resident memory
of the service and its extraction workers.

    python benchmarks/soak.py --minutes 5 [--rate 2] [--retention 2m] [--sample 15]

Reading the figures: the service's RSS should stop growing after the first minutes (no leak per
crawl or per article); Redis memory grows with the articles kept until the first ones expire
(retention works on one-minute buckets, and the engine expires at most once a minute), then
stays flat: with --retention 2m, from about the fourth minute on.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dedup.keys import Keys
from tests.private_redis import PrivateRedis
from tests.service_process import ServiceProcess, service_env
from tests.sites.newsroom import Newsroom

PREFIX = "soak:"


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def config_text(room: Newsroom, every: str, workers: int) -> str:
    return f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "10s"
retries = 1

[service]
health_port = 0
extract_workers = {workers}
""" + room.sources_toml(every=every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="How long to run (default 2).")
    parser.add_argument("--rate", type=float, default=2.0, help="New stories per second (default 2).")
    parser.add_argument("--window", type=int, default=200, help="Stories each feed lists (default 200).")
    parser.add_argument("--every", default="5s", help="Crawl schedule of each source (default 5s).")
    parser.add_argument("--retention", default="2m", help="NEWSDEDUP_DEDUP_RETENTION (default 2m).")
    parser.add_argument("--sample", type=float, default=15.0, help="Seconds between samples (default 15).")
    parser.add_argument("--workers", type=int, default=2, help="Extraction processes (default 2).")
    args = parser.parse_args()

    start = time.time()
    started = datetime.fromtimestamp(start, UTC)

    def listed(now: float) -> range:
        newest = int((now - start) * args.rate) + 1
        return range(max(0, newest - args.window), newest)

    room = Newsroom(listed=listed, published=lambda n: started + timedelta(seconds=n / args.rate),
                    first_host=71).start()
    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-soak-"))
    server = PrivateRedis(workdir / "redis").start()
    client = server.client()
    keys = Keys(PREFIX)
    config = workdir / "sources.toml"
    config.write_text(config_text(room, args.every, args.workers))
    env = service_env(server.url, PREFIX, NEWSDEDUP_DEDUP_RETENTION=args.retention,
                      NEWSDEDUP_DEDUP_STREAM_RETENTION=args.retention)
    service = ServiceProcess(["run", "--config", str(config)], env)
    samples: list[tuple[float, float, int, float, float]] = []
    try:
        service.health_port()
        workers = service.children()
        print(f"soak: {args.minutes:g} min, {args.rate:g} stories/s (+1/3 copies), feeds list {args.window}, "
              f"crawl every {args.every}, retention {args.retention}; Redis {server.url}", flush=True)
        print(f"{'t (s)':>6} {'published':>9} {'articles':>8} {'stream':>6} {'inbox':>5} "
              f"{'redis MB':>8} {'service MB':>10} {'workers MB':>10}", flush=True)
        deadline = start + args.minutes * 60
        while time.time() < deadline and service.alive():
            elapsed = time.time() - start
            articles = sum(1 for _ in client.scan_iter(match=PREFIX + "a:*", count=1000))
            used = int(client.info("memory")["used_memory"]) / 2**20
            service_mb = rss_mb(service.pid)
            workers_mb = sum(rss_mb(pid) for pid in workers)
            published = len(room.expected(range(listed(time.time()).stop)))
            samples.append((elapsed, used, articles, service_mb, workers_mb))
            print(f"{elapsed:6.0f} {published:9d} {articles:8d} {client.xlen(keys.canonical_stream):6d} "
                  f"{client.xlen(keys.inbox):5d} {used:8.1f} {service_mb:10.1f} {workers_mb:10.1f}", flush=True)
            time.sleep(max(0.0, min(args.sample, deadline - time.time())))
        peak = service.peak_rss_mb()
        code = service.terminate()
        print(f"service stopped with exit code {code}; its peak RSS {peak:.1f} MB", flush=True)
    finally:
        service.cleanup()
        server.stop(kill=True)
        room.stop()
    summarize(samples)
    if not service.alive() and service.proc.returncode not in (0, None):
        print(service.log[-3000:], file=sys.stderr)


def summarize(samples: list[tuple[float, float, int, float, float]]) -> None:
    """Growth after the first third of the run: RSS per minute, Redis bytes per stored article."""
    if len(samples) < 3:
        return
    steady = samples[len(samples) // 3 :]
    (t0, redis0, articles0, service0, workers0), (t1, redis1, articles1, service1, workers1) = steady[0], steady[-1]
    minutes = max((t1 - t0) / 60, 1e-9)
    per_article = (redis1 - redis0) * 2**20 / max(articles1 - articles0, 1)
    print(f"steady state ({t0:.0f}s to {t1:.0f}s): service RSS {service0:.1f} -> {service1:.1f} MB "
          f"({(service1 - service0) / minutes:+.2f} MB/min), workers {workers0:.1f} -> {workers1:.1f} MB "
          f"({(workers1 - workers0) / minutes:+.2f} MB/min); Redis {redis0:.1f} -> {redis1:.1f} MB for "
          f"{articles1 - articles0} more articles ({per_article / 1024:.1f} KiB per article)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
