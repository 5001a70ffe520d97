"""crawler.cli's error handling, through the real entry point: one `Error:` line and exit 1, usage errors
exit 2, read-only commands never create a store, default config locations, `| head` exits 0, and
summaries computed from what the store holds."""

from __future__ import annotations

import io
import json
import os
import random
import socket
import subprocess
from pathlib import Path

import pytest

from tests.service_process import NEWSDEDUP
from tests.textcases import articles, wrapped_copy


def newsdedup(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")}
    return subprocess.run([*NEWSDEDUP, *args], cwd=cwd, env={**clean, **(env or {})}, input=None if stdin is None else stdin.decode(),
                          capture_output=True, text=True, timeout=180, check=False)


def one_error_line(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr


BAD_SCHEME = "expected a redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// URL"


@pytest.mark.parametrize("args, text", [
    (["status", "--redis-url", "notaurl"], BAD_SCHEME),
    (["dupes", "--redis-url", "http://127.0.0.1:6379/0"], BAD_SCHEME),
    (["status", "--redis-url", "redis+cluster://127.0.0.1:7000/2"], "a Redis Cluster has only database 0"),
    (["status", "--redis-url", "redis+cluster://127.0.0.1:port"], "bad cluster URL: bad port"),
    (["status", "--data-dir", "/dev/null/x"], "/dev/null is not a directory"),
    (["ingest", "-", "--data-dir", "/dev/null/x"], "/dev/null is not a directory"),
])
def test_bad_arguments_are_one_error_line_before_any_redis_starts(tmp_path: Path, args: list[str],
                                                                   text: str) -> None:
    one_error_line(newsdedup(*args, cwd=tmp_path, stdin=b""), text)
    assert list(tmp_path.iterdir()) == []


def test_a_binary_config_file_is_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "sources.toml"
    config.write_bytes(bytes(range(256)) * 4)
    one_error_line(newsdedup("status", "--config", str(config), cwd=tmp_path), "not a TOML file")


def test_usage_errors_exit_2_as_documented(tmp_path: Path) -> None:
    result = newsdedup("status", "--no-such-option", cwd=tmp_path)
    assert result.returncode == 2 and "Error: No such option" in result.stderr
    help_text = newsdedup("--help", cwd=tmp_path).stdout
    assert "usage errors exit with status 2" in " ".join(help_text.split())


def test_a_second_run_on_a_taken_health_port_is_one_error_line(tmp_path: Path, redis_server_url: str,
                                                               key_prefix: str) -> None:
    config = tmp_path / "sources.toml"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config.write_text(f'[service]\nhealth_port = {port}\n[[sources]]\nname = "a"\n'
                          'feeds = ["http://127.0.0.1:9/feed.xml"]\n')
        result = newsdedup("run", "--config", str(config), "--redis-url", redis_server_url,
                           "--key-prefix", key_prefix, cwd=tmp_path)
    one_error_line(result, f"cannot serve /healthz on 127.0.0.1:{port}")


@pytest.mark.parametrize("args", [["status"], ["dupes"], ["export"], ["queue"], ["queue", "peek"],
                                  ["show", "https://a.example/x"], ["override"], ["pause", "a"],
                                  ["status", "--data-dir", "mistyped-dir"]])
def test_read_only_commands_never_create_a_store_and_say_where_they_looked(tmp_path: Path,
                                                                             args: list[str]) -> None:
    """The wrong-Redis trap: no config, no URL, no store here: say so (exit 1) instead of reporting an
    empty new store as "no running instances"."""
    result = newsdedup(*args, cwd=tmp_path)
    one_error_line(result, "no newsdedup data here")
    assert "--redis-url" in result.stderr and "sources.toml" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["cwd", "env"])
def test_commands_read_the_default_config_location(tmp_path: Path, redis_server_url: str, key_prefix: str,
                                                   where: str) -> None:
    config = tmp_path / ("sources.toml" if where == "cwd" else "elsewhere.toml")
    config.write_text(f'[redis]\nurl = "{redis_server_url}"\nprefix = "{key_prefix}"\n')
    env = {"NEWSDEDUP_CONFIG": str(config)} if where == "env" else {}
    result = newsdedup("status", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["redis"]["prefix"] == key_prefix and report["empty"] is True
    assert "Nothing decided yet" in newsdedup("status", cwd=tmp_path, env=env).stdout


def _random_records(count: int) -> bytes:
    words = [f"w{n}" for n in range(4000)]
    rng = random.Random(7)
    lines = [json.dumps({"url": f"https://many.example/{n}", "text": " ".join(rng.choices(words, k=120))})
             for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


def test_export_into_head_exits_0_under_pipefail(tmp_path: Path, redis_server_url: str, key_prefix: str) -> None:
    target = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    ingested = newsdedup("ingest", "-", "--workers", "1", *target, stdin=_random_records(600))
    assert ingested.returncode == 0, ingested.stderr
    command = " ".join([*(f"'{part}'" for part in NEWSDEDUP), "export", *target])
    for pipeline in (f"{command} | head -1", f"{command} --json | head -c 100"):
        result = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True,
                                timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")},
                                check=False)
        assert result.returncode == 0, (pipeline, result.stderr)
        assert result.stderr == ""
        assert result.stdout.startswith('{"url": "https://many.example/')


def test_ingest_summary_counts_a_displaced_canonical_as_a_duplicate(tmp_path: Path, redis_server_url: str,
                                                                    key_prefix: str) -> None:
    """The copy arrives first and is canonical for a moment; the original, earlier and named by the copy's
    Source link, displaces it. The summary says what the store says: 1 canonical, 1 duplicate."""
    url, body = articles()[0]
    records = [{"url": "https://farm.example/copy", "text": wrapped_copy(body), "published": "2020-01-02T00:00:00Z"},
               {"url": url, "text": body, "title": "Original", "published": "2019-11-19T10:00:00Z"}]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    target = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    result = newsdedup("ingest", str(path), "--workers", "1", *target)
    assert result.returncode == 0, result.stderr
    assert "2 articles decided: 1 canonical, 1 duplicates" in result.stderr, result.stderr
    rows = [json.loads(line) for line in newsdedup("export", *target).stdout.splitlines()]
    assert sorted(row["is_canonical"] for row in rows) == [False, True]
    assert next(row for row in rows if row["is_canonical"])["url"] == url


def _warc(path: Path, pages: list[tuple[str, str, bytes]]) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        for url, status, body in pages:
            headers = StatusAndHeaders(status, [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=headers))
    return path


def test_a_non_2xx_warc_response_is_skipped_and_counted(tmp_path: Path, redis_server_url: str,
                                                         key_prefix: str) -> None:
    url, body = articles()[1]
    page = ("<html><head><title>Story</title></head><body><article>"
            + "".join(f"<p>{p}</p>" for p in body.split("\n") if p.strip()) + "</article></body></html>").encode()
    missing = b"<html><head><title>Page not found</title></head><body><p>" + b"Sorry, gone. " * 80 + b"</p></body></html>"
    warc = _warc(tmp_path / "crawl.warc", [(url, "200 OK", page), ("https://a.example/gone", "404 Not Found", missing)])
    target = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    result = newsdedup("ingest", str(warc), "--workers", "1", *target)
    assert result.returncode == 0, result.stderr
    assert "HTTP 404 Not Found response, not an article" in result.stderr or "HTTP 404 response" in result.stderr
    assert "1 articles decided" in result.stderr and "1 records skipped" in result.stderr
    rows = [json.loads(line) for line in newsdedup("export", *target).stdout.splitlines()]
    assert [row["url"] for row in rows] == [url]
