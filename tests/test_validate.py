"""dedup.validate: every field a page supplies is checked where the article enters, through the real
engine and `newsdedup ingest` (the port-99999 link that used to stop everything)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from crawler.extract import extract_article
from dedup.article import Article
from dedup.deadletter import DeadLetters
from dedup.engine import Engine
from dedup.keys import Keys
from dedup.validate import _VALIDATED, MAX_TEXT_CHARS, MAX_TITLE_CHARS, InvalidArticle, check_url, validate
from tests.textcases import articles

BAD_PORT = "http://example.org:99999/x"
BAD_URLS = [BAD_PORT, "http://example.org:abc/x", "http://[::1", "ftp://example.org/x", "http://", "/relative/x",
            "http://exa mple.org/x", "http://example.org/\x00x", "http://example.org/\u202ex", "",
            "http://" + "a" * 70 + ".org/x", "http://example.org/" + "x" * 5000, "javascript:alert(1)"]
BODY = articles()[0][1]


def newsdedup(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-c", "import sys; from crawler.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, check=False, input=stdin, capture_output=True, timeout=180)


@pytest.mark.parametrize("url", BAD_URLS)
def test_check_url_refuses_what_cannot_be_identified(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url)


def test_check_url_keeps_real_urls() -> None:
    for url in ("https://www.example.org/a/b?c=1#d", "http://127.0.0.1:8080/x", "http://[::1]:9151/x",
                "https://bücher.de/straße", "https://xn--bcher-kva.de/x"):
        assert check_url(f"  {url} ") == url


@pytest.mark.parametrize("field", ["canonical_link", "source_link", "final_url"])
def test_a_bad_link_is_dropped_with_its_reason_and_the_article_kept(field: str) -> None:
    checked = validate(Article(url="https://a.example/story", text=BODY, **{field: BAD_PORT}))
    assert getattr(checked.article, field) is None
    assert checked.article.text == BODY
    assert len(checked.dropped) == 1 and checked.dropped[0].startswith(f"{field} dropped: Port out of range")
    assert BAD_PORT in checked.dropped[0]


def test_a_bad_own_url_refuses_the_article_with_a_reason() -> None:
    with pytest.raises(InvalidArticle, match=r"^url: Port out of range.*example\.org:99999"):
        validate(Article(url=BAD_PORT, text=BODY))


def test_text_and_title_are_cleaned_of_what_carries_no_text() -> None:
    dirty = "Zero\u200bwidth, bidi \u202eoverride\u202c, NUL\x00, lone \ud800 surrogate,\r\nCRLF \x1b[31m"
    checked = validate(Article(url="https://a.example/x", text=dirty, title=" A\ttitle\n\x00with\u2066 junk "))
    text = checked.article.text
    assert text == "Zerowidth, bidi override, NUL, lone  surrogate,\nCRLF [31m"
    assert checked.article.title == "A title with junk"
    text.encode("utf-8")  # strict: no lone surrogate survives
    # Scripts and the joiners they need are kept.
    kept = "नमस्ते दुनिया — مرحبا بالعالم — 你好世界 — می‌خواهم — 👨\u200d👩\u200d👧"
    assert validate(Article(url="https://a.example/y", text=kept)).article.text == kept


def test_huge_text_is_cut_one_word_kept_and_dates_checked() -> None:
    huge = validate(Article(url="https://a.example/big", text="word " * 1_000_000))
    assert len(huge.article.text) == MAX_TEXT_CHARS and "text cut from 5000000" in huge.dropped[0]
    assert validate(Article(url="https://a.example/one", text="word")).article.text == "word"
    future = datetime.now(UTC) + timedelta(days=30)
    naive = datetime(2020, 5, 1, 12, 0)
    checked = validate(Article(url="https://a.example/d", text=BODY, published=future, fetched_at=naive))
    assert checked.article.published is None and "published dropped: in the future" in checked.dropped[0]
    assert checked.article.fetched_at == naive.replace(tzinfo=UTC)
    old = validate(Article(url="https://a.example/d", text=BODY, published=datetime(1, 1, 1, tzinfo=UTC)))
    assert old.article.published is None and "before 1990" in old.dropped[0]


def test_validation_is_idempotent_and_keeps_earlier_reasons() -> None:
    first = validate(Article(url=" https://a.example/x ", text="a\x00b", canonical_link=BAD_PORT))
    again = validate(first.article)
    assert again.article == first.article and again.dropped == first.dropped
    # An equal copy is not one validate() returned: it is checked in full, with the same result.
    copy = validate(replace(first.article))
    assert copy.article == first.article and copy.dropped == first.dropped


def test_a_title_cut_after_a_space_is_the_same_when_validated_again() -> None:
    title = "word " * (MAX_TITLE_CHARS // 5 + 10)  # the cut falls just after a space
    first = validate(Article(url="https://a.example/t", text=BODY, title=title))
    assert not first.article.title.endswith(" ") and len(first.article.title) <= MAX_TITLE_CHARS
    assert validate(replace(first.article)).article.title == first.article.title


def test_only_the_articles_validate_returned_skip_a_second_check() -> None:
    first = validate(Article(url="https://a.example/y", text=BODY, canonical_link=BAD_PORT))
    assert _VALIDATED.get(id(first.article)) is first.article
    assert validate(first.article) == first
    copy = replace(first.article)  # equal, but never returned by validate(): checked in full
    assert _VALIDATED.get(id(copy)) is not copy
    # Held weakly: a validated article that is gone leaves no entry behind.
    key = id(first.article)
    del first
    gc.collect()
    assert key not in _VALIDATED


def test_engine_decides_an_article_whose_links_name_port_99999(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    (url, body), (other_url, other_body) = articles()[0], articles()[1]
    decision = engine.add(Article(url=url, text=body, canonical_link=BAD_PORT, source_link=BAD_PORT,
                                  final_url="http://example.org:abc/"))
    assert decision.is_canonical and decision.url == url
    copy = engine.add(Article(url="https://copy.example/x", text=body, canonical_link=BAD_PORT))
    assert copy.kind == "exact" and copy.canonical_id == decision.article_id
    assert engine.add(Article(url=other_url, text=other_body + "\x00\ud800")).is_canonical
    with pytest.raises(InvalidArticle):
        engine.add(Article(url=BAD_PORT, text=body))


def test_extraction_drops_bad_links_with_their_reasons() -> None:
    page = (f"<html><head><title>T</title><link rel=canonical href='{BAD_PORT}'></head><body><article>"
            f"<h1>Headline</h1><p>{BODY}</p><p>Source: <a href='http://example.org:70000/z'>Read Full Article</a>"
            "</p></article></body></html>")
    article = extract_article(page.encode(), "https://copy.example/story")
    assert article is not None and article.canonical_link is None and article.source_link is None
    assert any(note.startswith("canonical_link dropped: Port out of range") for note in article.dropped)
    assert any(note.startswith("source_link dropped: Port out of range") for note in article.dropped)


def test_ingest_goes_on_past_bad_links_and_reports_a_bad_own_url(
    tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    (url, body), (other_url, other_body) = articles()[0], articles()[1]
    page = (f"<html><head><link rel=canonical href='{BAD_PORT}'><meta property='og:url' content='{BAD_PORT}'>"
            f"</head><body><article><h1>Copy</h1><p>{body}</p><p>Source: <a href='{BAD_PORT}'>Read Full Article"
            "</a></p></article></body></html>")
    records = [
        {"url": url, "text": body, "canonical_link": BAD_PORT},
        {"url": "https://copy.example/story", "html": page},
        {"url": BAD_PORT, "text": other_body},
        {"url": "https://nul.example/x", "text": other_body[:400] + "\x00 \ud800 \u202e" + other_body[400:]},
        {"url": other_url, "text": other_body},
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n")
    result = newsdedup("ingest", str(path), "--workers", "1", "--json", "--redis-url", redis_server_url,
                       "--key-prefix", key_prefix)
    err = result.stderr.decode()
    assert "Traceback" not in err, err
    assert result.returncode == 3, err
    assert "line 2: note: canonical_link dropped: Port out of range" in err
    assert "line 3: failed, put on the dead-letter stream: url: Port out of range" in err
    assert "4 articles decided" in err and "1 records failed" in err
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    decided = {line["url"]: line for line in lines if not line.get("failed")}
    assert set(decided) == {url, "https://copy.example/story", "https://nul.example/x", other_url}
    assert decided["https://copy.example/story"]["kind"] in ("exact", "near")
    # Cleaned of its NUL, surrogate and override, the copy is the same text as the original.
    assert decided[other_url]["kind"] in ("exact", "near")
    assert decided[other_url]["canonical"] == decided["https://nul.example/x"]["id"]
    assert [line["line"] for line in lines if line.get("failed")] == [3]
    letters = DeadLetters(redis_client, Keys(key_prefix)).read()
    assert len(letters) == 1 and letters[0].url == BAD_PORT and letters[0].stage == "validate"
    assert letters[0].origin.endswith("records.jsonl line 3")


def test_check_and_show_answer_a_bad_url_with_one_error_line(
    tmp_path: Path, redis_server_url: str, key_prefix: str, redis_client: redis.Redis,
) -> None:
    Engine(redis_client, Keys(key_prefix)).add(Article(url="https://a.example/x", text=BODY))
    page = tmp_path / "page.html"
    page.write_text(f"<html><body><article><p>{BODY}</p></article></body></html>")
    target = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    checked = newsdedup("check", str(page), "--url", BAD_PORT, *target)
    assert checked.returncode == 1, checked.stderr
    assert checked.stderr.decode().startswith("Error: the page cannot be decided: url: Port out of range")
    shown = newsdedup("show", BAD_PORT, *target)
    assert shown.returncode == 1 and b"no such article" in shown.stderr and b"Traceback" not in shown.stderr
