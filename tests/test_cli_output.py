"""crawler.cli output rules at 80 columns: ids and URLs never cropped, --output wide|tsv|json, --json on
every listing, absolute and relative --since, override reasons and dry runs, check --source, stream lag."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from crawler.cli import main
from tests.service_process import NEWSDEDUP
from tests.test_cli_ops import (  # noqa: F401 - fixtures
    ORIGINAL_URL,
    SECOND_URL,
    Run,
    _jsonl,
    _records,
    ingested,
    json_lines,
    ok,
    pages,
    run,
    snapshot,
)

COPY_URLS = ["https://farm.example/0", "https://digest.example/0", "https://edit.example/0",
             "https://mirror.example/1"]


@pytest.fixture
def narrow(redis_server_url: str, key_prefix: str, ingested: Run) -> Run:  # noqa: F811
    """Like `ingested`, on an 80-column terminal's width."""

    def invoke(*args: str, input: str | None = None) -> Result:
        connection = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
        return CliRunner(env={"COLUMNS": "80"}).invoke(main, [*args, *connection], input=input,
                                                        catch_exceptions=False)

    return invoke


def _uncut(text: str) -> None:
    assert "…" not in text, text


def test_show_at_80_columns_keeps_every_url_and_id_whole(narrow: Run, ingested: Run) -> None:  # noqa: F811
    members = json.loads(ok(ingested("show", ORIGINAL_URL, "--json")))["members"]
    text = ok(narrow("show", ORIGINAL_URL))
    _uncut(text)
    for member in members:
        assert member["url"] in text and member["id"] in text and (member["title"] or "(no title)") in text


def test_dupes_at_80_columns_three_lines_a_copy_with_ids_and_titles(narrow: Run) -> None:
    text = ok(narrow("dupes"))
    _uncut(text)
    assert len(text.splitlines()) == 3 * 4 + 1
    for url in COPY_URLS:
        assert url in text
    assert ORIGINAL_URL in text and "The original" in text


def test_dupes_output_tsv_wide_and_json(narrow: Run) -> None:
    tsv = ok(narrow("dupes", "--output", "tsv")).splitlines()
    assert tsv[0].split("\t")[:4] == ["decided", "kind", "similarity", "containment"]
    assert len(tsv) == 5 and all(len(line.split("\t")) == len(tsv[0].split("\t")) for line in tsv)
    wide = ok(narrow("dupes", "--output", "wide")).splitlines()
    assert sum(1 for line in wide if any(url in line for url in COPY_URLS)) == 4
    assert json_lines(narrow("dupes", "--output", "json")) == json_lines(narrow("dupes", "--json"))


def test_status_at_80_columns_crops_nothing(narrow: Run) -> None:
    text = ok(narrow("status"))
    _uncut(text)
    assert "11 articles in 6 clusters: 6 canonical, 4 duplicates" in text


def test_queue_peek_shows_each_entry_id_whole(narrow: Run, ingested: Run) -> None:  # noqa: F811
    entries = json_lines(ingested("queue", "peek", "3", "--json"))
    text = ok(narrow("queue", "peek", "3"))
    _uncut(text)
    for entry in entries:
        assert entry["stream_id"] in text and entry["url"] in text
    assert len({entry["stream_id"] for entry in entries}) == 3


@pytest.mark.parametrize("since, expected", [("1h", 4), ("2000-01-01", 4), ("2000-01-01T00:00:00+02:00", 4),
                                             ("2999-01-01 10:00", 0)])
def test_since_takes_relative_and_absolute_times(ingested: Run, since: str, expected: int) -> None:  # noqa: F811
    assert len(json_lines(ingested("dupes", "--since", since, "--json"))) == expected
    exported = [line for line in ok(ingested("export", "--since", since, "--duplicates-only")).splitlines() if line]
    assert len(exported) == expected
    peeked = json_lines(ingested("queue", "peek", "--since", since, "--json"))
    assert len(peeked) == (6 if expected else 0)


def test_since_refuses_what_is_neither_a_duration_nor_a_date(ingested: Run) -> None:  # noqa: F811
    result = ingested("export", "--since", "yesterday-ish")
    assert result.exit_code == 2 and "ISO date" in result.output


def test_export_takes_json_and_keeps_its_format(ingested: Run) -> None:  # noqa: F811
    assert ok(ingested("export", "--json")) == ok(ingested("export"))
    assert {"url", "cluster", "canonical_url", "is_canonical", "duplicate_of", "similarity", "kind"} <= set(
        json.loads(ok(ingested("export")).splitlines()[0]))


