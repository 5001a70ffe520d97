"""What learning site boilerplate costs the engine: the same texts with and without it, alternating.

    python benchmarks/boilerplate_cost.py [--articles 2000] [--rounds 3] [--redis-url redis://127.0.0.1:6379/0]

Each round decides the throughput benchmark's texts (benchmarks/throughput.py: real sentences on
nine publishers and five aggregators) twice under fresh key prefixes, once with learning off
(EngineConfig.boilerplate_capacity=0) and once on, in alternating order so that a busy machine
slows both alike. Prints articles/s of each and their ratio; the prefixes' keys are deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import make_texts
from dedup.article import Article
from dedup.boilerplate import CAPACITY
from dedup.engine import Engine, EngineConfig
from dedup.keys import Keys


def run_once(client: redis.Redis, articles: list[Article], capacity: int) -> float:
    """Articles per second of one Engine.add_many pass under a fresh prefix (deleted after)."""
    prefix = f"newsdedup-bench-{uuid.uuid4().hex[:12]}:"
    engine = Engine(client, Keys(prefix), EngineConfig(boilerplate_capacity=capacity))
    engine.prepare_many(articles[:4])  # load datasketch and numpy outside the clock
    try:
        start = time.perf_counter()
        decided = sum(1 for _ in engine.add_many(articles))
        return decided / (time.perf_counter() - start)
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for first in range(0, len(keys), 500):
            client.delete(*keys[first : first + 500])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url)
    articles = [Article(url=url, title=title, text=text, source="bench")
                for url, title, text in make_texts(args.articles)]
    rates: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(args.rounds):
        order = (("off", 0), ("on", CAPACITY)) if round_ % 2 == 0 else (("on", CAPACITY), ("off", 0))
        for name, capacity in order:
            rates[name].append(run_once(client, articles, capacity))
    off, on = sum(rates["off"]) / args.rounds, sum(rates["on"]) / args.rounds
    print(json.dumps({"articles": len(articles), "rounds": args.rounds,
                      "articles_per_s_without": round(off, 1), "articles_per_s_with": round(on, 1),
                      "ratio": round(on / off, 3),
                      "each": {k: [round(v, 1) for v in values] for k, values in rates.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
