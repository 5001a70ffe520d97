"""Peak memory and speed of `newsdedup ingest` on a large input, and of a re-run over the same input.

Writes a JSON Lines file of pre-extracted articles (and optionally a WARC of HTML pages) built from
real sentences (extraction-benchmark ground truth, MIT): stories of about 300-700 words, 15% near
copies (a few words changed), 3% excerpts. Each checkout named runs `newsdedup ingest` on a private
redis-server (a free port, started and stopped here) while the peak RSS of the ingest process tree
(the process, its extraction workers and its fingerprinting child, psutil) is sampled, as RSS
summed over the processes and as PSS (shared pages divided among the processes sharing them: a
forked child's copy-on-write pages counted once); then the same command again over the
same file (every record is already decided). The files live in a temporary directory, deleted after.

    python benchmarks/ingest_memory.py --records 100000 --checkout . --checkout /work/main

Each --checkout is run with its own .venv (CHECKOUT/.venv/bin/python), alternately, in the same minutes.
On a machine too slow to decide a file of hundreds of MB in the time at hand, `--peak-within 120` runs
each checkout for two minutes only and reports the peak RSS reached (the read-ahead shows in seconds).
`--primaries 3` ingests into a local 3-primary Redis Cluster instead of one redis-server.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import _SENTENCE, FALLBACK, GROUND_TRUTH, start_redis
from tests.private_redis import start_redis_cluster, stop_redis_cluster

CLI = "import sys; from crawler.cli import main; sys.exit(main())"


def sentences() -> list[str]:
    source = GROUND_TRUTH if GROUND_TRUTH.exists() else FALLBACK
    bodies = [v["articleBody"] for v in json.loads(source.read_text()).values() if len(v["articleBody"]) > 400]
    return [s for body in bodies for s in _SENTENCE.split(body) if 6 <= len(s.split()) <= 60]


def stories(count: int, seed: int = 11) -> list[tuple[str, str, str]]:
    """(url, title, text): originals of 300-700 words, 15% near copies, 3% excerpts, shuffled.

    The sentence pool is small next to the stories drawn from it, so in each story half the words of
    every sentence are replaced by other words of the corpus: without it, unrelated stories share
    whole sentences and chain into one cluster of thousands."""
    pool = sentences()
    vocabulary = sorted({word for sentence in pool for word in sentence.split()})
    rng = random.Random(seed)
    out: list[tuple[str, str, str]] = []
    originals: list[str] = []
    for n in range(count):
        roll = rng.random()
        if originals and roll < 0.15:
            words = rng.choice(originals).split(" ")
            for _ in range(max(1, len(words) // 40)):  # a few words changed, as a rewriting aggregator does
                words[rng.randrange(len(words))] = rng.choice(("reported", "said", "noted", "today"))
            out.append((f"https://aggregator{n % 7}.example/p/{n}", f"Copy {n}", " ".join(words)))
        elif originals and roll < 0.18:
            paragraphs = rng.choice(originals).split("\n")
            out.append((f"https://digest{n % 3}.example/e/{n}", f"Excerpt {n}", "\n".join(paragraphs[:2])))
        else:
            target = rng.randint(300, 700)
            picked: list[str] = []
            while sum(len(s.split()) for s in picked) < target:
                words = [w if rng.random() < 0.5 else rng.choice(vocabulary) for w in rng.choice(pool).split()]
                picked.append(" ".join(words))
            text = "\n".join(" ".join(picked[i : i + 4]) for i in range(0, len(picked), 4))
            if len(originals) < 5000:
                originals.append(text)
            else:
                originals[rng.randrange(5000)] = text
            out.append((f"https://publisher{n % 11}.example/story/{n}", f"Story {n}", text))
    return out


def write_jsonl(path: Path, count: int) -> int:
    with path.open("w") as handle:
        for url, title, text in stories(count):
            handle.write(json.dumps({"url": url, "title": title, "text": text,
                                     "published": "2024-04-14T08:00:00Z"}) + "\n")
    return path.stat().st_size


def write_warc(path: Path, count: int) -> int:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for n, (url, title, text) in enumerate(stories(count, seed=12)):
            # As heavy as a real news page (tens of KB of menus, scripts and related links around
            # the article), so that extraction costs what it costs on a crawl.
            nav = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(120))
            script = "<script>var config = {" + ",".join(f'"k{i}": {n * i}' for i in range(1500)) + "};</script>"
            related = "".join(f'<li><a href="/story/{n + i}">Related story {n + i} headline</a></li>'
                              for i in range(80))
            body = ("<html><head><title>" + title + "</title>" + script + "</head><body><header><ul>" + nav
                    + "</ul></header><article><h1>" + title + "</h1>"
                    + "".join(f"<p>{p}</p>" for p in text.split("\n"))
                    + "</article><aside><ul>" + related + "</ul></aside><footer>Copyright</footer></body></html>"
                    ).encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=headers))
    return path.stat().st_size


def tree_memory(process: psutil.Process) -> tuple[int, int]:
    """(RSS, PSS) of a process and its descendants. RSS counts a page shared by several of them (a
    forked child's copy-on-write pages, libraries) in each; PSS divides it among them."""
    rss = pss = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


@contextmanager
def private_store(redis_dir: Path, primaries: int) -> Iterator[tuple[str, Callable[[], int]]]:
    """A private redis-server (primaries 0) or a local Redis Cluster of that many primaries: its URL,
    and a count of the keys it holds."""
    redis_dir.mkdir(exist_ok=True)
    if primaries:
        procs, ports = start_redis_cluster(redis_dir, primaries, node_timeout_ms=30_000)
        url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)
    else:
        server, port = start_redis(redis_dir)
        procs, ports, url = [server], [port], f"redis://127.0.0.1:{port}/0"
    try:
        yield url, lambda: sum(int(redis.Redis(port=port).dbsize()) for port in ports)
    finally:
        stop_redis_cluster(procs)
        shutil.rmtree(redis_dir, ignore_errors=True)


