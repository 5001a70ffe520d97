"""Decision digest: the decisions on a fixed set of articles, as one hash, to compare runs, batchings or servers.

The articles are those of crawl_throughput.py --small N as texts (halves of two real article bodies, one
site, no publication date), decided in order in batches on a fresh key prefix, which is deleted after.
Without a publication date the canonical of a cluster falls to the first arrival, which is stamped in
whole seconds: a copy decided in the same second as its original ties with it, and the member decided
first (listed first in the cluster) wins. Clusters that merge list the bridged cluster's members after
the joined one's, so a same-second tie across a merge can still go either way: runs on the wall clock
can differ where arrivals fall on either side of a second; --save-arrivals records
each article's arrival and --arrivals replays them, which must give the same digest every time (any
batch size, any server: standalone or cluster).

    python benchmarks/decision_digest.py [--count 3000] [--batch 64] [--save-arrivals FILE | --arrivals FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawl_throughput import small_texts  # noqa: E402  (beside this script)
from crawler.redis_conn import connect  # noqa: E402
from dedup.article import Article  # noqa: E402
from dedup.engine import Engine, EngineConfig  # noqa: E402
from dedup.index import IndexParams  # noqa: E402
from dedup.keys import Keys  # noqa: E402

SHARED_DATA = Path(os.environ.get("NEWSDEDUP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def small_articles(count: int, ground_truth: Path) -> list[Article]:
    """The texts of crawl_throughput.small_pages, as articles of one site."""
    return [Article(url=f"http://127.0.0.41/news/a{number}.html", text=text, title=title,
                    site="127.0.0.41", source="bench0")
            for number, (title, text) in enumerate(small_texts(count, ground_truth))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="redis+cluster://... for a cluster")
    parser.add_argument("--save-arrivals", metavar="FILE", help="write each article's arrival (wall clock) here")
    parser.add_argument("--arrivals", metavar="FILE", help="decide with the arrivals a --save-arrivals run wrote")
    args = parser.parse_args()
    articles = small_articles(args.count, SHARED_DATA / "extraction-benchmark" / "ground-truth.json")
    arrivals = json.loads(Path(args.arrivals).read_text()) if args.arrivals else None
    client = connect(args.redis_url, "")
    keys = Keys(f"decision-digest-{uuid.uuid4().hex[:8]}:")
    engine = Engine(client, keys, EngineConfig(params=IndexParams.for_size(1_000_000)))
    decisions = []
    try:
        for start in range(0, len(articles), args.batch):
            batch = engine.fingerprint_many(articles[start : start + args.batch])
            if arrivals is None:
                prepared = engine.prepare_many(list(batch))
            else:  # each article stamped with its own recorded arrival, as prepare_many stamps each one
                prepared = [engine.prepare_many([item], arrivals[start + offset])[0]
                            for offset, item in enumerate(batch)]
            decisions += engine.decide(prepared)
        if args.save_arrivals:
            records = engine.get_many([d.article_id for d in decisions])
            Path(args.save_arrivals).write_text(json.dumps([r.arrived for r in records]))
    finally:
        for key in client.scan_iter(match=keys.prefix + "*", count=1000):
            client.delete(key)
    digest = hashlib.sha256("".join(f"{d.url} {d.kind} {d.cluster} {d.canonical_id} {d.duplicate_of}\n"
                                    for d in decisions).encode()).hexdigest()[:16]
    print(json.dumps({"digest": digest, "kinds": dict(Counter(d.kind or "canonical" for d in decisions)),
                      "arrivals": "replayed" if arrivals else "wall clock", "batch": args.batch}))


if __name__ == "__main__":
    main()
