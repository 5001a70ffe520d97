"""`newsdedup ingest` and `newsdedup export` through their real entry point."""

from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.textcases import articles, excerpt, wrapped_copy

EXTRACTION = Path(__file__).parent / "data" / "extraction"


def newsdedup(*args: str, stdin: bytes | None = None, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-c", "import sys; from crawler.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=timeout)


def _records() -> list[str]:
    (url, body), (other_url, other_body) = articles()[0], articles()[1]
    page = gzip.decompress(next(EXTRACTION.glob("*.html.gz")).read_bytes()).decode("utf-8", "replace")
    return [
        json.dumps({"url": url, "text": body, "title": "Original", "published": "2019-11-19T10:00:00Z"}),
        "this is not json",
        json.dumps({"url": "https://farm.example/copy", "text": wrapped_copy(body)}),
        json.dumps({"title": "no url here", "text": body}),
        json.dumps({"url": "https://digest.example/x", "text": excerpt(body)}),
        json.dumps({"url": "https://empty.example/x", "text": "   "}),
        json.dumps({"url": "https://bin.example/x", "html": "\x00\x01\x02binary\x00" * 50}),
        json.dumps({"url": other_url, "text": other_body}),
        json.dumps({"url": "https://real.example/page", "html": page}),
        json.dumps({"url": "https://video.example/v", "html": "<html><body><video src=x></video></body></html>"}),
    ]


def test_ingest_reports_bad_records_and_export_shows_clusters(
    tmp_path: Path, redis_server_url: str, key_prefix: str
) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(_records()) + "\n")
    target = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    result = newsdedup("ingest", str(path), *target)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert "line 2: skipped: not JSON" in err
    assert "line 4: skipped: no http(s) url" in err
    assert "line 6: skipped: no html or text" in err
    assert "line 7: skipped: binary" in err
    assert "6 articles decided" in err and "4 records skipped" in err

    exported = newsdedup("export", *target)
    assert exported.returncode == 0, exported.stderr.decode()
    rows = {row["url"]: row for row in map(json.loads, exported.stdout.decode().splitlines())}
    assert len(rows) == 6
    original_url = articles()[0][0]
    for copy_url, kinds in (("https://farm.example/copy", ("exact", "near")), ("https://digest.example/x", ("excerpt",))):
        row = rows[copy_url]
        assert row["cluster"] == rows[original_url]["cluster"]
        assert row["canonical_url"] == original_url and row["duplicate_of"] == original_url
        assert row["is_canonical"] is False and row["kind"] in kinds and 0 < row["similarity"] <= 1
    assert rows[original_url]["is_canonical"] is True and rows[original_url]["kind"] is None
    assert rows["https://video.example/v"]["thin"] is True
    assert set(rows[original_url]) >= {"url", "cluster", "canonical_url", "is_canonical", "duplicate_of",
                                        "similarity", "kind"}


def test_stdin_and_embedded_redis_persist_across_runs(tmp_path: Path) -> None:
    (url, body) = articles()[2]
    data_dir = tmp_path / "state"
    first = newsdedup("ingest", "-", "--data-dir", str(data_dir),
                      stdin=(json.dumps({"url": url, "text": body}) + "\n").encode())
    assert first.returncode == 0, first.stderr.decode()
    second = newsdedup("ingest", "-", "--data-dir", str(data_dir),
                       stdin=(json.dumps({"url": "https://farm.example/p", "text": wrapped_copy(body)}) + "\n").encode())
    assert second.returncode == 0, second.stderr.decode()
    exported = newsdedup("export", "--data-dir", str(data_dir))
    rows = [json.loads(line) for line in exported.stdout.decode().splitlines()]
    assert {row["url"] for row in rows} == {url, "https://farm.example/p"}
    assert len({row["cluster"] for row in rows}) == 1


def test_missing_file_and_unreachable_redis_are_one_line_errors(tmp_path: Path) -> None:
    missing = newsdedup("ingest", str(tmp_path / "nope.jsonl"), "--redis-url", "redis://127.0.0.1:1/0")
    assert missing.returncode != 0 and b"no such file" in missing.stderr and b"Traceback" not in missing.stderr
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"url": "https://a.example/", "text": "x " * 50}) + "\n")
    down = newsdedup("ingest", str(path), "--redis-url", "redis://127.0.0.1:1/0")
    assert down.returncode != 0 and b"cannot reach Redis" in down.stderr and b"Traceback" not in down.stderr


