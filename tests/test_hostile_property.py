"""Property: no hostile page or record stops the pipeline (Hypothesis).

Generated pages (links naming impossible ports, NUL bytes, lone surrogates, bidi and zero-width
characters, wrong or absurd charsets, stray binary, long texts) and records go through extraction,
the engine, `ingest`, `export`, `show`, `explain` and `check` (against a loopback HTTP server). No
exception escapes; every record is decided, skipped or dead-lettered with a reason; the good records
interleaved with the bad ones are all decided. The example budget is small on purpose (CI).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import pytest
import redis
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.cli import main
from crawler.extract import extract_article
from dedup.deadletter import DeadLetters
from dedup.engine import Engine
from dedup.keys import Keys
from tests.sites.hostile import HostileServer, Route
from tests.sites.newsroom import story_text

SETTINGS = settings(max_examples=15, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])
NASTY_CHARS = ["\x00", "\ud800", "\udfff", "\ud83d", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\r", "\x85",
               "\u2028", "\x1b", "\x7f", "\ufffd", "\uffff", "ﷺ", "𝕏", "ü", "語", "\u0301"]
BAD_URLS = ["http://example.org:99999/x", "http://example.org:-1/x", "http://example.org:abc/", "http://[::1",
            "http://[::ffff:127.0.0.31]:9151/x", "https://", "http:///path", "//no-scheme.example/x", "mailto:a@b",
            "javascript:alert(1)", "http://exa mple.org/", "http://\x00.org/", "http://example.org/\ud800",
            "http://" + "a" * 64 + ".org/", "http://xn--.org/", "http://Bücher.de/ß", "http://a..b/",
            "http://example.org:65536/", "http://example.org:0/", "  http://example.org/padded  "]

nasty_text = st.text(st.one_of(st.characters(), st.sampled_from(NASTY_CHARS)), max_size=300)
urls = st.one_of(st.sampled_from(BAD_URLS), st.text(max_size=40),
                 st.builds("http://{}:{}/{}".format, st.sampled_from(["example.org", "127.0.0.1", "[::1]", "ü.de"]),
                           st.integers(-5, 200_000), st.text(max_size=10)))


@st.composite
def long_text(draw: st.DrawFn) -> str:
    """Real-looking article text, now and then made very long, with nasty characters sprinkled in."""
    text = story_text(draw(st.integers(0, 10_000)))
    # 500 copies: about 1.3 MB, past the engine's text limit (a 5 MB page is in test_service_hostile).
    text *= draw(st.sampled_from([1, 1, 1, 3, 500]))
    for char in draw(st.lists(st.sampled_from(NASTY_CHARS), max_size=6)):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + char + text[at:]
    return text


@st.composite
def hostile_page(draw: st.DrawFn) -> tuple[bytes, str]:
    """(body, Content-Type) of a page whose every field is hostile, with or without real text."""
    def attr(value: str) -> str:
        return value.replace("'", "&#39;")

    title = draw(nasty_text)
    body = draw(st.one_of(long_text(), nasty_text))
    html = (f"<html><head><meta charset='{draw(st.sampled_from(['utf-8', 'latin-1', 'utf-16', 'x-bogus', '']))}'>"
            f"<title>{title}</title><link rel=canonical href='{attr(draw(urls))}'>"
            f"<meta property='og:url' content='{attr(draw(urls))}'><base href='{attr(draw(urls))}'>"
            f"<meta name='article:published_time' content='{draw(st.sampled_from(['0001-01-01', '9999-12-31', 'x']))}'>"
            f"</head><body><article><h1>{title}</h1>"
            + "".join(f"<p>{paragraph}</p>" for paragraph in body.split("\n"))
            + f"<p>Source: <a href='{attr(draw(urls))}'>Read Full Article</a></p></article></body></html>")
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "cp1252", "utf-32-le"]))
    data = html.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    junk = draw(st.binary(max_size=40))
    at = draw(st.integers(0, len(data)))
    data = data[:at] + junk + data[at:]
    content_type = draw(st.sampled_from(["text/html", "text/html; charset=utf-8", "text/html; charset=nonsense",
                                         "text/html; charset=utf-16", "application/octet-stream"]))
    return data, content_type


@st.composite
def hostile_record(draw: st.DrawFn) -> str:
    """One JSON Lines record for `ingest`: any field hostile, or not a record at all."""
    kind = draw(st.sampled_from(["text", "text", "html", "raw"]))
    if kind == "raw":
        return draw(st.sampled_from(["not json", "[1, 2]", "{}", '{"url": 5}', '{"url": "http://x.org/", "text": 7}',
                                     '{"url": "http://example.org:99999/x", "html": "\\u0000\\u0001"}']))
    record: dict[str, object] = {"url": draw(st.one_of(urls, st.just(f"https://ok.example/{uuid.uuid4().hex}")))}
    if kind == "html":
        body, _ = draw(hostile_page())
        record["html"] = body.decode("utf-8", "surrogateescape")
    else:
        record["text"] = draw(st.one_of(long_text(), nasty_text))
    record["title"] = draw(st.one_of(nasty_text, st.integers(), st.none()))
    record["published"] = draw(st.one_of(st.sampled_from(["0001-01-01T00:00:00", "9999-12-31T23:59:59Z",
                                                          "Tue, 31 Feb 2020 25:00:00 +9999", "yesterday"]),
                                         st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
                                         .map(lambda d: d.isoformat()), st.integers()))
    return json.dumps(record)  # ASCII escapes: lone surrogates survive as "\ud800"


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    hostile = HostileServer("127.0.0.63").start()
    yield hostile
    hostile.stop()


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"newsdedup {args[0]} raised") from result.exception
    return result


def assert_clean_exit(result: Result, *allowed: int) -> None:
    """Exit in `allowed`; an error is one `Error:` line, never a traceback."""
    assert result.exit_code in allowed, (result.exit_code, result.output[-2000:])
    if result.exit_code == 1:
        assert result.output.strip().startswith("Error:") and "Traceback" not in result.output, result.output


class Prefix:
    """A key prefix of one example, its keys deleted afterwards (fixtures run once per test, not per example)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.prefix = f"newsdedup-test-{uuid.uuid4().hex[:12]}:"
        self.target = ["--redis-url", url, "--key-prefix", self.prefix]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start : start + 500])
        self.client.close()


