"""`newsdedup ingest` and `newsdedup export` through their real entry point."""

from __future__ import annotations

import gzip
import json
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
