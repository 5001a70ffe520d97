"""Accuracy of duplicate decisions on the labelled corpus, through the real CLI.

    python benchmarks/accuracy.py                        # makes benchmarks/out/corpus if needed
    python benchmarks/accuracy.py --corpus tests/data/corpus --redis-url redis://127.0.0.1:6379/0
    python benchmarks/accuracy.py --export export.jsonl  # score an existing export only
    python benchmarks/accuracy.py --baseline             # a naive reference, for comparison

Records are shuffled (copies often arrive before their original), ingested with
`newsdedup ingest FILE --redis-url URL --key-prefix PREFIX` under a fresh key prefix, read back with
`newsdedup export`, scored against labels.jsonl, and the prefix's keys are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT_DIR = ROOT / "benchmarks" / "out"
DEFAULT_CORPUS = OUT_DIR / "corpus"
COPY_KINDS = ("full_copy", "excerpt", "edited", "typography", "redatelined", "spun")
NEGATIVE_KINDS = ("negative_same_event", "negative_quote", "negative_short_boilerplate")
TARGETS = {
    "precision": 0.995,
    "recall": 0.97,
    "kind_recall": 0.95,
    "negative_false_merge": 0.01,
    "canonical_correct": 0.97,
}

Label = Mapping[str, Any]
"""One line of labels.jsonl (parsed JSON)."""
Row = Mapping[str, Any]
"""One line of `newsdedup export` (parsed JSON)."""


# ---------------------------------------------------------------- running the CLI


def newsdedup_command() -> list[str]:
    """How to call the CLI: the installed script next to this Python, else the entry point."""
    script = Path(sys.executable).with_name("newsdedup")
    if script.exists():
        return [str(script)]
    found = shutil.which("newsdedup")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from crawler.cli import main; sys.exit(main())"]


def jsonl_lines(text: str) -> list[str]:
    """The non-blank lines of JSON Lines text. Split on "\\n" only: str.splitlines() also breaks
    at U+2028, U+0085 and friends, which JSON strings may hold unescaped."""
    return [line for line in text.split("\n") if line.strip()]


def shuffled_records(corpus: Path, seed: int, target: Path, order: str = "shuffled") -> int:
    """Copy records.jsonl to target in a random order (or every original last, when order is
    "copies-first"); returns the number of records."""
    lines = jsonl_lines((corpus / "records.jsonl").read_text("utf-8"))
    random.Random(seed).shuffle(lines)
    if order == "copies-first":
        originals = {
            url for url, label in read_labels(corpus).items() if label["kind"] == "original"
        }
        lines.sort(key=lambda line: json.loads(line)["url"] in originals)
    target.write_text("".join(line + "\n" for line in lines), "utf-8")
    return len(lines)


@dataclass
class CliRun:
    """What one ingest + export produced."""

    rows: list[dict[str, object]]
    ingest_seconds: float
    ingest_log: str
    """The ingest command's stderr: skipped records and the summary line."""