def run_ingest(checkout: Path, path: Path, url: str, workers: int,
               limit: float | None = None) -> tuple[float, int, int, str]:
    """(seconds, peak RSS and peak PSS of the process tree in bytes, last line of stderr); with `limit`, the process
    tree is killed after that many seconds (for the peak of read-ahead on an input too big to finish)."""
    python = checkout / ".venv" / "bin" / "python"
    command = [str(python), "-c", CLI, "ingest", str(path), "--redis-url", url,
               "--workers", str(workers), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=checkout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(proc.pid)
    peak = peak_pss = 0
    tail: list[bytes] = []
    reader = threading.Thread(target=lambda: tail.extend(proc.stderr.readlines()[-3:]), daemon=True)  # type: ignore[union-attr]
    reader.start()
    while proc.poll() is None:
        try:
            rss, pss = tree_memory(watched)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
        except psutil.Error:
            pass
        if limit is not None and time.perf_counter() - started > limit:
            for member in [*watched.children(recursive=True), watched]:
                member.kill()
            proc.wait()
            break
        time.sleep(0.1)
    reader.join()
    seconds = time.perf_counter() - started
    last = tail[-1].decode(errors="replace").strip() if tail else ""
    if limit is None and proc.returncode not in (0, 3):
        raise SystemExit(f"{checkout}: ingest exited {proc.returncode}: {b''.join(tail).decode(errors='replace')}")
    return seconds, peak, peak_pss, last


def measure(checkout: Path, path: Path, count: int, workers: int, workdir: Path, primaries: int) -> dict[str, object]:
    with private_store(workdir / f"redis-{checkout.name}-{path.suffix}", primaries) as (url, stored_keys):
        seconds, peak, peak_pss, summary = run_ingest(checkout, path, url, workers)
        rerun_seconds, rerun_peak, _, rerun_summary = run_ingest(checkout, path, url, workers)
        stored = stored_keys()
    return {"checkout": str(checkout), "input": path.name, "records": count, "primaries": primaries,
            "seconds": round(seconds, 1),
            "articles_per_s": round(count / seconds), "peak_rss_mb": round(peak / 2**20),
            "peak_pss_mb": round(peak_pss / 2**20), "rerun_seconds": round(rerun_seconds, 1), "rerun_peak_rss_mb": round(rerun_peak / 2**20),
            "redis_keys": stored, "summary": summary, "rerun_summary": rerun_summary}


def peak_within(checkout: Path, path: Path, workers: int, limit: float, workdir: Path,
                primaries: int) -> dict[str, object]:
    """Peak RSS of the ingest process tree in its first `limit` seconds, and how far it got."""
    with private_store(workdir / f"redis-{checkout.name}-peak", primaries) as (url, stored_keys):
        _, peak, peak_pss, _ = run_ingest(checkout, path, url, workers, limit)
        stored = stored_keys()
    return {"checkout": str(checkout), "input": path.name, "first_seconds": limit, "primaries": primaries,
            "peak_rss_mb": round(peak / 2**20), "peak_pss_mb": round(peak_pss / 2**20), "redis_keys": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="JSON Lines records (0: no JSON Lines)")
    parser.add_argument("--warc-records", type=int, default=0, help="WARC responses (0: no WARC)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--peak-within", type=float, default=0,
                        help="Only the peak RSS in the first SECONDS of each run, then stop it (0: full runs)")
    parser.add_argument("--primaries", type=int, default=0,
                        help="ingest into a local Redis Cluster of this many primaries (0: one redis-server)")
    parser.add_argument("--checkout", type=Path, action="append",
                        help="A checkout with its own .venv (repeatable; default: this one)")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]
    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-ingest-memory-"))
    try:
        inputs: list[tuple[Path, int]] = []
        if args.records:
            size = write_jsonl(workdir / "articles.jsonl", args.records)
            print(f"articles.jsonl: {args.records:,} records, {size / 1e6:,.0f} MB", flush=True)
            inputs.append((workdir / "articles.jsonl", args.records))
        if args.warc_records:
            size = write_warc(workdir / "pages.warc.gz", args.warc_records)
            print(f"pages.warc.gz: {args.warc_records:,} responses, {size / 1e6:,.0f} MB", flush=True)
            inputs.append((workdir / "pages.warc.gz", args.warc_records))
        for path, count in inputs:
            for checkout in checkouts:
                if args.peak_within:
                    print(json.dumps(peak_within(checkout, path, args.workers, args.peak_within, workdir, args.primaries)),
                          flush=True)
                else:
                    print(json.dumps(measure(checkout, path, count, args.workers, workdir, args.primaries)), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
