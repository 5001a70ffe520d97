"""crawler.backfill on a real Redis and on a Redis Cluster: the reader stays within its window of the
decisions, a re-run passes over decided records before extraction, the run's roles match what the store
holds, progress lines."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.backfill import (
    BATCH_RECORDS,
    DECIDE_EVERY,
    READ_AHEAD,
    Ingest,
    ProgressMeter,
    progress_line,
)
from crawler.cli.ingest import final_roles
from crawler.ingest import RawRecord, Source
from crawler.redis_conn import connect
from dedup.cluster import scan_keys
from dedup.deadletter import DeadLetters
from dedup.engine import Engine
from dedup.keys import Keys
from tests.textcases import articles, excerpt, paragraphs, wrapped_copy

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def stories(count: int, seed: int = 3) -> list[str]:
    """Distinct texts of 150-300 words from the real articles' sentences."""
    sentences = [s for _, body in articles() for p in paragraphs(body) for s in _SENTENCE.split(p)
                 if len(s.split()) >= 6]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        picked: list[str] = []
        while sum(len(s.split()) for s in picked) < rng.randint(150, 300):
            picked.append(rng.choice(sentences))
        texts.append("\n".join(" ".join(picked[i : i + 3]) for i in range(0, len(picked), 3)))
    return texts


def corpus(originals: int = 40, seed: int = 5) -> list[RawRecord]:
    """Originals, copies and excerpts with distinct dates; some copies arrive before their original
    (which displaces them as canonical), and three bad records."""
    rng = random.Random(seed)
    day = datetime(2024, 4, 1, tzinfo=UTC)
    records: list[RawRecord] = []
    for n, text in enumerate(stories(originals, seed)):
        original = RawRecord(0, url=f"https://news{n % 4}.example/story/{n}", text=text, title=f"Story {n}",
                             published=day + timedelta(hours=n))
        copies = [RawRecord(0, url=f"https://farm{n % 3}.example/p/{n}", text=wrapped_copy(text),
                            published=day + timedelta(hours=n, minutes=30))]
        if n % 3 == 0:
            copies.append(RawRecord(0, url=f"https://digest.example/e/{n}", text=excerpt(text),
                                    published=day + timedelta(hours=n, minutes=40)))
        group = [*copies, original] if n % 2 == 0 else [original, *copies]
        records.extend(group)
    rng.shuffle(records)
    records[5:5] = [RawRecord(0, problem="not JSON (JSONDecodeError: x)"),
                    RawRecord(0, url="https://empty.example/", problem="no html or text (or empty)")]
    records.append(RawRecord(0, url="https://bin.example/x", html="\x00\x01\x02binary\x00" * 50))
    return [RawRecord(line, **{k: v for k, v in vars(r).items() if k != "line"})
            for line, r in enumerate(records, start=1)]


@pytest.fixture
def engine(redis_target: tuple[str, str]) -> Iterator[Engine]:
    """An engine on a standalone Redis, then on the 3-primary test cluster (the same ingest path)."""
    url, prefix = redis_target
    client = connect(url, "")
    yield Engine(client, Keys(prefix=prefix))
    client.close()


def _ingest(engine: Engine, workers: int = 1) -> Ingest:
    return Ingest(engine, DeadLetters(engine.client, engine.keys), "test", workers=workers)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_reader_never_runs_more_than_the_window_ahead_of_the_decisions(engine: Engine, workers: int) -> None:
    texts = stories(60, seed=9)
    total = 4000
    consumed = 0

    def records() -> Iterator[RawRecord]:
        nonlocal consumed
        for n in range(total):
            consumed += 1
            yield RawRecord(n + 1, url=f"https://wide.example/{n}", text=texts[n % len(texts)] + f"\nItem {n}.")

    run = _ingest(engine, workers)
    outcomes = run.run(records())
    first = next(outcome for outcome in outcomes if outcome.decision)
    at_first_decision = consumed
    run.stop.set()
    rest = list(outcomes)  # the batches in flight are finished; nothing more is read
    ahead = (READ_AHEAD + run.window + 1) * BATCH_RECORDS  # ready, in the pool, being read
    assert first.raw.line == 1
    assert DECIDE_EVERY <= at_first_decision <= DECIDE_EVERY + ahead
    assert consumed <= DECIDE_EVERY + ahead + BATCH_RECORDS
    assert 1 + len(rest) <= consumed < total


