"""How long the dashboard's pages take on a store of N articles (each page's reads are bounded).

Fills a private key prefix on a Redis with N synthetic articles (random prose from the test texts'
vocabulary, a quarter of them republished copies), starts `newsdedup web` on it, and times each
page (median of several requests), then deletes the prefix.

    python benchmarks/dashboard.py --articles 20000 --redis-url redis://127.0.0.1:6379/15

The figure to look at is how the times change with N: the overview and the story do not read
articles in proportion to N, and the duplicates list reads at most 3,000 per request.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dedup.article import Article  # noqa: E402
from dedup.engine import Engine  # noqa: E402
from dedup.keys import Keys  # noqa: E402

TEXTS = ROOT / "tests" / "data" / "texts" / "articles.json"


def synthetic(count: int, seed: int = 5) -> list[Article]:
    """Distinct stories of random prose, a quarter of them followed by a copy on another site."""
    rng = random.Random(seed)
    words = re.findall(r"[A-Za-z']+", " ".join(entry["articleBody"] for entry in json.loads(TEXTS.read_text()).values()))
    articles: list[Article] = []
    while len(articles) < count:
        n = len(articles)
        paragraphs = ["".join([" ".join(rng.choices(words, k=rng.randint(12, 25))).capitalize(), ". "] * 3)
                      for _ in range(5)]
        text = "\n\n".join(paragraphs)
        articles.append(Article(url=f"https://site{n % 50}.example/story/{n}", text=text,
                                title=f"Story {n}", source=f"source{n % 7}"))
        if n % 4 == 0:
            articles.append(Article(url=f"https://copies{n % 13}.example/{n}", text=text + "\n\nSource: Read Full Article",
                                    title=f"Story {n} (copy)", source="farm"))
    return articles[:count]


def timed(url: str, repeat: int) -> float:
    """Median seconds of `repeat` GETs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    prefix = f"newsdedup-bench-web-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(args.redis_url)
    try:
        start = time.perf_counter()
        engine = Engine(client, Keys(prefix))
        decisions = list(engine.add_many(synthetic(args.articles)))
        print(f"{len(decisions)} articles decided in {time.perf_counter() - start:.0f}s", flush=True)
        copy_id = next(d.article_id for d in decisions if d.kind in ("exact", "near", "excerpt"))
        proc = subprocess.Popen([sys.executable, "-c", "from crawler.entry import main; main()", "web", "--port", "0",
                                 "--redis-url", args.redis_url, "--key-prefix", prefix],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            base = re.search(r"(http://\S+/)", proc.stdout.readline()).group(1)  # type: ignore[union-attr]
            for path in ("", "?range=7d", "duplicates", "duplicates?kind=excerpt&limit=200",
                         "duplicates?source=nowhere", f"story/{copy_id}", "overrides"):
                print(f"  /{path:<36} {timed(base + path, args.repeat) * 1000:7.1f} ms", flush=True)
        finally:
            proc.terminate()
            proc.wait(15)
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=5000))
        for index in range(0, len(keys), 1000):
            client.delete(*keys[index : index + 1000])


if __name__ == "__main__":
    main()
