"""The operator commands (status, dupes, show, check, explain, override, queue) through `newsdedup`,
against a real Redis holding decisions made by ingesting real text, and a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
from click.testing import CliRunner, Result

from crawler.cli import main
from dedup.article import Article
from dedup.engine import Engine
from dedup.keys import Keys
from tests.textcases import articles, edited, excerpt, paragraphs, wrapped_copy

ORIGINAL_URL, ORIGINAL = articles()[0]
SECOND_URL, SECOND = articles()[1]
COPIES = {
    "https://farm.example/0": wrapped_copy(ORIGINAL),
    "https://digest.example/0": excerpt(ORIGINAL),
    "https://edit.example/0": edited(ORIGINAL, seed=2),
    "https://mirror.example/1": SECOND,
}
Run = Callable[..., Result]


def _records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [
        {"url": ORIGINAL_URL, "text": ORIGINAL, "title": "The original", "published": "2019-11-19T10:00:00Z"},
        {"url": SECOND_URL, "text": SECOND, "title": "Another story", "published": "2019-11-19T11:00:00Z"},
    ]
    records += [{"url": url, "text": text} for url, text in COPIES.items()]
    records += [{"url": url, "text": text} for url, text in articles()[2:6]]
    records.append({"url": "https://brief.example/thin", "text": "Just a few words here."})
    return records


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    return path


@pytest.fixture
def run(redis_server_url: str, key_prefix: str) -> Run:
    """Invoke `newsdedup ARGS... --redis-url URL --key-prefix PREFIX`; the result, exit code unchecked."""

    def invoke(*args: str, input: str | bytes | None = None, connect: bool = True) -> Result:
        connection = ["--redis-url", redis_server_url, "--key-prefix", key_prefix] if connect else []
        return CliRunner().invoke(main, [*args, *connection], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def ingested(run: Run, tmp_path: Path) -> Run:
    """`run`, after `newsdedup ingest` of two stories, four copies, four other articles and a thin page."""
    result = run("ingest", str(_jsonl(tmp_path / "records.jsonl", _records())), "--workers", "1")
    assert result.exit_code == 0, result.output
    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(result).splitlines() if line.startswith("{")]


def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, bytes | None]:
    return {key: client.dump(key) for key in sorted(client.scan_iter(match=prefix + "*"))}


# status

def test_status_shows_totals_stream_index_and_memory(ingested: Run, redis_client: redis.Redis,
                                                     key_prefix: str) -> None:
    report = json.loads(ok(ingested("status", "--json")))
    totals = report["totals"]
    assert totals["articles"] == 11 and totals["thin"] == 1
    assert totals["duplicates"] == {"exact": 1, "near": 2, "excerpt": 1} or sum(totals["duplicates"].values()) == 4
    assert totals["canonicals"] == 6 and totals["clusters"] == 6
    assert totals["duplicate_rate"] == pytest.approx(0.4)
    assert report["stream"]["length"] == 6 and report["instances"] == []
    assert report["index"]["buckets"] > 0 and report["redis"]["used_memory"] > 0
    text = ok(ingested("status"))
    assert "Instances: none has a heartbeat" in text and "Decisions" in text and "6 entries" in text


def test_status_lists_an_instance_and_a_source_from_the_service_keys(ingested: Run, redis_client: redis.Redis,
                                                                     key_prefix: str) -> None:
    # The shapes crawler/service.py writes: a heartbeat per instance, a state hash per source.
    import time

    keys = Keys(key_prefix)
    now = time.time()
    redis_client.hset(keys.instances, "host-a:4242", json.dumps(
        {"host": "host-a", "pid": 4242, "started": now - 3600, "seen": now - 2, "crawling": ["wires"]}))
    redis_client.hset(keys.source_state("wires"), mapping={
        "last_finished": f"{now - 60:.3f}", "last_outcome": "ok", "last_instance": "host-a:4242",
        "last_counts": json.dumps({"articles_fetched": 12, "extracted": 11}), "etag:https://x.example/feed": "W/1"})
    report = json.loads(ok(ingested("status", "--json")))
    (instance,) = report["instances"]
    assert instance["alive"] and instance["uptime"] >= 3600 and instance["crawling"] == ["wires"]
    (source,) = report["sources"]
    assert source["name"] == "wires" and source["last_outcome"] == "ok" and source["last_counts"]["extracted"] == 11
    text = ok(ingested("status"))
    assert "host-a:4242" in text and "wires" in text and "1h" in text


def test_status_watch_refreshes(ingested: Run) -> None:
    reports = json_lines(ingested("status", "--watch", "--json", "--interval", "0.1", "--times", "2"))
    assert len(reports) == 2 and reports[0]["totals"] == reports[1]["totals"]
    assert "Decisions" in ok(ingested("status", "--watch", "--interval", "0.1", "--times", "2"))


def test_status_of_an_empty_index_says_so(run: Run) -> None:
    report = json.loads(ok(run("status", "--json")))
    assert report["empty"] and report["totals"]["articles"] == 0
    assert "Nothing decided yet" in ok(run("status"))


# dupes

def test_dupes_lists_recent_copies_newest_first_with_filters(ingested: Run) -> None:
    rows = json_lines(ingested("dupes", "--json"))
    assert [row["url"] for row in rows] == list(reversed(COPIES))
    by_url = {row["url"]: row for row in rows}
    assert by_url["https://digest.example/0"]["kind"] == "excerpt"
    assert by_url["https://digest.example/0"]["canonical_url"] == ORIGINAL_URL
    assert by_url["https://mirror.example/1"]["kind"] == "exact"
    assert by_url["https://mirror.example/1"]["canonical_url"] == SECOND_URL
    assert [r["url"] for r in json_lines(ingested("dupes", "--json", "--kind", "excerpt"))] == \
        ["https://digest.example/0"]
    similar = json_lines(ingested("dupes", "--json", "--min-similarity", "0.9"))
    assert similar and all(r["similarity"] >= 0.9 for r in similar)
    assert len(json_lines(ingested("dupes", "--json", "--limit", "2", "--since", "1h"))) == 2
    assert json_lines(ingested("dupes", "--json", "--source", "nowhere")) == []
    table = ok(ingested("dupes"))
    assert "excerpt" in table and "digest.example" in table
    assert "no duplicate decisions match" in ok(ingested("dupes", "--source", "nowhere"))


# show

def test_show_a_cluster_with_its_canonical_members_and_reason(ingested: Run) -> None:
    cluster = json.loads(ok(ingested("show", "https://digest.example/0", "--json")))
    assert cluster["canonical"]["url"] == ORIGINAL_URL
    assert cluster["reason_text"]
    kinds = {m["url"]: m["role"] for m in cluster["members"]}
    assert kinds == {ORIGINAL_URL: "canonical", "https://farm.example/0": kinds["https://farm.example/0"],
                     "https://digest.example/0": "excerpt", "https://edit.example/0": "near"}
    by_id = json.loads(ok(ingested("show", cluster["canonical"]["id"], "--json")))
    assert by_id["cluster"] == cluster["cluster"]
    text = ok(ingested("show", ORIGINAL_URL))
    assert "The original" in text and "excerpt" in text and cluster["reason_text"][:20] in text
    thin = ok(ingested("show", "https://brief.example/thin"))
    assert "too little text" in thin


def test_show_diff_marks_shared_and_differing_passages(ingested: Run) -> None:
    diff = json.loads(ok(ingested("show", ORIGINAL_URL, "--diff", "https://digest.example/0", "--json")))
    ops = [row["op"] for row in diff["rows"]]
    assert ops[0] == "same" and "only_a" in ops  # the excerpt is the opening, the rest only in the canonical
    assert all(row["member"] == "" for row in diff["rows"] if row["op"] == "only_a")
    text = ok(ingested("show", ORIGINAL_URL, "--diff", "https://edit.example/0"))
    assert "=" in text and "~" in text and "only in the canonical" in text
    outside = ingested("show", ORIGINAL_URL, "--diff", SECOND_URL)
    assert outside.exit_code == 1 and "not in cluster" in outside.output


# check

class _Pages(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}
    redirects: ClassVar[dict[str, str]] = {}
    requested: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requested.append(self.path)
        if self.path in self.redirects:
            self.send_response(302)
            self.send_header("Location", self.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path not in self.pages:
            self.send_error(404)
            return
        content_type, body = self.pages[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _html(title: str, text: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs(text))
    return (f"<!doctype html><html><head><title>{title}</title></head><body><nav>Home | World | Sport</nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>(c) Example News</footer></body></html>").encode()


@pytest.fixture
def pages() -> Iterator[str]:
    """A local HTTP server with an HTML copy, a plain-text new article, redirects and a 404."""
    _Pages.pages = {
        "/copy.html": ("text/html; charset=utf-8", _html("The original, republished", ORIGINAL)),
        "/new.txt": ("text/plain; charset=utf-8", articles()[7][1].encode()),
    }
    _Pages.redirects = {"/moved": "/copy.html", "/to-metadata": "http://169.254.169.254/latest/meta-data/"}
    _Pages.requested = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_check_shows_the_would_be_decision_without_changing_anything(
        ingested: Run, pages: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path) -> None:
    before = snapshot(redis_client, key_prefix)
    result = json.loads(ok(ingested("check", f"{pages}/copy.html", "--json", "--allow-network", "127.0.0.0/8")))
    assert result["decision"]["status"] == "dup" and result["decision"]["kind"] in ("near", "exact")
    assert result["decision"]["canonical_url"] == ORIGINAL_URL
    assert result["matches"][0]["url"] == ORIGINAL_URL and result["page"]["title"]
    fresh = json.loads(ok(ingested("check", f"{pages}/new.txt", "--json", "--allow-network", "127.0.0.0/8")))
    assert fresh["decision"]["status"] == "new" and not fresh["known"]
    excerpt_file = tmp_path / "excerpt.txt"
    excerpt_file.write_text(excerpt(SECOND), "utf-8")
    from_file = json.loads(ok(ingested("check", str(excerpt_file), "--url", "https://other.example/x", "--json")))
    assert from_file["decision"]["kind"] == "excerpt" and from_file["page"]["site"] == "other.example"
    from_stdin = json.loads(ok(ingested("check", "-", "--json", input=COPIES["https://edit.example/0"])))
    assert from_stdin["decision"]["canonical_url"] == ORIGINAL_URL
    stored = json.loads(ok(ingested("check", "-", "--url", "https://digest.example/0", "--json",
                                    input=COPIES["https://digest.example/0"])))
    assert stored["known"] and stored["stored"]["kind"] == "excerpt"
    table = ok(ingested("check", f"{pages}/copy.html", "--allow-network", "127.0.0.0/8"))
    assert "The engine would decide" in table and ORIGINAL_URL[:40] in table
    assert snapshot(redis_client, key_prefix) == before
    missing = ingested("check", f"{pages}/missing.html", "--allow-network", "127.0.0.0/8")
    assert missing.exit_code == 1 and "HTTP 404" in missing.output


def test_check_refuses_internal_addresses_unless_allowed(ingested: Run, pages: str, tmp_path: Path) -> None:
    for url, why in ((f"{pages}/copy.html", "127.0.0.1: loopback address"),
                     ("http://169.254.169.254/latest/meta-data/", "cloud metadata service"),
                     ("http://10.1.2.3/story.html", "private address"),
                     ("http://[::ffff:127.0.0.1]:9/x", "loopback address")):
        refused = ingested("check", url, "--json")
        assert refused.exit_code == 1 and refused.stdout == "", refused.output
        assert refused.stderr.startswith(f"Error: {url}: refused: ") and why in refused.stderr
        assert refused.stderr.count("\n") == 1 and "--allow-network" in refused.stderr
    assert _Pages.requested == []  # refused before any connection
    # Allowed networks come from a configured source (as for the crawler) or the flag.
    config = tmp_path / "sources.toml"
    config.write_text(f'''
[[sources]]
name = "local-web"
feeds = ["{pages}/feed.xml"]
allow_networks = ["127.0.0.0/8"]
[[sources]]
name = "elsewhere"
feeds = ["https://feeds.example/rss.xml"]
allow_networks = ["10.0.0.0/8"]
''', "utf-8")
    allowed = json.loads(ok(ingested("check", f"{pages}/copy.html", "--config", str(config), "--source", "local-web",
                                     "--json")))
    assert allowed["decision"]["canonical_url"] == ORIGINAL_URL
    other = ingested("check", f"{pages}/copy.html", "--config", str(config), "--source", "elsewhere")
    assert other.exit_code == 1 and "loopback address" in other.stderr
    # Redirects are followed only where the guard allows.
    moved = json.loads(ok(ingested("check", f"{pages}/moved", "--allow-network", "127.0.0.1/32", "--json")))
    assert moved["page"]["final_url"] == f"{pages}/copy.html"
    bounced = ingested("check", f"{pages}/to-metadata", "--allow-network", "127.0.0.1/32")
    assert bounced.exit_code == 1 and bounced.stderr.count("\n") == 1
    assert bounced.stderr.startswith(f"Error: {pages}/to-metadata: refused: redirected to "
                                     "http://169.254.169.254/latest/meta-data/: ")
    assert "cloud metadata service" in bounced.stderr


def test_peek_predicts_exactly_what_add_decides(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    url, body = articles()[9]
    arrivals = [
        Article(url="https://farm.example/9", text=wrapped_copy(body)),
        Article(url="https://digest.example/9", text=excerpt(body)),
        Article(url=url, text=body, canonical_link=url),
        Article(url="https://edit.example/9", text=edited(body, seed=3)),
        Article(url=articles()[10][0], text=articles()[10][1]),
    ]
    for article in arrivals:
        peek = engine.peek(article)
        decision = engine.add(article)
        assert (peek.cluster, peek.canonical_id, peek.kind) == \
            (decision.cluster, decision.canonical_id, decision.kind), article.url
        assert peek.similarity == decision.similarity
        assert (decision.replaced is not None) == bool(peek.replaces)


# explain

def test_explain_two_stored_articles_and_two_files(ingested: Run, tmp_path: Path) -> None:
    pair = json.loads(ok(ingested("explain", ORIGINAL_URL, "https://digest.example/0", "--json")))
    assert pair["containment_b_in_a"] > 0.95 and pair["containment_a_in_b"] < 0.6
    assert 0 < pair["jaccard"] < 0.6 and abs(pair["estimated_jaccard"] - pair["jaccard"]) < 0.15
    assert pair["passages"] and pair["passages"][0]["words"] > 50 and pair["same_cluster"] is True
    assert pair["a"]["text"].startswith(paragraphs(ORIGINAL)[0][:30])
    apart = json.loads(ok(ingested("explain", ORIGINAL_URL, SECOND_URL, "--json")))
    assert apart["jaccard"] < 0.05 and apart["same_cluster"] is False
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(ORIGINAL, "utf-8")
    b.write_text(edited(ORIGINAL, seed=1), "utf-8")  # upper-cased and re-typeset: the same words
    files = json.loads(ok(ingested("explain", str(a), str(b), "--json")))
    assert files["jaccard"] > 0.7 and files["same_cluster"] is None
    text = ok(ingested("explain", ORIGINAL_URL, "https://edit.example/0"))
    assert "Jaccard, exact" in text and "Longest shared passages" in text


# override

def test_override_split_is_respected_by_later_ingests_and_on_the_stream(ingested: Run, tmp_path: Path) -> None:
    split = json.loads(ok(ingested("override", "split", "https://edit.example/0", "--reason", "own reporting",
                                   "--who", "alice", "--json")))
    assert split["action"] == "split" and split["who"] == "alice" and split["reason"] == "own reporting"
    assert split["events"][0]["event"] == "new" and split["events"][0]["url"] == "https://edit.example/0"
    peeked = json_lines(ingested("queue", "peek", "1", "--json"))
    assert peeked[0]["event"] == "new" and peeked[0]["url"] == "https://edit.example/0" and peeked[0]["text"]
    # A fresh copy of the split article joins it, not the cluster it was split from.
    copy = _jsonl(tmp_path / "later.jsonl", [{"url": "https://mirror.example/edited",
                                              "text": COPIES["https://edit.example/0"]}])
    ok(ingested("ingest", str(copy), "--workers", "1"))
    cluster = json.loads(ok(ingested("show", "https://mirror.example/edited", "--json")))
    assert cluster["canonical"]["url"] == "https://edit.example/0"
    assert {m["url"] for m in cluster["members"]} == {"https://edit.example/0", "https://mirror.example/edited"}
    assert cluster["overrides"][0]["id"] == split["id"]
    original = json.loads(ok(ingested("show", ORIGINAL_URL, "--json")))
    assert "https://edit.example/0" not in {m["url"] for m in original["members"]}
    assert "split" in ok(ingested("show", "https://edit.example/0"))


def test_override_promote_merge_undo_and_log(ingested: Run) -> None:
    promoted = ok(ingested("override", "promote", "https://farm.example/0", "--reason", "the farm ran it first"))
    assert "promoted https://farm.example/0" in promoted and "stream: replaced" in promoted
    assert json.loads(ok(ingested("show", ORIGINAL_URL, "--json")))["canonical"]["url"] == "https://farm.example/0"
    merged = json.loads(ok(ingested("override", "--json", "merge", ORIGINAL_URL, SECOND_URL, "--reason", "one story")))
    assert merged["action"] == "merge"
    assert len(json.loads(ok(ingested("show", SECOND_URL, "--json")))["members"]) == 6
    undone = ok(ingested("override", "undo", "--reason", "wrong call"))
    assert f"undid override #{merged['id']} (merge" in undone
    assert len(json.loads(ok(ingested("show", SECOND_URL, "--json")))["members"]) == 2
    ok(ingested("override", "undo", "1", "--reason", "wrong call"))
    assert json.loads(ok(ingested("show", ORIGINAL_URL, "--json")))["canonical"]["url"] == ORIGINAL_URL
    log = json_lines(ingested("override", "log", "--json"))
    assert [(e["action"], e["undone_by"]) for e in log] == [("promote", 4), ("merge", 3), ("undo", None),
                                                            ("undo", None)]
    assert "undo #1 (promote)" in ok(ingested("override"))
    again = ingested("override", "undo", "1", "--reason", "again")
    assert again.exit_code == 1 and "already undone" in again.output


def test_override_log_is_bounded_by_the_dedup_config(ingested: Run, tmp_path: Path) -> None:
    config = tmp_path / "bounded.toml"
    config.write_text("[dedup]\noverrides_maxlen = 2\n", "utf-8")
    bounded = ("--config", str(config))
    ok(ingested("override", "promote", "https://farm.example/0", "--reason", "r", *bounded))
    ok(ingested("override", "undo", "--reason", "r", *bounded))
    ok(ingested("override", "promote", "https://edit.example/0", "--reason", "r", *bounded))
    assert [e["id"] for e in json_lines(ingested("override", "log", "--json", *bounded))] == [2, 3]
    trimmed = ingested("override", "undo", "1", "--reason", "r", *bounded)
    assert trimmed.exit_code == 1 and trimmed.output.count("\n") == 1
    assert "override #1 was trimmed from the log (it keeps the newest 2 entries)" in trimmed.output
    assert "undid override #3 (promote" in ok(ingested("override", "undo", "3", "--reason", "r", *bounded))
    assert [e["id"] for e in json_lines(ingested("override", "log", "--json", *bounded))] == [3, 4]


# queue

def test_queue_info_peek_and_consume(ingested: Run) -> None:
    info = json.loads(ok(ingested("queue", "--json")))
    assert info["length"] == 6 and info["groups"] == [] and info["first"]["url"] == ORIGINAL_URL
    newest = json_lines(ingested("queue", "peek", "2", "--json"))
    oldest = json_lines(ingested("queue", "peek", "2", "--oldest", "--json"))
    assert [e["url"] for e in oldest] == [ORIGINAL_URL, SECOND_URL]
    assert newest[0]["stream_id"] > newest[1]["stream_id"]
    first = json_lines(ingested("queue", "consume", "--group", "search", "--count", "4"))
    rest = json_lines(ingested("queue", "consume", "--group", "search", "--block", "10"))
    assert [e["url"] for e in first + rest] == [e["url"] for e in json_lines(ingested("queue", "peek", "--oldest",
                                                                                        "--json"))]
    info = json.loads(ok(ingested("queue", "info", "--json")))
    (group,) = info["groups"]
    assert group["name"] == "search" and group["pending"] == 0 and group["lag"] == 0
    table = ok(ingested("queue"))
    assert "search" in table and "6 entries" in table
    assert "new" in ok(ingested("queue", "peek", "3"))


# user mistakes

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("args", [
    ["status"], ["dupes"], ["show", ORIGINAL_URL], ["check", "-"], ["explain", ORIGINAL_URL, SECOND_URL],
    ["override", "split", ORIGINAL_URL, "--reason", "r"], ["override", "undo", "--reason", "r"], ["queue"],
    ["queue", "peek"],
    ["queue", "consume", "--group", "g"],
])
def test_unreachable_redis_is_one_line_without_credentials(args: list[str]) -> None:
    url = f"redis://:s3cret@127.0.0.1:{_free_port()}/0"
    result = CliRunner().invoke(main, [*args, "--redis-url", url], input="text", catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: cannot reach Redis at")
    assert "s3cret" not in result.output


@pytest.mark.parametrize("args", [
    ["dupes"], ["show", ORIGINAL_URL], ["check", "-"], ["explain", ORIGINAL_URL, SECOND_URL],
    ["override", "split", ORIGINAL_URL, "--reason", "r"], ["override"], ["queue"], ["queue", "peek", "3"],
    ["queue", "consume", "--group", "g"],
])
def test_empty_index_is_one_line_and_nonzero(run: Run, args: list[str], redis_client: redis.Redis,
                                             key_prefix: str) -> None:
    result = run(*args, input="some text")
    assert result.exit_code == 1 and result.output.startswith("Error: nothing decided yet")
    assert result.output.count("\n") == 1
    assert snapshot(redis_client, key_prefix) == {}


@pytest.mark.parametrize("args, message", [
    (["show", "0123456789abcdef"], "no such article"),
    (["show", "not-an-id"], "neither an article id"),
    (["show", "https://nowhere.example/x"], "no such article"),
    (["show", ORIGINAL_URL, "--diff", "https://nowhere.example/x"], "no such article"),
    (["explain", ORIGINAL_URL, "https://nowhere.example/x"], "no such article"),
    (["check", "ftp://example.com/x"], "only http:// and https://"),
    (["check", "/no/such/file.html"], "no such file"),
    (["check", "http://127.0.0.1:9/x", "--allow-network", "127.0.0.1/32"], "cannot fetch"),
    (["check", "http://127.0.0.1:9/x", "--allow-network", "127.0.0.256/8"], "not a CIDR network"),
    (["check", "http://127.0.0.1:9/x", "--source", "nowhere"], "no source 'nowhere'"),
    (["dupes", "--since", "soon"], "not a duration"),
    (["override", "split", "https://nowhere.example/x", "--reason", "r"], "no such article"),
    (["override", "split", articles()[2][0], "--reason", "r"], "nothing to split"),
    (["override", "promote", "https://brief.example/thin", "--reason", "r"], "too little text"),
    (["override", "undo", "7", "--reason", "r"], "no override #7"),
])
def test_user_mistakes_are_one_clear_line(ingested: Run, args: list[str], message: str) -> None:
    result = ingested(*args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output
