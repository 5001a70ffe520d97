"""Redis memory per article by key family, and decision throughput, at index sizes that matter.

Synthetic articles built from real sentences (the extraction benchmark's article bodies, the source
benchmarks/throughput.py uses): 300-700 words in paragraphs of 2-4 sentences, about 15% near copies
(2-3% of words changed, sometimes a paragraph dropped, on another site), about 3% excerpts (the
opening paragraphs of a recent story), titles and URLs like a news site's. They go through
dedup.engine.Engine.add_many into a private redis-server this script starts on a free port, with
Redis's default listpack limits (as deploy/redis.conf).

    python benchmarks/scale.py --articles 100000
    python benchmarks/scale.py --articles 1000000 --expected 1000000   # also reports at 100k and 300k
    python benchmarks/scale.py --hot
    python benchmarks/scale.py --articles 100000 --primaries 3   # a local 3-primary Redis Cluster

Memory: every key is counted by family (SCAN), MEMORY USAGE is taken on a sample of keys per family
and scaled by the family's key count; INFO used_memory before and after is reported beside it. The
canonical stream is reported apart: what it costs per queued canonical, and the cap its MAXLEN sets.

--primaries N: the same articles through the same path into a Redis Cluster of N primaries started
from the redis-server binary on loopback ports (tests.private_redis.start_redis_cluster, as the
cluster tests start theirs; cluster mode adds a little per key, so compare 1 with 3 primaries, not
with a server), the client made as the service makes it (crawler.redis_conn.connect). Per node:
used_memory, keys, Redis CPU (INFO cpu used_cpu_sys + used_cpu_user, the run's delta); the families
summed over the nodes.

--hot: one story copied 600 times (2-3% of words changed each time) among 2,000 unrelated
articles, decided one at a time; the decisions' Redis time (every command's, INFO commandstats) and the wall
time per copy, at cluster sizes around 5, 50 and 500.

--tree PATH runs another checkout's dedup package (for example /work/main, for a before/after).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.private_redis import (  # noqa: E402
    free_port, redis_server_binary, start_redis_cluster, stop_redis_cluster,
)
GROUND_TRUTH = ROOT.parent / "shared" / "data" / "extraction-benchmark" / "ground-truth.json"
if not GROUND_TRUTH.exists():
    GROUND_TRUTH = Path("/work/shared/data/extraction-benchmark/ground-truth.json")
FALLBACK = ROOT / "tests" / "data" / "extraction" / "ground-truth.json"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
PREFIX = "scale:"
FAMILIES = {
    "a": "records a:*", "c": "clusters c:*", "b": "band shards b:*", "t": "time buckets t:*",
    "dh": "hourly dh:*", "bp": "boilerplate bp:*",
}


def sentences() -> list[str]:
    source = GROUND_TRUTH if GROUND_TRUTH.exists() else FALLBACK
    bodies = [v["articleBody"] for v in json.loads(source.read_text()).values()]
    return [s.strip() for body in bodies for s in _SENTENCE.split(body) if 6 <= len(s.split()) <= 60]


def _slug(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())[:9])


class Articles:
    """A stream of synthetic articles: originals, near copies and excerpts of recent originals."""

    def __init__(self, seed: int = 11, sites: int = 3000) -> None:
        self.rng = random.Random(seed)
        self.sentences = sentences()
        self.words = sorted({w for s in self.sentences for w in s.split() if w.isalpha() and len(w) > 3})
        self.sites = [f"{self.rng.choice(['daily', 'news', 'times', 'post', 'herald', 'wire'])}{i}."
                      f"{self.rng.choice(['com', 'co.uk', 'net', 'org', 'de'])}" for i in range(sites)]
        self.recent: list[tuple[str, str]] = []
        self.start = datetime.now(UTC) - timedelta(days=30)
        self.counts: Counter[str] = Counter()

    def story(self) -> str:
        target = self.rng.randint(300, 700)
        paragraphs, words = [], 0
        while words < target:
            picked = [self.rng.choice(self.sentences) for _ in range(self.rng.randint(2, 4))]
            paragraphs.append(" ".join(picked))
            words += sum(len(s.split()) for s in picked)
        return "\n".join(paragraphs)

    def changed(self, text: str, share: float) -> str:
        paragraphs = text.split("\n")
        if len(paragraphs) > 4 and self.rng.random() < 0.3:
            paragraphs.pop(self.rng.randrange(1, len(paragraphs)))
        words = "\n".join(paragraphs).split(" ")
        for _ in range(max(1, round(len(words) * share))):
            at = self.rng.randrange(len(words))
            words[at] = self.rng.choice(self.words) + ("\n" if words[at].endswith("\n") else "")
        return " ".join(words)

    def article(self, index: int, kind: str | None = None):
        from dedup.article import Article

        rng = self.rng
        when = self.start + timedelta(seconds=index * 2)
        site = rng.choice(self.sites)
        roll = rng.random() if kind is None else {"original": 0.5, "copy": 0.0, "excerpt": 0.16}[kind]
        if roll < 0.15 and self.recent:
            title, text = rng.choice(self.recent)
            text, kind = self.changed(text, rng.uniform(0.02, 0.03)), "copy"
        elif roll < 0.18 and self.recent:
            title, text = rng.choice(self.recent)
            paragraphs = text.split("\n")
            text, kind = "\n".join(paragraphs[: max(2, len(paragraphs) // 3)]), "excerpt"
        else:
            text, kind = self.story(), "original"
            title = " ".join(text.split(" ")[: rng.randint(6, 12)]).rstrip(".,;:")
            self.recent.append((title, text))
            if len(self.recent) > 5000:
                self.recent.pop(rng.randrange(len(self.recent)))
        self.counts[kind] += 1
        url = f"https://www.{site}/{when:%Y/%m/%d}/{_slug(title)}-{index}"
        return Article(url=url, title=title, text=text, source=site.split(".")[0], published=when)

    def __call__(self, count: int, first: int = 0) -> Iterator:
        for index in range(first, first + count):
            yield self.article(index)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def family(key: bytes) -> str:
    name = key.decode("utf-8", "replace")[len(PREFIX):]
    head = name.split(":", 1)[0]
    if ":" in name and head in FAMILIES:
        return FAMILIES[head]
    if name in ("canonical",):
        return "stream canonical"
    if name in ("pending", "stats", "params", "hours", "reindex"):
        return "stats/params/pending/hours"
    return "others"


class Nodes:
    """The Redis processes measured, each through a plain client: one server, or every primary of a cluster."""

    def __init__(self, clients: list[redis.Redis]) -> None:
        self.clients = clients

    def info(self, field: str, section: str) -> list[float]:
        return [float(node.info(section)[field]) for node in self.clients]

    def used_memory(self) -> list[int]:
        return [int(value) for value in self.info("used_memory", "memory")]

    def cpu_seconds(self) -> list[float]:
        """Each server's CPU so far, system and user."""
        return [float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
                for cpu in (node.info("cpu") for node in self.clients)]

    def reset_stats(self) -> None:
        for node in self.clients:
            node.config_resetstat()

    def keys(self) -> list[tuple[int, bytes]]:
        """(node index, key) of every key under the prefix."""
        return [(index, key) for index, node in enumerate(self.clients)
                for key in node.scan_iter(match=PREFIX + "*", count=5000)]

    def each(self, pairs: list[tuple[int, bytes]], command: str, *args: object) -> list:
        """`command key *args` for each (node, key) (command may be two words: "MEMORY USAGE"), one
        pipeline per node at a time, the replies in the order of pairs."""
        replies: list = [None] * len(pairs)
        for index, node in enumerate(self.clients):
            mine = [at for at, (owner, _) in enumerate(pairs) if owner == index]
            for start in range(0, len(mine), 5000):
                pipe = node.pipeline(transaction=False)
                for at in mine[start : start + 5000]:
                    pipe.execute_command(command, pairs[at][1], *args)
                for at, reply in zip(mine[start : start + 5000], pipe.execute(), strict=True):
                    replies[at] = reply
        return replies


