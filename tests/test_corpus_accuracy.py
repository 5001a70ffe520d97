"""The committed labelled corpus (tests/data/corpus) through `newsdedup ingest` and `export`.

Every labelled copy must land in its story's cluster, no hard negative or thin page may be merged
with anything of another story, and each story's original must be its canonical.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"
COPY_KINDS = {"full_copy", "excerpt", "edited", "typography", "redatelined"}
SEED_REPOST_URL = (
    "https://www.worldnewsera.com/news/asia/us-says-aiming-for-second-trump-kim-summit-early-"
    "next-year-as-kim-lashes-out-at-sanctions/"
)


def _jsonl_lines(path: Path) -> list[str]:
    # split on "\n" only: str.splitlines() also breaks at U+2028, which JSON strings may hold
    return [line for line in path.read_text("utf-8").split("\n") if line.strip()]


def _labels() -> dict[str, dict[str, object]]:
    lines = _jsonl_lines(CORPUS_DIR / "labels.jsonl")
    return {label["url"]: label for label in map(json.loads, lines)}


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(params=["shuffled", "copies_first"])
def exported(
    request: pytest.FixtureRequest, redis_server_url: str, key_prefix: str, tmp_path: Path
) -> dict[str, dict[str, object]]:
    """url -> export row, after ingesting the corpus shuffled, or with every copy first."""
    lines = _jsonl_lines(CORPUS_DIR / "records.jsonl")
    if request.param == "shuffled":
        random.Random(0).shuffle(lines)
    else:  # the file lists originals first
        lines.reverse()
    records = tmp_path / "records.jsonl"
    records.write_text("".join(line + "\n" for line in lines), "utf-8")
    connection = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    _invoke("ingest", str(records), "--workers", "1", *connection)
    rows = [
        json.loads(line)
        for line in _invoke("export", *connection).split("\n")
        if line.startswith("{")
    ]
    return {row["url"]: row for row in rows}


def test_fixture_labels_are_consistent() -> None:
    labels = _labels()
    records = [json.loads(line) for line in _jsonl_lines(CORPUS_DIR / "records.jsonl")]
    assert [r["url"] for r in records] == list(labels)
    stories = {label["story"] for label in labels.values()}
    assert all(labels[str(story)]["canonical"] for story in stories)
    assert SEED_REPOST_URL in labels and (CORPUS_DIR / "LICENSE").exists()


def test_every_copy_joins_its_story(exported: dict[str, dict[str, object]]) -> None:
    labels = _labels()
    assert set(exported) >= set(labels)
    missed = [
        f"{label['kind']} {url} (similarity {exported[url].get('similarity')})"
        for url, label in labels.items()
        if label["kind"] in COPY_KINDS
        and exported[url]["cluster"] != exported[str(label["story"])]["cluster"]
    ]
    assert not missed, "copies not in their story's cluster:\n" + "\n".join(missed)


def test_no_negative_is_merged(exported: dict[str, dict[str, object]]) -> None:
    labels = _labels()
    members: dict[object, list[str]] = defaultdict(list)
    for url in labels:
        members[exported[url]["cluster"]].append(url)
    wrong = []
    for urls in members.values():
        stories = {labels[url]["story"] for url in urls}
        if len(stories) > 1:
            wrong.append(", ".join(f"{labels[u]['kind']} {u}" for u in urls))
    assert not wrong, "clusters mixing stories:\n" + "\n".join(wrong)


def test_original_is_canonical(exported: dict[str, dict[str, object]]) -> None:
    labels = _labels()
    wrong = []
    for url, label in labels.items():
        story = str(label["story"])
        if label["kind"] in COPY_KINDS and exported[url]["canonical_url"] != story:
            wrong.append(f"{label['kind']} {url}: canonical {exported[url]['canonical_url']}")
        if label["kind"] == "original" and not exported[url]["is_canonical"]:
            wrong.append(f"original {url} is not canonical")
    assert not wrong, "\n".join(wrong)