def test_a_rerun_passes_over_decided_records_before_extraction(engine: Engine) -> None:
    records = corpus()
    first = _ingest(engine)
    outcomes = list(first.run(records))
    decided = [o for o in outcomes if o.decision]
    set_aside = [o for o in outcomes if o.skipped or o.failed]
    assert len(decided) + len(set_aside) == len(records) and len(set_aside) == 3
    assert first.extracted == len(records)

    again = _ingest(engine)
    outcomes = list(again.run(records))
    assert {o.known_id for o in outcomes if o.known_id} == {o.decision.article_id for o in decided if o.decision}
    assert again.extracted == len(set_aside)  # only the bad records, which have no stored article
    assert [o.raw.line for o in outcomes if o.skipped] == [o.raw.line for o in set_aside if o.skipped]
    assert again.tally.summary() == Counter()


def test_the_run_counts_roles_as_the_store_holds_them(engine: Engine) -> None:
    run = _ingest(engine)
    ids = [o.decision.article_id for o in run.run(corpus(originals=60)) if o.decision and not o.decision.known]
    summary = run.tally.summary()
    assert run.tally.corrected > 0  # some canonicals were displaced by their original, arriving later
    truth = final_roles(engine, ids)
    assert +summary == +truth
    assert summary["canonical"] == 60 and summary["duplicates"] == len(ids) - 60
    run.tally.close()
    assert not list(scan_keys(engine.client, f"{engine.keys.prefix}ingest:*"))


def test_progress_line_says_read_decided_set_aside_rate_and_eta() -> None:
    assert progress_line(1234, 1200, 34, 10.0, 250_000_000, 1_000_000_000) == (
        "progress: 1,234 records read, 1,200 decided, 34 set aside, 123 records/s, 25% of 1.0 GB, ETA 30s")
    assert progress_line(50, 40, 0, 2.0) == "progress: 50 records read, 40 decided, 0 set aside, 20 records/s"
    assert progress_line(9, 9, 0, 2.0, 823_000_000, 823_000_000).endswith(", 100% of 823.0 MB")
    assert "ETA 1h01m" in progress_line(10, 10, 0, 61.0, 1, 61)


def test_the_progress_meter_writes_once_per_interval() -> None:
    now = [100.0]
    lines: list[str] = []
    meter = ProgressMeter(lines.append, interval=5.0, clock=lambda: now[0])
    for step in range(12):
        now[0] = 100.0 + step
        meter.update(step * 10, step * 10, 0)
    assert len(lines) == 2 and lines[0].startswith("progress: 50 records read, 50 decided")
    meter.update(120, 120, 1, force=True)
    assert lines[-1].startswith("progress: 120 records read, 120 decided, 1 set aside")


def test_a_json_line_past_the_record_cap_is_set_aside_without_being_held(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    from crawler import ingest

    monkeypatch.setattr(ingest, "MAX_RECORD_BYTES", 1000)
    good = json.dumps({"url": "https://a.example/1", "text": "word " * 100}).encode()
    stream = io.BytesIO(b"\n".join([good, b'{"url": "https://big.example/", "text": "' + b"x" * 5000 + b'"}', good]) + b"\n")
    records = list(ingest.jsonl_records(stream))
    assert [(r.line, r.problem) for r in records] == [(1, None), (2, "record larger than 0 MiB"), (3, None)]
    assert records[2].url == "https://a.example/1"


def test_a_warc_and_a_jsonl_file_are_read_record_by_record(tmp_path: Path) -> None:
    import io
    import json

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    texts = stories(200, seed=4)
    warc = tmp_path / "crawl.warc.gz"
    with warc.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for n, text in enumerate(texts):
            page = f"<html><body><article><p>{text}</p></article></body></html>".encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"https://w.example/{n}", "response",
                                                          payload=io.BytesIO(page), http_headers=headers))
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("".join(json.dumps({"url": f"https://j.example/{n}", "text": t}) + "\n"
                             for n, t in enumerate(texts)))
    for path in (warc, jsonl):
        source = Source(str(path), io.BytesIO())
        records = source.records()
        first = next(records)
        assert first.url.endswith("/0") and source.total_bytes == path.stat().st_size
        assert (source.bytes_read() or 0) < source.total_bytes / 4  # the rest is still on disk
        assert sum(1 for _ in records) == 199 and source.bytes_read() == source.total_bytes
        source.close()