def run_cli(records: Path, redis_url: str, key_prefix: str) -> CliRun:
    """Ingest then export under one key prefix."""
    command = newsdedup_command()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    common = ["--redis-url", redis_url, "--key-prefix", key_prefix]
    started = time.perf_counter()
    ingest = subprocess.run(
        [*command, "ingest", str(records), *common],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if ingest.returncode != 0:
        raise SystemExit(f"ingest failed ({ingest.returncode}): {ingest.stderr.strip()[-2000:]}")
    export = subprocess.run(
        [*command, "export", *common],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if export.returncode != 0:
        raise SystemExit(f"export failed ({export.returncode}): {export.stderr.strip()[-2000:]}")
    return CliRun(parse_export(jsonl_lines(export.stdout)), elapsed, ingest.stderr)


def parse_export(lines: Iterable[str]) -> list[dict[str, object]]:
    """Export rows from JSON lines (blank and non-JSON lines skipped)."""
    rows = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def delete_prefix(redis_url: str, key_prefix: str) -> int:
    """Delete every key under the prefix; returns how many."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=key_prefix + "*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()
    return len(keys)


# ---------------------------------------------------------------- a naive baseline


def baseline_rows(
    records_path: Path, jaccard: float = 0.5, containment: float = 0.8
) -> list[dict[str, object]]:
    """Export-like rows from a naive reference: trafilatura text, word 5-shingles, exact
    Jaccard/containment against MinHash-LSH candidates, union-find, earliest date canonical."""
    import re

    import trafilatura
    from datasketch import MinHash, MinHashLSH
    from htmldate import find_date

    lsh = MinHashLSH(threshold=0.3, num_perm=64)
    shingles: dict[str, set[int]] = {}
    dates: dict[str, str] = {}
    parent: dict[str, str] = {}

    def root(url: str) -> str:
        while parent[url] != url:
            parent[url] = parent[parent[url]]
            url = parent[url]
        return url

    for line in jsonl_lines(records_path.read_text("utf-8")):
        record = json.loads(line)
        url = record["url"]
        if "html" in record:
            text = trafilatura.extract(record["html"], url=url) or ""
            dates[url] = (
                find_date(record["html"], original_date=True, extensive_search=False) or "9"
            )
        else:
            text = record.get("text", "")
            dates[url] = str(record.get("published") or "9")[:10]
        words = re.findall(r"\w+", text.lower())
        shingle_set = {
            zlib.crc32(" ".join(words[i : i + 5]).encode()) for i in range(len(words) - 4)
        }
        shingles[url] = shingle_set
        parent[url] = url
        if len(shingle_set) < 30:  # thin: never merged
            continue
        signature = MinHash(num_perm=64)
        for value in shingle_set:
            signature.update(str(value).encode())
        for other in lsh.query(signature):
            common = len(shingle_set & shingles[other])
            smaller = min(len(shingle_set), len(shingles[other]))
            if (
                common / len(shingle_set | shingles[other]) >= jaccard
                or common / smaller >= containment
            ):
                parent[root(url)] = root(other)
        lsh.insert(url, signature)
    groups: dict[str, list[str]] = defaultdict(list)
    for url in parent:
        groups[root(url)].append(url)
    rows = []
    for members in groups.values():
        canonical = min(members, key=lambda u: (dates[u], -len(shingles[u])))
        for url in members:
            rows.append(
                {
                    "url": url,
                    "cluster": canonical,
                    "canonical_url": canonical,
                    "is_canonical": url == canonical,
                    "duplicate_of": None,
                    "similarity": None,
                    "kind": None,
                }
            )
    return rows


# ---------------------------------------------------------------- scoring


def _pairs(size: int) -> int:
    return size * (size - 1) // 2


@dataclass
class Scores:
    """Every figure the benchmark reports, and the examples behind the errors."""

    summary: dict[str, Any]
    missed: list[dict[str, object]]
    false_merges: list[dict[str, object]]
    canonical_errors: list[dict[str, object]]


def score(labels: Mapping[str, Label], rows: Iterable[Row]) -> Scores:
    """Pairwise precision/recall, recall per copy kind, negative merges and canonical choice."""
    by_url = {str(row["url"]): row for row in rows}
    missing = [url for url in labels if url not in by_url]
    cluster = {
        url: str(by_url[url]["cluster"]) if url in by_url else f"missing:{url}" for url in labels
    }
    members: dict[str, list[str]] = defaultdict(list)
    for url in labels:
        members[cluster[url]].append(url)
    stories: dict[str, list[str]] = defaultdict(list)
    for url, label in labels.items():
        stories[str(label["story"])].append(url)

    true_pairs = sum(_pairs(len(urls)) for urls in stories.values())
    predicted_pairs = sum(_pairs(len(urls)) for urls in members.values())
    joint = Counter((str(labels[url]["story"]), cluster[url]) for url in labels)
    correct_pairs = sum(_pairs(n) for n in joint.values())
    precision = correct_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = correct_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    kind_total: Counter[str] = Counter()
    kind_found: Counter[str] = Counter()
    format_total: Counter[str] = Counter()
    format_found: Counter[str] = Counter()
    decided_as: dict[str, Counter[str]] = defaultdict(Counter)
    missed: list[dict[str, object]] = []
    for url, label in labels.items():
        kind = str(label["kind"])
        decided_as[kind][str(by_url.get(url, {}).get("kind"))] += 1
        if kind not in COPY_KINDS:
            continue
        story = str(label["story"])
        key = f"{kind}/{label.get('format', 'html')}"
        kind_total[kind] += 1
        format_total[key] += 1
        if cluster[url] == cluster.get(story):
            kind_found[kind] += 1
            format_found[key] += 1
        else:
            row = by_url.get(url, {})
            missed.append(
                {
                    "url": url,
                    "kind": kind,
                    "format": label.get("format"),
                    "story": story,
                    "engine_kind": row.get("kind"),
                    "similarity": row.get("similarity"),
                    "cluster_size": len(members[cluster[url]]),
                    "story_cluster_size": len(members[cluster.get(story, "")]),
                }
            )

    def merged_with_other_story(url: str) -> list[str]:
        story = labels[url]["story"]
        return [m for m in members[cluster[url]] if labels[m]["story"] != story]

    negative_total: Counter[str] = Counter()
    negative_merged: Counter[str] = Counter()
    false_merges: list[dict[str, object]] = []
    for url, label in labels.items():
        kind = str(label["kind"])
        others = merged_with_other_story(url)
        if kind in NEGATIVE_KINDS or kind == "thin":
            negative_total[kind] += 1
            if others if kind != "thin" else len(members[cluster[url]]) > 1:
                negative_merged[kind] += 1
        if others and (kind in NEGATIVE_KINDS or kind in ("thin", "original")):
            false_merges.append(
                {
                    "url": url,
                    "kind": kind,
                    "merged_with": [
                        {"url": o, "kind": labels[o]["kind"], "story": labels[o]["story"]}
                        for o in others[:5]
                    ],
                    "engine_kind": by_url.get(url, {}).get("kind"),
                    "similarity": by_url.get(url, {}).get("similarity"),
                }
            )

    related_pairs = {
        tuple(sorted((url, str(other))))
        for url, label in labels.items()
        if label["kind"] == "original"
        for other in label.get("related", []) or []
        if other in labels
    }
    related_merged = sum(1 for a, b in related_pairs if cluster[a] == cluster[b])

    canonical_total = 0
    canonical_correct = 0
    canonical_errors: list[dict[str, object]] = []
    for story, urls in stories.items():
        if len(urls) < 2 or story not in labels:
            continue
        canonical_total += 1
        row = by_url.get(story, {})
        copies = [u for u in urls if u != story and cluster[u] == cluster[story]]
        agree = all(by_url[u].get("canonical_url") == story for u in copies)
        if row.get("is_canonical") and row.get("canonical_url", story) == story and agree:
            canonical_correct += 1
        else:
            chosen = str(row.get("canonical_url"))
            canonical_errors.append(
                {
                    "story": story,
                    "chosen": chosen,
                    "chosen_kind": labels.get(chosen, {}).get("kind"),
                    "original_format": labels[story].get("format"),
                    "copies_pointing_elsewhere": sum(
                        1 for u in copies if by_url[u].get("canonical_url") != story
                    ),
                }
            )

    # thin pages are hard negatives too (they must never be merged with one another)
    negatives_all = sum(negative_total[k] for k in (*NEGATIVE_KINDS, "thin"))
    negatives_merged = sum(negative_merged[k] for k in (*NEGATIVE_KINDS, "thin"))
    copies = [u for u, label in labels.items() if label["kind"] in COPY_KINDS]
    copies_pointing = sum(
        1 for u in copies if by_url.get(u, {}).get("canonical_url") == labels[u]["story"]
    )
    summary: dict[str, Any] = {
        "records": len(labels),
        "exported": len(by_url),
        "missing_from_export": len(missing),
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "kind_recall": {
            k: round(kind_found[k] / kind_total[k], 4) for k in COPY_KINDS if kind_total[k]
        },
        "kind_counts": {k: kind_total[k] for k in COPY_KINDS if kind_total[k]},
        "format_recall": {
            k: round(format_found[k] / format_total[k], 4) for k in sorted(format_total)
        },
        "negative_false_merge": round(negatives_merged / negatives_all, 4)
        if negatives_all
        else 0.0,
        "negative_false_merge_by_kind": {
            k: f"{negative_merged[k]}/{negative_total[k]}"
            for k in (*NEGATIVE_KINDS, "thin")
            if negative_total[k]
        },
        "thin_merged": f"{negative_merged['thin']}/{negative_total['thin']}",
        "real_related_pairs_merged": f"{related_merged}/{len(related_pairs)}",
        "canonical_correct": round(canonical_correct / canonical_total, 4)
        if canonical_total
        else 1.0,
        "canonical_clusters": canonical_total,
        "copies_naming_original_canonical": round(copies_pointing / len(copies), 4)
        if copies
        else 1.0,
        "engine_kind_by_label": {k: dict(v) for k, v in sorted(decided_as.items())},
    }
    return Scores(summary, missed, false_merges, canonical_errors)


def verdicts(summary: Mapping[str, Any]) -> dict[str, bool]:
    """Each target of the product brief: met or not."""
    kind_recall = summary["kind_recall"]
    assert isinstance(kind_recall, dict)
    return {
        "precision >= 0.995": float(summary["precision"]) >= TARGETS["precision"],
        "recall >= 0.97": float(summary["recall"]) >= TARGETS["recall"],
        "every kind recall >= 0.95": all(v >= TARGETS["kind_recall"] for v in kind_recall.values()),
        "negatives merged <= 1%": float(summary["negative_false_merge"])
        <= TARGETS["negative_false_merge"],
        "canonical correct >= 97%": float(summary["canonical_correct"])
        >= TARGETS["canonical_correct"],
    }


def render_table(summary: Mapping[str, Any]) -> str:
    """The figures as a plain-text table for people."""
    lines = [f"{'metric':<34} value"]
    lines.append("-" * 50)
    for key in (
        "records",
        "exported",
        "missing_from_export",
        "true_pairs",
        "predicted_pairs",
        "precision",
        "recall",
        "f1",
    ):
        lines.append(f"{key:<34} {summary[key]}")
    kind_counts = summary["kind_counts"]
    assert isinstance(kind_counts, dict)
    for kind, value in dict(summary["kind_recall"]).items():
        lines.append(f"{'recall ' + kind:<34} {value}  (n={kind_counts[kind]})")
    for key, value in dict(summary["format_recall"]).items():
        lines.append(f"{'  recall ' + key:<34} {value}")
    lines.append(f"{'hard negatives falsely merged':<34} {summary['negative_false_merge']}")
    for kind, value in dict(summary["negative_false_merge_by_kind"]).items():
        lines.append(f"{'  ' + kind:<34} {value}")
    lines.append(f"{'real same-event originals merged':<34} {summary['real_related_pairs_merged']}")
    lines.append(
        f"{'canonical correct':<34} {summary['canonical_correct']}"
        f"  (clusters={summary['canonical_clusters']})"
    )
    lines.append(
        f"{'copies whose canonical is original':<34} {summary['copies_naming_original_canonical']}"
    )
    lines.append("-" * 50)
    for target, met in verdicts(summary).items():
        lines.append(f"{'target ' + target:<34} {'PASS' if met else 'FAIL'}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def read_labels(corpus: Path) -> dict[str, dict[str, object]]:
    """url -> label."""
    labels = {}
    for line in jsonl_lines((corpus / "labels.jsonl").read_text("utf-8")):
        if line.strip():
            label = json.loads(line)
            labels[label["url"]] = label
    return labels


def ensure_corpus(corpus: Path) -> None:
    """Generate the default corpus when the directory has none yet."""
    if (corpus / "records.jsonl").exists():
        return
    from benchmarks.corpus import CorpusOptions, build_corpus, write_corpus

    print(f"generating corpus in {corpus} ...", file=sys.stderr)
    write_corpus(build_corpus(CorpusOptions()), corpus)


def corpus_name(corpus: Path) -> str:
    """A file-name stem for a corpus directory (its path inside the project where possible)."""
    try:
        return "-".join(corpus.resolve().relative_to(ROOT).parts)
    except ValueError:
        return corpus.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--key-prefix", default=None, help="default: a fresh unique prefix")
    parser.add_argument("--seed", type=int, default=1, help="shuffle seed")
    parser.add_argument(
        "--order",
        choices=("shuffled", "copies-first"),
        default="shuffled",
        help="ingest order: random, or every original after all other records",
    )
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        help="score this export (JSON lines) instead of running the CLI",
    )
    parser.add_argument("--keep", action="store_true", help="keep the Redis keys afterwards")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="score a naive in-process reference instead of the engine",
    )
    parser.add_argument(
        "--details",
        type=Path,
        default=None,
        help="write missed copies, false merges and canonical errors here (JSON)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args(argv)

    ensure_corpus(args.corpus)
    labels = read_labels(args.corpus)
    ingest_seconds = None
    ingest_summary = None
    if args.export:
        rows = parse_export(jsonl_lines(args.export.read_text("utf-8")))
    elif args.baseline:
        with tempfile.TemporaryDirectory(prefix="newsdedup-accuracy-") as tmp:
            shuffled = Path(tmp) / "records.jsonl"
            shuffled_records(args.corpus, args.seed, shuffled, args.order)
            rows = baseline_rows(shuffled)
    else:
        prefix = args.key_prefix or f"newsdedup-bench-{uuid.uuid4().hex[:10]}:"
        with tempfile.TemporaryDirectory(prefix="newsdedup-accuracy-") as tmp:
            shuffled = Path(tmp) / "records.jsonl"
            shuffled_records(args.corpus, args.seed, shuffled, args.order)
            try:
                run = run_cli(shuffled, args.redis_url, prefix)
            finally:
                if not args.keep:
                    delete_prefix(args.redis_url, prefix)
        rows, ingest_seconds = run.rows, run.ingest_seconds
        ingest_summary = (run.ingest_log.strip().splitlines() or [""])[-1]
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUT_DIR / f"{corpus_name(args.corpus)}-export.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows), "utf-8"
        )
    scores = score(labels, rows)
    summary = dict(scores.summary)
    if ingest_seconds is not None:
        summary["ingest_seconds"] = round(ingest_seconds, 1)
        summary["ingest_summary"] = ingest_summary
    summary["targets"] = verdicts(summary)
    details = args.details or OUT_DIR / f"{corpus_name(args.corpus)}-accuracy-details.json"
    details.parent.mkdir(parents=True, exist_ok=True)
    details.write_text(
        json.dumps(
            {
                "missed": scores.missed,
                "false_merges": scores.false_merges,
                "canonical_errors": scores.canonical_errors,
            },
            indent=2,
        ),
        "utf-8",
    )
    if not args.json:
        print(render_table(summary))
        print(f"details: {details}")
    print(json.dumps(summary, sort_keys=True))
    return 0 if all(verdicts(summary).values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
