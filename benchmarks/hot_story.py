"""What deciding one more copy of a hot story costs as its cluster grows (issue 10: constant cost).

One story is copied 600 times (each copy with 2-3% of its words changed) among 2,000 unrelated
articles, all decided one at a time by Engine.decide on a private Redis server. For every copy: the
wall time of the decision and the time Redis spent executing commands for it (INFO commandstats,
reset before each copy). Printed: medians around cluster sizes 5, 50 and 500, and their ratio.

    python benchmarks/hot_story.py
    python benchmarks/hot_story.py --copies 600 --unrelated 2000
    python benchmarks/hot_story.py --code /path/to/other/checkout   # the same run on another version
    python benchmarks/hot_story.py --engines 2   # two deciding processes taking turns (their own caches)
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
if "--code" in sys.argv:  # decide with another checkout's dedup package (A/B)
    ROOT = Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
sys.path.insert(0, str(ROOT))

from dedup.article import Article  # noqa: E402
from dedup.engine import Engine, EngineConfig  # noqa: E402
from dedup.keys import Keys  # noqa: E402

# The texts from this checkout's benchmark (the same for every --code), imported after dedup.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import make_texts, start_redis  # noqa: E402

WORDS = ("river", "council", "market", "winter", "station", "harbour", "report", "season", "budget", "signal")


def mutate(text: str, rng: random.Random) -> str:
    """The text with 2-3% of its words replaced."""
    words = text.split(" ")
    for index in rng.sample(range(len(words)), max(1, round(len(words) * rng.uniform(0.02, 0.03)))):
        words[index] = rng.choice(WORDS)
    return " ".join(words)


def redis_usec(client: redis.Redis) -> int:
    """Microseconds Redis spent executing commands since the last reset (INFO/CONFIG left out)."""
    stats = client.info("commandstats")
    return sum(int(v["usec"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=600)
    parser.add_argument("--unrelated", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true", help="print Redis time by command now and then")
    parser.add_argument("--code", help="a checkout whose dedup package decides (default: this one)")
    parser.add_argument("--engines", type=int, default=1,
                        help="engines (each with its own lease and cache, as separate processes have) taking "
                             "turns article by article")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the decisions around cluster sizes 5 and 500 and print where their time goes")
    parser.add_argument("--sort", default="tottime", help="--profile: pstats sort key (tottime, cumulative)")
    parser.add_argument("--top", type=int, default=14, help="--profile: functions printed")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    texts = [t for t in make_texts(args.unrelated * 2, seed=args.seed) if t[1].startswith("Story")]
    story = max(texts, key=lambda t: len(t[2]))
    unrelated = [Article(url=url, title=title, text=text) for url, title, text in texts if url != story[0]]
    unrelated = unrelated[: args.unrelated]
    copies = [Article(url=f"https://copy{i}.example/hot", title="Hot story", text=mutate(story[2], rng))
              for i in range(args.copies)]
    # A tenth of the unrelated articles first (warm-up), the original, then the copies spread evenly
    # among the rest.
    warm, rest = unrelated[: len(unrelated) // 10], unrelated[len(unrelated) // 10 :]
    order: list[tuple[bool, Article]] = [(False, a) for a in warm]
    order.append((True, Article(url=story[0], title=story[1], text=story[2])))
    step = max(1, len(rest) // max(1, len(copies)))
    for i, copy in enumerate(copies):
        order += [(False, a) for a in rest[i * step : (i + 1) * step]]
        order.append((True, copy))
    order += [(False, a) for a in rest[len(copies) * step :]]

    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-hot-"))
    proc, port = start_redis(workdir)
    try:
        client = redis.Redis(port=port)
        engines = [Engine(client, Keys("hot:"), EngineConfig(retention=10 * 365 * 86400.0))
                   for _ in range(args.engines)]
        engine = engines[0]
        now = time.time()
        rows = []  # (cluster size after the decision, wall ms, redis ms)
        cluster = None
        profiles = {5: cProfile.Profile(), 500: cProfile.Profile()} if args.profile else {}
        for index, (hot, article) in enumerate(order):
            engine = engines[index % len(engines)]
            prepared = engine.prepare_many([article], now=now + index)
            if not hot:
                engine.decide(prepared)
                continue
            client.config_resetstat()
            profile = next((p for size, p in profiles.items() if size - 3 <= len(rows) + 2 <= size + 10), None)
            if profile is not None:
                profile.enable()
            started = time.perf_counter()
            [decision] = engine.decide(prepared)
            wall = (time.perf_counter() - started) * 1000
            if profile is not None:
                profile.disable()
            busy = redis_usec(client) / 1000
            if args.breakdown and len(rows) % 100 == 0:
                stats = client.info("commandstats")
                print(len(rows), {k[8:]: (v["calls"], v["usec"]) for k, v in stats.items() if v["usec"] > 5})
            cluster = cluster or decision.cluster
            size = len(engine.cluster(decision.cluster)[2])
            rows.append((size, wall, busy, decision.cluster == cluster))
        engine = engines[0]
        joined = sum(1 for r in rows if r[3])
        canonical, reason, members = engine.cluster(cluster)
        original_id = engine.get_by_url(story[0]).id
        print(f"canonical {canonical} ({'the original' if canonical == original_id else 'not the original ' + original_id}), "
              f"reason {reason}, cluster {cluster}")

        def around(size: int, width: int) -> tuple[float, float]:
            picked = [r for r in rows if size - width <= r[0] <= size + width]
            return statistics.median(r[1] for r in picked), statistics.median(r[2] for r in picked)

        print(f"dedup from {Path(sys.modules[Engine.__module__].__file__).parent}")
        print(f"{len(copies)} copies of one story among {len(unrelated)} unrelated articles; "
              f"{joined} joined the story's cluster ({len(members)} members)")
        for number, e in enumerate(engines):
            cache = getattr(getattr(e, "decider", None), "cache", None)
            if cache is not None and hasattr(cache, "hits"):
                print(f"engine {number}: decider cache {cache.hits} hits, {cache.misses} misses, "
                      f"{getattr(cache, 'invalidations', 0)} partial and {getattr(cache, 'resets', 0)} whole drops")
        print(f"{'cluster size':>14}{'wall ms':>10}{'Redis ms':>10}  (medians)")
        figures = {}
        for size, width in ((5, 2), (50, 5), (100, 10), (300, 10), (500, 10)):
            wall, busy = around(size, width)
            figures[size] = (wall, busy)
            print(f"{size:>14}{wall:>10.2f}{busy:>10.3f}")
        print(f"500th vs 5th: wall {figures[500][0] / figures[5][0]:.2f}x, Redis {figures[500][1] / figures[5][1]:.2f}x")
        print(json.dumps({str(k): {"wall_ms": v[0], "redis_ms": v[1]} for k, v in figures.items()}))
        for size, profile in profiles.items():
            print(f"--- decisions around cluster size {size} (14 of them), by {args.sort}")
            pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