def test_override_needs_a_reason_and_dry_run_changes_nothing(ingested: Run, redis_client: redis.Redis,  # noqa: F811
                                                             key_prefix: str) -> None:
    before = snapshot(redis_client, key_prefix)
    for reason in ([], ["--reason", ""], ["--reason", "   "]):
        refused = ingested("override", "merge", ORIGINAL_URL, SECOND_URL, *reason)
        assert refused.exit_code == 2 and "reason" in refused.output
    planned = ok(ingested("override", "merge", ORIGINAL_URL, SECOND_URL, "--reason", "same story", "--dry-run"))
    assert "would merge cluster" in planned and "dry run: nothing changed" in planned
    assert "would split" in ok(ingested("override", "split", COPY_URLS[2], "--reason", "own", "--dry-run"))
    assert snapshot(redis_client, key_prefix) == before


def test_merge_says_which_member_it_made_canonical(ingested: Run) -> None:  # noqa: F811
    text = ok(ingested("override", "merge", SECOND_URL, ORIGINAL_URL, "--reason", "one story"))
    show = json.loads(ok(ingested("show", ORIGINAL_URL, "--json")))
    canonical = show["canonical"]["url"]
    line = next(line for line in text.splitlines() if "canonical of the merged cluster" in line)
    assert canonical in line
    which = {ORIGINAL_URL: "B itself", SECOND_URL: "A itself"}.get(canonical, "another member")
    assert which in line and "chosen because" in text


def test_override_log_since_and_tsv(ingested: Run) -> None:  # noqa: F811
    ok(ingested("override", "promote", COPY_URLS[0], "--reason", "the farm ran it first"))
    assert "the farm ran it first" in ok(ingested("override", "log", "--since", "1h"))
    assert ok(ingested("override", "log", "--since", "2999-01-01")).startswith("no overrides since")
    tsv = ok(ingested("override", "log", "--output", "tsv")).splitlines()
    assert tsv[0].startswith("id\tat\twho\taction") and COPY_URLS[0] in tsv[1]


def test_check_with_source_accepts_a_page_on_the_host_of_that_sources_feed(ingested: Run, pages: str,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """The crawler fetches an article on its listing feed's own host (any port) for that source."""
    config = tmp_path / "sources.toml"
    config.write_text(f'[[sources]]\nname = "local"\nfeeds = ["{pages}/feed.xml"]\n')
    refused = ingested("check", f"{pages}/copy.html")
    assert refused.exit_code == 1 and "refused" in refused.output
    result = json.loads(ok(ingested("check", f"{pages}/copy.html", "--source", "local", "--config", str(config),
                                    "--json")))
    assert result["decision"]["canonical_url"] == ORIGINAL_URL


def test_status_computes_consumer_lag_on_the_embedded_redis(tmp_path: Path) -> None:
    """The embedded Redis is 6.2, whose XINFO GROUPS has no lag: status counts it."""
    data_dir = ["--data-dir", str(tmp_path / "state")]
    records = _jsonl(tmp_path / "records.jsonl", _records())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*NEWSDEDUP, *args, *data_dir], capture_output=True, text=True, timeout=180,
                              check=False)

    assert cli("ingest", str(records), "--workers", "1").returncode == 0
    consumed = cli("queue", "consume", "--group", "search", "--count", "2")
    assert consumed.returncode == 0 and len(consumed.stdout.splitlines()) == 2
    report = json.loads(cli("status", "--json").stdout)
    group = report["stream"]["groups"][0]
    assert group["lag"] == report["stream"]["length"] - 2
    assert re.search(r"group search\s+1 consumer, 0 pending, lag 4", cli("status").stdout)


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run newsdedup with a pseudo-terminal as stdin and stdout; what it wrote there."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        os.execve(NEWSDEDUP[0], [*NEWSDEDUP, *args], env)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def test_long_output_goes_through_the_pager_on_a_terminal_only(ingested: Run, redis_server_url: str,  # noqa: F811
                                                              key_prefix: str, tmp_path: Path) -> None:
    import os

    paged = tmp_path / "paged.txt"
    pager = tmp_path / "pager"
    pager.write_text(f"#!/bin/sh\ncat > {paged}\n")
    pager.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")}
    env.update(PAGER=str(pager), COLUMNS="80", LINES="24", NEWSDEDUP_REDIS_URL=redis_server_url,
               NEWSDEDUP_REDIS_PREFIX=key_prefix)
    diff = ["show", ORIGINAL_URL, "--diff", COPY_URLS[2]]
    screen = _on_a_terminal(diff, env)
    assert "only in this member" in paged.read_text() and "only in this member" not in screen
    assert len(paged.read_text().splitlines()) > 24
    paged.unlink()
    short = _on_a_terminal(["queue", "peek", "1"], env)
    assert not paged.exists() and "words" in short
    piped = ok(ingested(*diff))
    assert "only in this member" in piped and not paged.exists()