def memory_by_family(nodes: Nodes, sample: int, seed: int = 5) -> dict[str, dict[str, float]]:
    keys_by: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for pair in nodes.keys():
        keys_by[family(pair[1])].append(pair)
    rng = random.Random(seed)
    out: dict[str, dict[str, float]] = {}
    for name, keys in keys_by.items():
        picked = keys if len(keys) <= sample else rng.sample(keys, sample)
        sizes = [int(size or 0) for size in nodes.each(picked, "MEMORY USAGE", "SAMPLES", 0)]
        out[name] = {"keys": len(keys), "sampled": len(picked),
                     "bytes": sum(sizes) / max(1, len(picked)) * len(keys)}
    return out


def shard_encodings(nodes: Nodes) -> Counter[str]:
    shards = [(index, key) for index, key in nodes.keys() if family(key) == FAMILIES["b"]]
    return Counter(e.decode() if isinstance(e, bytes) else str(e) for e in nodes.each(shards, "OBJECT ENCODING"))


def engine_for(client: redis.Redis, expected: int):
    from dedup.engine import Engine, EngineConfig
    from dedup.index import IndexParams
    from dedup.keys import Keys

    params = IndexParams()
    if expected and hasattr(IndexParams, "for_size"):
        params = IndexParams.for_size(expected)
    return Engine(client, Keys(PREFIX), EngineConfig(params=params, retention=10 * 365 * 86400.0))