@SETTINGS
@given(bad=st.lists(hostile_record(), min_size=1, max_size=5))
def test_ingest_decides_good_records_among_hostile_ones(bad: list[str], redis_server_url: str, tmp_path: Path) -> None:
    good = [{"url": f"https://good.example/{uuid.uuid4().hex}", "text": story_text(20_000 + n)} for n in range(3)]
    lines = [json.dumps(good[0]), *bad[:2], json.dumps(good[1]), *bad[2:], json.dumps(good[2])]
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with Prefix(redis_server_url) as where:
        result = invoke("ingest", str(path), "--workers", "1", "--json", "--quiet", *where.target)
        assert_clean_exit(result, 0, 3)
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        decided = {row["url"]: row for row in rows if not row.get("failed")}
        failed = [row for row in rows if row.get("failed")]
        skipped = result.stderr.count(": skipped: ")
        assert len(rows) + skipped == len(lines), result.stderr  # each record decided, failed or skipped
        for record in good:
            assert record["url"] in decided, (record["url"], result.stderr)
        assert (result.exit_code == 3) == bool(failed)
        letters = DeadLetters(where.client, Keys(where.prefix)).read()
        assert len(letters) == len(failed) and all(letter.error for letter in letters)

        exported = invoke("export", *where.target)
        assert_clean_exit(exported, 0)
        urls = {json.loads(line)["url"] for line in exported.stdout.splitlines()}
        assert {record["url"] for record in good} <= urls
        for url in list(urls)[:4]:
            assert_clean_exit(invoke("show", url, "--json", *where.target), 0)
            assert_clean_exit(invoke("explain", good[0]["url"], url, "--json", *where.target), 0)


@SETTINGS
@given(page=hostile_page())
def test_hostile_pages_through_extraction_engine_and_check(
    page: tuple[bytes, str], server: HostileServer, redis_server_url: str,
) -> None:
    body, content_type = page
    path = f"/p/{uuid.uuid4().hex}.html"
    server.add(path, Route(body=body, content_type=content_type))
    url = server.url(path)
    with Prefix(redis_server_url) as where:
        engine = Engine(where.client, Keys(where.prefix))  # the index exists, for `check`
        article = extract_article(body, url, fetched_at=datetime.now(UTC))
        if article is not None:
            assert article.url == url
            article.text.encode("utf-8")  # strict: nothing undecodable reaches the engine
            article.title.encode("utf-8")
            decision = engine.add(article)
            assert decision.url == url and not decision.known
        checked = invoke("check", url, "--allow-network", "127.0.0.0/8", "--json", *where.target)
        assert_clean_exit(checked, 0, 1)
        if checked.exit_code == 0:
            report = json.loads(checked.stdout)
            assert report["page"]["url"] == url and report["known"] == (article is not None)