PROGRESS = re.compile(r"^progress: [\d,]+ records read, [\d,]+ decided, [\d,]+ set aside, [\d,]+ records/s"
                      r"(, \d+% of [\d.]+ (B|KB|MB|GB)(, ETA \S+)?)?$", re.MULTILINE)


def test_progress_lines_go_to_stderr_only_when_asked(tmp_path: Path, redis_target: tuple[str, str]) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(_records()) + "\n")
    url, prefix = redis_target
    target = ["--redis-url", url, "--key-prefix", prefix]
    result = newsdedup("ingest", str(path), "--json", "--progress", "--workers", "1", *target)
    assert result.returncode == 0, result.stderr.decode()
    lines = PROGRESS.findall(result.stderr.decode())
    assert lines, result.stderr.decode()
    last = [line for line in result.stderr.decode().splitlines() if line.startswith("progress:")][-1]
    assert last.startswith("progress: 10 records read, 6 decided, 4 set aside, ") and "100% of" in last
    assert all(json.loads(line) for line in result.stdout.decode().splitlines())  # stdout: JSON lines only

    quiet = newsdedup("ingest", str(path), *target)  # not a terminal: no progress unless asked
    assert b"progress:" not in quiet.stderr
    assert b"6 articles decided" in quiet.stderr and b"6 already known; 4 records skipped" in quiet.stderr
    assert b"progress:" not in newsdedup("ingest", "-", "--no-progress", *target,
                                         stdin=path.read_bytes()).stderr


def _story_lines(count: int) -> list[str]:
    """Originals and copies with distinct dates (so the canonical never depends on arrival times),
    some copies before their original, and a bad record early on."""
    texts = [body for _, body in articles()]
    lines = []
    for n in range(count):
        text = texts[n % len(texts)] + f"\n\nUpdate number {n}: " + " ".join(texts[(n + 3) % len(texts)].split()[:60])
        original = {"url": f"https://news.example/{n}", "text": text, "published": f"2024-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"}
        copy = {"url": f"https://farm.example/{n}", "text": wrapped_copy(text), "published": f"2024-02-{1 + n % 28:02d}T00:00:00Z"}
        pair = [copy, original] if n % 2 else [original, copy]
        lines.extend(json.dumps(record) for record in pair)
    lines.insert(3, "this is not json")
    return lines


def test_an_interrupted_run_then_a_rerun_export_what_one_run_does(tmp_path: Path,
                                                                 redis_target: tuple[str, str]) -> None:
    lines = _story_lines(30)
    path = tmp_path / "stories.jsonl"
    path.write_text("\n".join(lines) + "\n")
    redis_url, key_prefix = redis_target
    whole = ["--redis-url", redis_url, "--key-prefix", key_prefix + "whole:"]
    assert newsdedup("ingest", str(path), "--workers", "1", *whole).returncode == 0
    expected = sorted(newsdedup("export", *whole).stdout.decode().splitlines())

    target = ["--redis-url", redis_url, "--key-prefix", key_prefix]
    command = [sys.executable, "-c", "import sys; from crawler.cli import main; sys.exit(main())",
               "ingest", "-", "--workers", "1", *target]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stdin and proc.stderr
    proc.stdin.write(("\n".join(lines[:40]) + "\n").encode())  # then the input stays open, unfinished
    proc.stdin.flush()
    seen = []
    for line in proc.stderr:  # the bad record on line 4 is reported once its batch went through
        seen.append(line.decode())
        if "line 4: skipped" in seen[-1]:
            break
    proc.send_signal(signal.SIGTERM)
    err = "".join(seen) + proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM, err
    proc.stdin.close()
    assert "stopping after the records in flight" in err and "run the same command again" in err
    decided = int(re.search(r"(\d+) articles decided", err).group(1))  # type: ignore[union-attr]
    assert 0 < decided < len(lines) - 1

    again = newsdedup("ingest", str(path), "--workers", "1", *target)
    assert again.returncode == 0, again.stderr.decode()
    assert f"{decided} already known".encode() in again.stderr
    assert sorted(newsdedup("export", *target).stdout.decode().splitlines()) == expected
