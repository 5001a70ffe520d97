"""CPU of the deciding process per article: one Redis server against a local Redis Cluster.

The same articles (benchmarks/scale.py's: real sentences, 300-700 words, ~15% near copies, ~3%
excerpts) are decided twice in the same minutes, batch by batch in turn (which target goes first
alternates): once into a private redis-server, once into a private N-primary Redis Cluster
(tests.private_redis.start_redis_cluster, the client from crawler.redis_conn.connect as the service
makes it). Each batch is fingerprinted first (Engine.prepare_many, not measured), then decided by
Engine.decide (the lease, reads, decisions, journal and write set): only decide is measured, as
this process's CPU time (time.process_time) and wall time. The decider's value cache is on (the
default EngineConfig.cache_bytes). The decisions of both targets are compared article by article.

    python benchmarks/cluster_decide.py --articles 30000
    python benchmarks/cluster_decide.py --articles 5000 --profile /tmp/cluster.prof   # cProfile of the cluster's decide
    python benchmarks/cluster_decide.py --code /path/to/other/checkout   # another version's dedup package
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ROOT
if "--code" in sys.argv:  # decide with another checkout's dedup package (A/B)
    CODE = Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(CODE))

import redis  # noqa: E402

from benchmarks.scale import Articles, Nodes, engine_for, start_redis  # noqa: E402
from tests.private_redis import start_redis_cluster, stop_redis_cluster  # noqa: E402

sys.path.insert(0, str(CODE))  # ahead of ROOT again (benchmarks.scale put ROOT first)
import dedup  # noqa: E402

assert Path(dedup.__file__).resolve().is_relative_to(CODE), f"dedup from {dedup.__file__}, not {CODE}"


def _signature(decision) -> tuple:
    return (decision.article_id, decision.cluster, decision.canonical_id, decision.kind, decision.duplicate_of)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=30_000)
    parser.add_argument("--primaries", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="articles per Engine.decide (the engine's batch_size)")
    parser.add_argument("--profile", type=Path, help="cProfile the cluster's decide calls into this file")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose dedup package decides")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    from crawler.redis_conn import connect
    from dedup.decider import LeaseLost

    source = Articles()
    articles = list(source(args.articles))
    profiler = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "server").mkdir()
        proc, port = start_redis(Path(workdir) / "server")
        procs, ports = start_redis_cluster(Path(workdir) / "cluster", args.primaries, node_timeout_ms=30_000)
        try:
            targets = {
                "server": (engine_for(redis.Redis(port=port), 0), Nodes([redis.Redis(port=port)])),
                "cluster": (engine_for(connect("redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports), ""), 0),
                            Nodes([redis.Redis(port=p) for p in ports])),
            }
            cpu = dict.fromkeys(targets, 0.0)
            wall = dict.fromkeys(targets, 0.0)
            retries = dict.fromkeys(targets, 0)
            redis_cpu = {name: sum(nodes.cpu_seconds()) for name, (_, nodes) in targets.items()}
            decided: dict[str, list[tuple]] = {name: [] for name in targets}
            load = [os.getloadavg()[0]]
            for number, start in enumerate(range(0, len(articles), args.batch)):
                batch = articles[start : start + args.batch]
                order = list(targets) if number % 2 == 0 else list(reversed(targets))
                for name in order:
                    engine = targets[name][0]
                    prepared = engine.prepare_many(batch)
                    profiling = profiler is not None and name == "cluster"
                    began_cpu, began = time.process_time(), time.perf_counter()
                    if profiling:
                        profiler.enable()
                    while True:
                        try:
                            decisions = engine.decide(prepared)
                            break
                        except LeaseLost:  # a batch stalled past the lease's expiry (a loaded machine): not written
                            retries[name] += 1
                    if profiling:
                        profiler.disable()
                    cpu[name] += time.process_time() - began_cpu
                    wall[name] += time.perf_counter() - began
                    decided[name].extend(_signature(d) for d in decisions)
                if number % 100 == 99:
                    load.append(os.getloadavg()[0])
                    print(f"  {start + len(batch)} articles: " + ", ".join(
                        f"{name} {cpu[name] * 1000 / (start + len(batch)):.3f} ms CPU" for name in targets),
                        file=sys.stderr, flush=True)
            load.append(os.getloadavg()[0])
            count = len(articles)
            result = {
                "articles": count, "batch": args.batch, "primaries": args.primaries, "code": str(Path(dedup.__file__).parent),
                "mix": dict(source.counts), "value_cache_bytes": targets["server"][0].config.cache_bytes,
                "load_1min_seen": [round(x, 2) for x in load],
                "identical_decisions": decided["server"] == decided["cluster"],
            }
            for name, (_, nodes) in targets.items():
                result[name] = {
                    "decide_cpu_ms_per_article": round(cpu[name] * 1000 / count, 3),
                    "decide_wall_ms_per_article": round(wall[name] * 1000 / count, 3),
                    # Includes prepare_many's boilerplate round trip (not decide's alone).
                    "batches_decided_again_after_lease_lost": retries[name],
                    "redis_cpu_ms_per_article": round((sum(nodes.cpu_seconds()) - redis_cpu[name]) * 1000 / count, 3),
                }
            result["cluster_vs_server_cpu"] = round(result["cluster"]["decide_cpu_ms_per_article"] /
                                                    result["server"]["decide_cpu_ms_per_article"], 2)
        finally:
            proc.terminate()
            proc.wait(10)
            stop_redis_cluster(procs)
    if profiler is not None:
        profiler.dump_stats(str(args.profile))
        pstats.Stats(str(args.profile), stream=sys.stderr).sort_stats("tottime").print_stats(25)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
