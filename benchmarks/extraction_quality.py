"""Article-body extraction quality on the Zyte article-extraction benchmark (181 real pages).

Scores crawler.extract.extract_article the way the benchmark's evaluate.py does: per page,
true/false positives and false negatives over word 4-gram shingles (\\w+ tokens, with counts),
normalised per page; precision and recall are averaged over pages and F1 is their harmonic mean.
Published F1 on this set: trafilatura 2.0.0 0.958.

    python benchmarks/extraction_quality.py [--data DIR] [--worst N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.extract import extract_article

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "extraction-benchmark"
SHINGLE_SIZE = 4
_TOKEN = re.compile(r"\w+")

TpFpFn = tuple[float, float, float]


def shingles(text: str, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """Counts of word n-grams, as the benchmark's evaluate.py builds them."""
    tokens = _TOKEN.findall(text or "")
    return Counter(
        tuple(tokens[i : i + size])
        for i in range(max(1, len(tokens) - size + 1))
        if tokens[i : i + size]
    )


def shingle_matching(true: str, predicted: str) -> TpFpFn:
    """Per-page TP/FP/FN over shingles, normalised: long pages weigh as much as short ones."""
    true_counts, predicted_counts = shingles(true), shingles(predicted)
    tp = sum((true_counts & predicted_counts).values())
    fp = sum((predicted_counts - true_counts).values())
    fn = sum((true_counts - predicted_counts).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def precision_score(tp: float, fp: float, fn: float) -> float:
    """Precision with the benchmark's conventions for empty texts."""
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def recall_score(tp: float, fp: float, fn: float) -> float:
    """Recall with the benchmark's conventions for empty texts."""
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def summary(scores: list[TpFpFn]) -> dict[str, float]:
    """Mean precision and recall over pages, and F1 as their harmonic mean (evaluate.py's F1)."""
    precision = statistics.mean(precision_score(*s) for s in scores if s[0] + s[1] > 0)
    recall = statistics.mean(recall_score(*s) for s in scores if s[0] + s[2] > 0)
    return {
        "f1": 2 * precision * recall / (precision + recall),
        "precision": precision,
        "recall": recall,
    }


def page_f1(score: TpFpFn) -> float:
    """F1 of one page."""
    precision, recall = precision_score(*score), recall_score(*score)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main() -> int:
    """Extract every benchmark page, score it, print the means, timing and the worst pages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark directory")
    parser.add_argument("--worst", type=int, default=10, help="list the N lowest-scoring pages")
    args = parser.parse_args()

    ground_truth = json.loads((args.data / "ground-truth.json").read_text(encoding="utf-8"))
    scores: dict[str, TpFpFn] = {}
    wall_times: list[float] = []
    cpu_times: list[float] = []
    misses = 0
    for page_id, truth in sorted(ground_truth.items()):
        # Bytes, as the crawler receives them: decoding is part of what is measured.
        body = gzip.decompress((args.data / "html" / f"{page_id}.html.gz").read_bytes())
        wall, cpu = time.perf_counter(), time.process_time()
        article = extract_article(body, truth["url"])
        wall_times.append(time.perf_counter() - wall)
        cpu_times.append(time.process_time() - cpu)
        misses += article is None
        scores[page_id] = shingle_matching(
            truth.get("articleBody", ""), article.text if article else ""
        )

    metrics = summary(list(scores.values()))
    print(f"pages      {len(scores)} ({misses} without text)")
    print(f"F1         {metrics['f1']:.4f}   (trafilatura 2.0.0 published: 0.958)")
    print(f"precision  {metrics['precision']:.4f}")
    print(f"recall     {metrics['recall']:.4f}")
    print(f"mean page F1 {statistics.mean(map(page_f1, scores.values())):.4f}")
    # CPU time is the steadier figure on a shared machine; wall time includes waiting for a core.
    for label, times in (("wall time", wall_times), ("CPU time", cpu_times)):
        ms = sorted(t * 1000 for t in times)
        print(
            f"{label:<10} {statistics.mean(ms):.1f} ms/page mean, {statistics.median(ms):.1f} median,"
            f" {ms[int(0.95 * (len(ms) - 1))]:.1f} p95, {ms[-1]:.1f} max"
        )
    if args.worst:
        print(f"\nworst {args.worst} pages (page F1, precision, recall):")
        for page_id, score in sorted(scores.items(), key=lambda item: page_f1(item[1]))[
            : args.worst
        ]:
            print(
                f"  {page_f1(score):.3f} {precision_score(*score):.3f} {recall_score(*score):.3f}  "
                f"{page_id[:12]}  {ground_truth[page_id]['url']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
