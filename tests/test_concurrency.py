"""Four processes deciding at once reach the decisions one process would."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import redis

from dedup.keys import Keys
from tests.textcases import articles, edited, wrapped_copy


def _records() -> list[dict[str, str]]:
    records = []
    for index, (url, body) in enumerate(articles()):
        story = [
            {"url": url, "text": body, "story": url},
            {"url": f"https://mirror{index}.example/a", "text": body, "story": url},
            {"url": f"https://farm{index}.example/a", "text": wrapped_copy(body), "story": url},
            {"url": f"https://edit{index}.example/a", "text": edited(body, seed=2), "story": url},
            {"url": f"https://caps{index}.example/a", "text": edited(body, seed=3), "story": url},
            {"url": f"https://quotes{index}.example/a", "text": body.replace("\u201c", '"').replace("\u201d", '"'),
             "story": url},
        ]
        records.extend(story)
    return records


def _run(args: list[str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "import sys; from crawler.cli import main; sys.exit(main())", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _export(url: str, prefix: str) -> dict[str, dict[str, object]]:
    proc = _run(["export", "--redis-url", url, "--key-prefix", prefix])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return {row["url"]: row for row in map(json.loads, out.decode().splitlines())}


def test_four_writers_decide_as_one(tmp_path: Path, redis_server_url: str, key_prefix: str) -> None:
    records = _records()
    random.Random(5).shuffle(records)
    quarters = [records[i::4] for i in range(4)]
    files = []
    for index, quarter in enumerate(quarters):
        path = tmp_path / f"part{index}.jsonl"
        path.write_text("".join(json.dumps({"url": r["url"], "text": r["text"]}) + "\n" for r in quarter))
        files.append(path)

    procs = [_run(["ingest", str(path), "--quiet", "--workers", "1", "--redis-url", redis_server_url,
                   "--key-prefix", key_prefix]) for path in files]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()

    exported = _export(redis_server_url, key_prefix)
    assert len(exported) == len(records)
    clusters_by_story: dict[str, set[object]] = defaultdict(set)
    for record in records:
        clusters_by_story[record["story"]].add(exported[record["url"]]["cluster"])
    assert all(len(clusters) == 1 for clusters in clusters_by_story.values())
    assert len({next(iter(c)) for c in clusters_by_story.values()}) == len(articles())

    client = redis.Redis.from_url(redis_server_url)
    events = [fields for _, fields in client.xrange(Keys(key_prefix).canonical_stream)]
    new_per_cluster = Counter(e[b"cluster"] for e in events if e[b"event"] == b"new")
    assert len(new_per_cluster) == len(articles())
    assert set(new_per_cluster.values()) == {1}
    event_ids = [e[b"event_id"] for e in events]
    assert len(event_ids) == len(set(event_ids))
    client.close()
