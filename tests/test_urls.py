"""dedup.urls: canonical URLs and ids on w3lib and the bundled public suffix list; BadURL is the only
error; the URL id format recorded with the index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from dedup.engine import Engine
from dedup.index import IndexParams, IndexParamsMismatch
from dedup.keys import Keys
from dedup.urls import (
    MAX_URL_LENGTH,
    URL_ID_FORMAT,
    BadURL,
    canonical_url,
    same_publisher,
    site_of,
    url_id,
)
from tests.service_process import NEWSDEDUP, service_env


def test_an_ipv6_literal_keeps_its_brackets_and_port() -> None:
    canonical = canonical_url("http://[::ffff:127.0.0.31]:9151/x")
    parts = urlsplit(canonical)
    assert canonical.startswith("http://[") and parts.port == 9151 and parts.path == "/x"
    assert canonical_url(canonical) == canonical
    assert site_of("http://[::1]:8080/a") == "[::1]:8080"


def test_a_unicode_host_and_its_punycode_are_one_page() -> None:
    assert canonical_url("http://Bücher.de/x") == "http://xn--bcher-kva.de/x"
    assert url_id("http://Bücher.de/x") == url_id("http://xn--bcher-kva.de/x") == url_id("https://BÜCHER.DE/x")


def test_an_encoded_slash_in_a_path_stays_encoded() -> None:
    assert canonical_url("http://ex.org/a%2Fb/c") == "http://ex.org/a%2Fb/c"
    assert url_id("http://ex.org/a%2fb/c") != url_id("http://ex.org/a/b/c")


def test_private_suffixes_are_public_suffixes_for_publishers() -> None:
    assert not same_publisher("alice.blogspot.com", "bob.blogspot.com")
    assert not same_publisher("https://alice.github.io/post", "https://bob.github.io/post")
    assert same_publisher("https://alice.blogspot.com/a", "http://alice.blogspot.com/b")


def test_same_publisher_across_subdomains_and_suffixes() -> None:
    assert same_publisher("https://cnn.com/a", "https://edition.cnn.com/b")
    assert same_publisher("https://jaraguadosul.com.br/a", "https://jaraguadosul.sc.gov.br/b")
    assert same_publisher("https://www.bbc.co.uk/news/1", "https://bbc.com/news/2")
    assert not same_publisher("https://news.com.au/a", "https://news.co.uk/b")  # only generic labels
    # Names the list does not know: the last label is taken for the suffix, as before.
    assert not same_publisher("https://digest.example/0", "https://mirror.example/1")
    # An IP address or a non-default port is only ever the same as itself.
    assert not same_publisher("http://127.0.0.1:8001/a", "http://127.0.0.1:8002/a")
    assert same_publisher("http://127.0.0.1:8001/a", "http://127.0.0.1:8001/b")


def test_tracking_parameters_fragments_and_default_ports_go() -> None:
    assert canonical_url("HTTP://WWW.Ex.ORG:80/a?utm_source=rss&b=2&a=1&fbclid=x#top") == "http://www.ex.org/a?a=1&b=2"
    assert canonical_url("https://ex.org:443/") == "https://ex.org/"
    assert canonical_url("http://ex.org:8080/") == "http://ex.org:8080/"
    # 443 is not http's default port: dropping it would name another server.
    assert canonical_url("http://ex.org:443/") == "http://ex.org:443/"
    assert canonical_url("http://user:secret@ex.org/p") == "http://ex.org/p"
    assert canonical_url("http://ex.org./a/../b/./c") == "http://ex.org/b/c"
    assert canonical_url("  http://ex.org/a b?q=a b\n") == "http://ex.org/a%20b?q=a+b"


def test_an_id_ignores_scheme_and_www_and_tracking() -> None:
    ids = {url_id(url) for url in ("http://www.ex.org/a?b=1", "https://ex.org/a?b=1&utm_medium=feed",
                                   "//ex.org/a?b=1#x", "ex.org/a?b=1")}
    assert len(ids) == 1
    assert url_id("https://ex.org/a?b=1") != url_id("https://ex.org/a?b=2")


def test_known_ids_stay_the_same() -> None:
    """Ids are stored: an upgrade of w3lib that changes one must be noticed (and URL_ID_FORMAT bumped)."""
    assert url_id("https://www.barrons.com/articles/home-depot-stock-earnings-report-51574168486") == "11489ddf62119b2f"
    assert url_id("http://Bücher.de/x") == "64f1717fdef27135"
    assert url_id("http://[::ffff:127.0.0.31]:9151/x") == "633cd4c6d298ffad"
    assert url_id("http://ex.org/%7euser/%2f?b=2&a=%41") == url_id("http://ex.org/~user/%2F?a=A&b=2")


@pytest.mark.parametrize("url", [
    "http://example.org:99999/x",
    "http://example.org:0/x",
    "http://example.org:port/x",
    "http://[::1/x",
    "http://[zz::1]/x",
    "http://[fe80::1%25eth0]/x",
    "http://ex.org/a\x00b",
    "http://ex\x07.org/",
    "http://ex.org/\ud800",
    "http://" + "a" * 70 + ".org/",
    "http://ex.org/" + "a" * MAX_URL_LENGTH,
    "http://a..b/",
    "http://ex ample.org/",
    "http://ex.org\uff0fx/",
    "http:/ex.org/x",
    "http:///x",
    "http://user@/x",
    "ftp://ex.org/x",
    "javascript:alert(1)",
    "",
    " \t ",
])
def test_a_url_that_names_no_page_raises_bad_url_and_nothing_else(url: str) -> None:
    with pytest.raises(BadURL):
        canonical_url(url)
    with pytest.raises(BadURL):
        url_id(url)
    assert site_of(url) == ""
    assert same_publisher(url, url) is False


def test_bad_url_is_a_value_error_with_a_bounded_printable_message() -> None:
    with pytest.raises(ValueError) as raised:
        canonical_url("http://ex.org:99999/" + "\x01" + "a" * 20000)
    assert isinstance(raised.value, BadURL)
    message = str(raised.value)
    assert len(message) < 400 and "\x01" not in message


def test_a_non_string_is_a_bad_url() -> None:
    for value in (None, ["http://ex.org/"], b"http://ex.org/"):  # unhashable too (ids are cached)
        with pytest.raises(BadURL):
            canonical_url(value)  # type: ignore[arg-type]
    assert site_of(b"http://ex.org/") == ""  # type: ignore[arg-type]


@pytest.mark.parametrize("url", [
    "http://[::ffff:127.0.0.31]:9151/x", "http://Bücher.de/ä ö?q=ü&a=%zz", "http://ex.org/%%41a",
    "http://ex.org\\a\\b", "https://ex.org/p;x=1?a&b=#f", "http://ex.org?x=1", "file:///tmp/a b.html",
])
def test_canonical_form_is_a_fixed_point(url: str) -> None:
    canonical = canonical_url(url)
    assert canonical_url(canonical) == canonical
    assert url_id(canonical) == url_id(url)


def test_the_suffix_list_is_the_bundled_one_no_network_no_cache_dir(tmp_path: Path) -> None:
    """In a fresh process with every connection refused and an empty home: nothing fetched or written."""
    home = tmp_path / "home"
    home.mkdir()
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from dedup.urls import same_publisher\n"
        "assert not same_publisher('alice.blogspot.com', 'bob.blogspot.com')\n"
        "assert same_publisher('cnn.com', 'edition.cnn.com')\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TLDEXTRACT", "XDG_"))}
    env["HOME"] = str(home)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=60, check=False, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    assert "network used" not in result.stderr
    assert list(home.rglob("*")) == []


# The URL id format is recorded with the index parameters (dedup.index.ensure_params).


def test_a_fresh_index_records_the_url_id_format(redis_client: redis.Redis, key_prefix: str) -> None:
    Engine(redis_client, Keys(key_prefix))
    assert redis_client.hget(Keys(key_prefix).params, "url_ids") == str(URL_ID_FORMAT).encode()
    Engine(redis_client, Keys(key_prefix))  # and the same version starts again


def test_an_index_with_ids_of_another_format_is_refused(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    redis_client.hset(keys.params, mapping={**IndexParams().as_strings(), "url_ids": "99"})
    with pytest.raises(IndexParamsMismatch, match="format 99"):
        Engine(redis_client, keys)


def _index_of_the_first_url_format(client: redis.Redis, keys: Keys) -> dict[bytes, bytes]:
    """The parameters an index written before URL ids had a format version holds: all but url_ids."""
    before = {name: value for name, value in IndexParams().as_strings().items() if name != "url_ids"}
    client.hset(keys.params, mapping=before)
    return client.hgetall(keys.params)


def test_an_index_written_before_the_format_was_recorded_is_refused_and_left_alone(
    redis_client: redis.Redis, key_prefix: str,
) -> None:
    keys = Keys(key_prefix)
    stored = _index_of_the_first_url_format(redis_client, keys)
    for _ in range(2):  # a refused start must not "complete" the record, or the second would pass
        with pytest.raises(IndexParamsMismatch, match=rf"format 1, .* format {URL_ID_FORMAT}.*new key prefix"):
            Engine(redis_client, keys)
    assert redis_client.hgetall(keys.params) == stored


def test_the_cli_says_how_to_migrate_in_one_line(tmp_path: Path, redis_server_url: str, key_prefix: str) -> None:
    _index_of_the_first_url_format(redis.Redis.from_url(redis_server_url), Keys(key_prefix))
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"url": "https://ex.org/a", "text": "a few words of an article"}) + "\n")
    result = subprocess.run(NEWSDEDUP + ["ingest", str(records)], env=service_env(redis_server_url, key_prefix),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "format 1" in result.stderr and "new key prefix" in result.stderr, result.stderr


def test_an_operator_naming_a_bad_url_finds_nothing(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    assert engine.find("http://example.org:99999/x") is None
    assert engine.find("bad..host/x") is None
