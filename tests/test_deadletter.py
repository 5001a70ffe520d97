"""dedup.deadletter and `newsdedup dead`: a record that cannot be decided is kept with its error, fails
only itself, and can be listed, retried after a fix and dropped. Real Redis, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from dedup.article import Article
from dedup.deadletter import DeadLetters, article_of, decide_each, record_of, server_trouble
from dedup.engine import Engine
from dedup.keys import Keys
from tests.conftest import _start_private_redis
from tests.textcases import articles, wrapped_copy

BAD_PORT = "http://example.org:99999/x"


class PoisonText(str):
    """Text that passes validation but makes fingerprinting raise: a stand-in for a page that trips a bug."""

    def splitlines(self, keepends: bool = False) -> list[str]:
        raise RuntimeError("this page trips a bug")


def newsdedup(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "import sys; from crawler.cli import main; sys.exit(main())", *args]
    env = {**os.environ, "COLUMNS": "200"}  # wide enough for whole URLs in the tables
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=env)


def test_a_record_round_trips_verbatim_even_with_lone_surrogates(redis_client: redis.Redis, key_prefix: str) -> None:
    dead = DeadLetters(redis_client, Keys(key_prefix))
    article = Article(url="https://a.example/x", text="text \ud800 \x00 \u202e", title="T", source="feeds")
    entry_id = dead.add(article, ValueError("bad\nthing \ud800"), stage="decide", origin="source feeds")
    [letter] = dead.read()
    assert letter.id == entry_id and letter.stage == "decide" and letter.attempts == 1
    assert letter.error == "ValueError: bad thing \\ud800"  # one line, printable
    assert article_of(letter.record) == article
    assert dead.get([entry_id, "1-1"]) == [letter]
    assert dead.count() == 1 and dead.drop([entry_id]) == 1 and dead.count() == 0
    with pytest.raises(ValueError):
        article_of({})


def test_decide_each_isolates_the_record_that_fails(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    (url, body), (other_url, other_body) = articles()[0], articles()[1]
    batch = [
        Article(url=url, text=body),
        Article(url="https://poison.example/x", text=PoisonText("a page that trips a bug")),
        Article(url="https://copy.example/x", text=wrapped_copy(body)),
        Article(url=other_url, text=other_body),
    ]
    results = decide_each(engine, batch)
    assert isinstance(results[1], RuntimeError)
    first, copy, other = results[0], results[2], results[3]
    assert not isinstance(first, Exception) and first.is_canonical
    assert not isinstance(copy, Exception) and copy.canonical_id == first.article_id
    assert not isinstance(other, Exception) and other.is_canonical
    assert engine.get_by_url("https://poison.example/x") is None


def test_retry_decides_what_now_works_and_keeps_what_still_fails(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    engine = Engine(redis_client, keys)
    dead = DeadLetters(redis_client, keys)
    url, body = articles()[0]
    fixed = dead.add(Article(url=url, text=body), "RuntimeError: a bug since fixed", stage="decide", origin="x")
    broken = dead.add(record_of(Article(url=BAD_PORT, text=body)), "url: Port out of range", stage="validate",
                      origin="ingest f line 3")
    outcomes = {letter.id: outcome for letter, outcome in dead.retry(engine, dead.get([fixed, broken]))}
    decision = outcomes[fixed]
    assert not isinstance(decision, str) and decision.is_canonical and engine.get_by_url(url) is not None
    assert isinstance(outcomes[broken], str) and "Port out of range" in outcomes[broken]
    [left] = dead.read()
    assert left.id != broken and left.attempts == 2 and left.stage == "validate" and left.url == BAD_PORT
    assert left.origin == "ingest f line 3"


def test_dead_cli_lists_retries_and_drops(redis_server_url: str, redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    Engine(redis_client, keys)
    dead = DeadLetters(redis_client, keys)
    url, body = articles()[0]
    good = dead.add(Article(url=url, text=body), "RuntimeError: a bug since fixed", stage="decide", origin="feeds")
    bad = dead.add(Article(url=BAD_PORT, text="x \ud800"), "url: Port out of range", stage="validate", origin="f")
    target = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]

    listed = newsdedup("dead", "list", "--json", *target)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["id"] for row in rows] == [bad, good]  # newest first
    assert rows[0]["record"]["text"] == "x \ud800" and rows[0]["url"] == BAD_PORT
    table = newsdedup("dead", *target)
    assert table.returncode == 0 and "2 records not decided" in table.stdout and BAD_PORT in table.stdout
    status = newsdedup("status", "--json", *target)
    assert status.returncode == 0 and json.loads(status.stdout)["dead_letters"] == 2
    assert "Dead letters" in newsdedup("status", *target).stdout

    assert newsdedup("dead", "retry", *target).returncode == 2  # neither ids nor --all
    unknown = newsdedup("dead", "retry", "1-1", *target)
    assert unknown.returncode == 1 and "no dead letter 1-1" in unknown.stderr
    retried = newsdedup("dead", "retry", "--all", "--json", *target)
    assert retried.returncode == 3, retried.stderr
    outcome = {row["id"]: row for row in map(json.loads, retried.stdout.splitlines())}
    assert outcome[good]["decided"] and outcome[good]["kind"] == "canonical"
    assert not outcome[bad]["decided"] and "Port out of range" in outcome[bad]["error"]
    assert DeadLetters(redis_client, keys).count() == 1

    dropped = newsdedup("dead", "drop", "--all", "--json", *target)
    assert dropped.returncode == 0 and json.loads(dropped.stdout)["dropped"] == 1
    assert newsdedup("dead", "list", "--json", *target).stdout == ""


def test_ingest_into_a_full_redis_is_one_error_not_dead_letters(tmp_path: Path) -> None:
    proc, url = _start_private_redis(tmp_path)
    try:
        client = redis.Redis.from_url(url)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")
        records = tmp_path / "records.jsonl"
        records.write_text(json.dumps({"url": "https://a.example/x", "text": articles()[0][1]}) + "\n")
        result = newsdedup("ingest", str(records), "--workers", "1", "--redis-url", url)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("Error: Redis refused a write") and "Traceback" not in result.stderr
        client.config_set("maxmemory", "0")
        assert client.dbsize() == 0  # nothing half-written, nothing dead-lettered
        client.close()
    finally:
        proc.kill()
        proc.wait(10)


def test_server_trouble_inside_a_script_is_no_record_fault(tmp_path: Path) -> None:
    """An out-of-memory Redis refusing a script's write is server trouble, however the error is wrapped."""
    proc, url = _start_private_redis(tmp_path)
    client = redis.Redis.from_url(url)
    try:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")
        with pytest.raises(redis.ResponseError) as plain:
            client.set("k", "v")
        with pytest.raises(redis.ResponseError) as scripted:
            client.eval("return redis.call('SET', KEYS[1], 'v')", 1, "k")
        with pytest.raises(redis.ResponseError) as wrong:
            client.eval("return redis.call('INCR', KEYS[1], 'extra')", 1, "k")
        assert server_trouble(plain.value) and server_trouble(scripted.value)
        assert not server_trouble(wrong.value)
    finally:
        client.close()
        proc.kill()
        proc.wait(10)