class Meter:
    """What a run has cost so far: wall time, and each node's used_memory and CPU since the start,
    less what measuring in between cost."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self.memory = nodes.used_memory()
        self.cpu = nodes.cpu_seconds()
        self.start = time.perf_counter()
        self._paused: tuple[float, list[float]] | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def pause(self) -> None:
        self._paused = (time.perf_counter(), self.nodes.cpu_seconds())

    def resume(self) -> None:
        """The time and Redis CPU since pause() (a measurement) do not count as ingest."""
        assert self._paused is not None
        at, cpu = self._paused
        self.start += time.perf_counter() - at
        self.cpu = [base + now - then for base, now, then in zip(self.cpu, self.nodes.cpu_seconds(), cpu, strict=True)]
        self._paused = None


def measure(client, nodes: Nodes, engine, sample: int, meter: Meter | None, count: int, source: Articles) -> dict:
    """The report at `count` articles; with no meter (a run in progress elsewhere), all of used_memory."""
    elapsed = meter.elapsed() if meter else 1.0
    cpu = [now - then for now, then in zip(nodes.cpu_seconds(), meter.cpu, strict=True)] if meter else []
    memory = nodes.used_memory()
    grown = [after - before for after, before in zip(memory, meter.memory, strict=True)] if meter else memory
    families = memory_by_family(nodes, sample)
    stream = families.pop("stream canonical", {"keys": 0, "bytes": 0})
    queued = client.xlen(engine.keys.canonical_stream)
    kept = sum(v for k, v in engine.stats().items() if k not in ("clusters", "articles"))
    index_bytes = sum(v["bytes"] for v in families.values())
    per_node = []
    for at, node in enumerate(nodes.clients):
        row = {"port": node.connection_pool.connection_kwargs["port"], "used_memory": memory[at],
               "used_memory_delta": grown[at], "keys": int(node.dbsize())}
        if meter:
            row.update(redis_cpu_s=round(cpu[at], 2), redis_cpu_ms_per_article=round(cpu[at] * 1000 / count, 3))
        per_node.append(row)
    return {
        "articles": count, "kept": kept, "mix": dict(source.counts),
        "shards": engine.config.params.shards, "primaries": len(nodes.clients),
        "seconds": round(elapsed, 1), "articles_per_s": round(count / elapsed),
        "redis_cpu_ms_per_article": round(sum(cpu) * 1000 / count, 3) if meter else None,
        "used_memory_delta": sum(grown),
        "used_memory_per_article": round(sum(grown) / kept),
        "nodes": per_node,
        "families": {name: {"keys": v["keys"], "sampled": v["sampled"],
                            "bytes_per_article": round(v["bytes"] / kept, 1)}
                     for name, v in sorted(families.items(), key=lambda item: -item[1]["bytes"])},
        "index_bytes_per_article": round(index_bytes / kept, 1),
        "stream": {"entries": queued, "bytes": int(stream["bytes"]),
                   "bytes_per_queued_canonical": round(stream["bytes"] / max(1, queued), 1),
                   "maxlen": engine.config.stream_maxlen,
                   "cap_bytes_at_maxlen": round(stream["bytes"] / max(1, queued) * engine.config.stream_maxlen)},
        "shard_encodings": dict(shard_encodings(nodes)),
        "stats": engine.stats(),
    }


def _process_cpu() -> float:
    """CPU of this process and its finished children (the fingerprinting child of add_many)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_scale(client, nodes: Nodes, count: int, sample: int, expected: int, report_at: list[int]) -> dict:
    """Ingest `count` articles; the full per-family report at each of report_at and at the end."""
    engine = engine_for(client, expected)
    nodes.reset_stats()
    source = Articles()
    process_cpu = _process_cpu()
    meter = Meter(nodes)
    marks, checkpoints = [], []
    decided = 0
    for _ in engine.add_many(source(count)):
        decided += 1
        if decided % 50000 == 0:
            marks.append((decided, round(meter.elapsed(), 1), sum(nodes.used_memory())))
            print(f"  {decided} articles, {marks[-1][1]} s, used_memory {marks[-1][2] / 2**20:.0f} MiB",
                  file=sys.stderr, flush=True)
        if decided in report_at and decided < count:
            meter.pause()
            checkpoints.append(measure(client, nodes, engine, sample, meter, decided, source))
            print(json.dumps(checkpoints[-1]), file=sys.stderr, flush=True)
            meter.resume()
    process_cpu = _process_cpu() - process_cpu
    result = measure(client, nodes, engine, sample, meter, count, source)
    result["client_cpu_ms_per_article"] = round(process_cpu * 1000 / count, 3)
    result["progress"] = marks
    result["checkpoints"] = checkpoints
    return result


