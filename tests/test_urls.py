"""dedup.urls: canonical URLs and ids on w3lib and the bundled public suffix list; BadURL is the only error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dedup.urls import MAX_URL_LENGTH, BadURL, canonical_url, same_publisher, site_of, url_id


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
    with pytest.raises(BadURL):
        canonical_url(None)  # type: ignore[arg-type]
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