def _evalsha_usec(nodes: Nodes) -> int:
    """Redis time spent on commands so far, on every node: every command's (the decision is pipelined
    single-key commands and a few scripts since it moved to Python; one Lua script per decision before)."""
    return sum(int(v["usec"]) for node in nodes.clients for k, v in node.info("commandstats").items()
               if k.startswith("cmdstat_") and k != "cmdstat_info")


def run_hot(client, nodes: Nodes, copies: int = 600, others: int = 2000, expected: int = 0) -> dict:
    engine = engine_for(client, expected)
    source = Articles(seed=23)
    story = source.article(0, "original")
    engine.add(story)
    rng = random.Random(3)
    schedule = ["copy"] * copies + ["other"] * others
    rng.shuffle(schedule)
    redis_us: list[float] = []
    wall_ms: list[float] = []
    index = 1
    from dedup.article import Article

    for what in schedule:
        index += 1
        if what == "other":
            engine.add(source.article(index, "original"))
            continue
        text = source.changed(story.text, rng.uniform(0.02, 0.03))
        article = Article(url=f"https://www.copy{index}.example/2026/11/01/hot-story-{index}",
                          title=story.title, text=text, source=f"copy{index}", published=story.published)
        prepared = engine.prepare(article)
        before = _evalsha_usec(nodes)
        start = time.perf_counter()
        engine.decide([prepared])
        wall_ms.append((time.perf_counter() - start) * 1000)
        redis_us.append(_evalsha_usec(nodes) - before)
    canonical, _, members = engine.cluster(story_id := engine.get_by_url(story.url).cluster)
    windows = {5: (1, 10), 50: (45, 55), 500: (495, 505)}
    out = {"copies": copies, "others": others, "cluster": story_id, "members": len(members)}
    for size, (lo, hi) in windows.items():
        out[f"size_{size}"] = {
            "redis_ms_median": round(statistics.median(redis_us[lo - 1 : hi]) / 1000, 3),
            "wall_ms_median": round(statistics.median(wall_ms[lo - 1 : hi]), 3),
        }
    out["ratio_500_vs_5_redis"] = round(out["size_500"]["redis_ms_median"] / out["size_5"]["redis_ms_median"], 2)
    out["ratio_500_vs_5_wall"] = round(out["size_500"]["wall_ms_median"] / out["size_5"]["wall_ms_median"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2000, help="keys per family given to MEMORY USAGE")
    parser.add_argument("--expected", type=int, default=0,
                        help="size the index for this many articles (IndexParams.for_size), 0: defaults")
    parser.add_argument("--report-at", default="100000,300000",
                        help="also report every family at these counts on the way (comma-separated)")
    parser.add_argument("--hot", action="store_true", help="the hot-story cost instead of memory")
    parser.add_argument("--measure-port", type=int, default=0,
                        help="only measure the Redis of a run still going on this port (its ingest goes on)")
    parser.add_argument("--primaries", type=int, default=0,
                        help="a local Redis Cluster of this many primaries instead of one server (0)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose dedup package to run")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    # A terminated run still stops its redis-server (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.measure_port:
        client = redis.Redis(port=args.measure_port)
        engine = engine_for(client, args.expected)
        count = engine.stats()["articles"]
        result = measure(client, Nodes([client]), engine, args.sample, None, count, Articles())
        result["note"] = "measured on a run in progress: used_memory_delta is all of used_memory, seconds not known"
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return
    with tempfile.TemporaryDirectory() as workdir:
        if args.primaries:
            # A loaded machine can stall a node for seconds: a longer node timeout than the tests'
            # keeps the others from marking it failed mid-run.
            procs, ports = start_redis_cluster(Path(workdir), args.primaries, node_timeout_ms=30_000)
            from crawler.redis_conn import connect

            client = connect("redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports), "")
        else:
            proc, port = start_redis(Path(workdir))
            procs, ports, client = [proc], [port], redis.Redis(port=port)
        try:
            nodes = Nodes([redis.Redis(port=port) for port in ports])
            result = run_hot(client, nodes, expected=args.expected) if args.hot else \
                run_scale(client, nodes, args.articles, args.sample, args.expected,
                          [int(n) for n in args.report_at.split(",") if n.strip()])
            result["tree"] = str(args.tree)
            result["redis_version"] = nodes.clients[0].info("server")["redis_version"]
            result["cluster"] = bool(args.primaries)
        finally:
            stop_redis_cluster(procs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
