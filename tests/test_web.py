"""The dashboard (crawler.web) over real HTTP: a `newsdedup web` process on loopback, a real Redis
holding the ingested test corpus, and urllib as the client. The browser tests are test_web_browser.py."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import redis
from click.testing import CliRunner

from crawler.cli import main
from crawler.web import auth
from crawler.web.app import CSP, safe_href
from crawler.web.stories import recent_duplicates, story
from dedup.engine import Engine
from dedup.keys import Keys
from dedup.overrides import Overrides
from dedup.urls import url_id
from tests.service_process import service_env
from tests.webserver import (
    EDITED_URL,
    HOSTILE_COPY_URL,
    HOSTILE_TITLE,
    HOSTILE_URL,
    TOKEN,
    Reply,
    WebProcess,
    delete_prefix,
    fetch,
    ingest_corpus,
    web_server,
)

PAGES = ("/", "/?range=7d", "/duplicates", "/overrides", "/search", f"/story/{url_id(HOSTILE_COPY_URL)}")


@pytest.fixture(scope="module")
def corpus_prefix(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A key prefix holding the ingested corpus, shared by this module's tests (deleted afterwards)."""
    prefix = f"newsdedup-test-web-{uuid.uuid4().hex[:12]}:"
    ingest_corpus(redis_server_url, prefix, tmp_path_factory.mktemp("web-corpus"))
    yield prefix
    delete_prefix(redis_server_url, prefix)


@pytest.fixture(scope="module")
def open_web(redis_server_url: str, corpus_prefix: str) -> Iterator[WebProcess]:
    """The dashboard on 127.0.0.1 with no credentials (read-only, open to this machine)."""
    with web_server(redis_server_url, corpus_prefix) as server:
        yield server


@pytest.fixture
def engine(redis_server_url: str, corpus_prefix: str) -> Iterator[Engine]:
    client = redis.Redis.from_url(redis_server_url)
    yield Engine(client, Keys(corpus_prefix))
    client.close()


def text_of(reply: Reply) -> str:
    """The visible text of a page, tags dropped, entities decoded."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", reply.body)))


# Pages, headers and escaping

@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_a_csp_and_no_store(open_web: WebProcess, path: str) -> None:
    reply = fetch(open_web.url.rstrip("/") + path)
    assert reply.status == 200, reply.body[:500]
    assert reply.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["cache-control"] == "no-store"
    assert "<script>" not in reply.body  # no inline script anywhere: the CSP would block it


def test_the_overview_shows_totals_chart_rates_and_streams(open_web: WebProcess) -> None:
    reply = fetch(open_web.url)
    page = text_of(reply)
    assert "Articles kept 66" in page  # 62 corpus records and 4 more
    assert re.search(r"Duplicates \d+ \d+\.\d% of decided articles", page)
    assert reply.body.count('class="k-near"') >= 1  # a chart segment for near copies this hour
    assert re.search(r"ingest</a>\s*</td>\s*<td class=\"num\">\d+</td>", reply.body)  # duplicate rate per source
    assert "canonical" in page and "inbox" in page and "no consumer groups" in page
    assert "No running instances" in page


def test_hostile_titles_and_urls_are_escaped_everywhere(open_web: WebProcess) -> None:
    for path in ("/duplicates", f"/story/{url_id(HOSTILE_COPY_URL)}", f"/story/{url_id(HOSTILE_URL)}"):
        reply = fetch(open_web.url.rstrip("/") + path)
        assert reply.status == 200
        assert "<script>alert" not in reply.body and "<img src=x" not in reply.body
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in reply.body
        assert HOSTILE_TITLE in text_of(reply)  # shown as text, whole


def test_only_http_urls_become_links() -> None:
    assert safe_href("https://example.com/a") == "https://example.com/a"
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "//evil.example/", "file:///etc"):
        assert safe_href(bad) is None


# Recent duplicates and their filters

def _rows(reply: Reply) -> list[str]:
    """The kind of each row of the duplicates table."""
    table = reply.body.split('<table class="dupes', 1)[1] if '<table class="dupes' in reply.body else ""
    return re.findall(r'<span class="kind k-(\w+)">', table)


def test_duplicates_filter_by_kind_source_and_since(open_web: WebProcess) -> None:
    base = open_web.url + "duplicates"
    everything = _rows(fetch(base + "?limit=200"))
    assert set(everything) == {"exact", "near", "excerpt"}
    excerpts = _rows(fetch(base + "?kind=excerpt&limit=200"))
    assert excerpts and set(excerpts) == {"excerpt"} and len(excerpts) == everything.count("excerpt")
    two = _rows(fetch(base + "?kind=exact&kind=near&limit=200"))
    assert set(two) == {"exact", "near"}
    site = fetch(base + "?" + urlencode({"source": "copy.example", "limit": 200}))
    assert _rows(site) == ["exact"] and HOSTILE_COPY_URL in site.body
    assert _rows(fetch(base + "?source=ingest&since=1h&limit=200")) == everything
    future = fetch(base + "?since=2099-01-01")
    assert future.status == 200 and _rows(future) == [] and "No duplicate decisions match" in future.body
    bad = fetch(base + "?since=yesterdayish")
    assert bad.status == 400 and "not a time: &#39;yesterdayish&#39;" in bad.body


def test_listing_reads_a_bounded_number_of_decisions(engine: Engine) -> None:
    page = recent_duplicates(engine, kinds=("excerpt",), limit=50, max_scan=10)
    assert page.scanned == 10 and not page.complete
    assert all(row.record.kind == "excerpt" for row in page.rows)
    whole = recent_duplicates(engine, limit=500)
    assert whole.complete and whole.scanned == 66
    arrived = [row.record.arrived for row in whole.rows]
    assert arrived == sorted(arrived, reverse=True)  # newest first
    assert all(row.canonical is not None and row.canonical.id == row.record.duplicate_of for row in whole.rows)


def test_a_page_says_when_older_decisions_were_not_searched(open_web: WebProcess) -> None:
    reply = fetch(open_web.url + "duplicates?limit=20")
    assert "from the 66 most recent decisions" in text_of(reply)


# The story page

def test_story_shows_the_cluster_why_and_a_diff(open_web: WebProcess, engine: Engine) -> None:
    reply = fetch(open_web.url + f"story/{url_id(EDITED_URL)}")
    page = text_of(reply)
    found = story(engine, EDITED_URL)
    assert found is not None and found.canonical is not None
    assert found.canonical.url != EDITED_URL
    assert found.reason_text[1:] in page  # why that canonical, in the engine's words
    assert found.canonical.url in page and EDITED_URL in page
    diff = reply.body.split('<table class="diff">', 1)[1].split("</table>", 1)[0]
    assert any("reportedly" in marked for marked in re.findall(r'<mark class="ins">([^<]*)</mark>', diff))
    assert 'class="op-same"' in diff  # shared paragraphs side by side
    assert "Also read" not in diff  # junk the engine strips is not part of the comparison


def test_story_diff_of_any_member(open_web: WebProcess, engine: Engine) -> None:
    found = story(engine, EDITED_URL)
    assert found is not None and found.canonical is not None
    reply = fetch(open_web.url + f"story/{url_id(EDITED_URL)}?diff={found.canonical.id}")
    assert reply.status == 200 and "The canonical" in reply.body
    diff = reply.body.split('<table class="diff">', 1)[1].split("</table>", 1)[0]
    assert "<mark" not in diff and 'class="op-same"' in diff  # a text against itself differs nowhere


def test_unknown_story_and_search(open_web: WebProcess) -> None:
    assert fetch(open_web.url + "story/0123456789abcdef").status == 404
    hit = fetch(open_web.url + "search?" + urlencode({"q": "https://www.EDITED.example/story?utm_source=feed"}))
    assert hit.status == 303 and hit.headers["location"] == f"/story/{url_id(EDITED_URL)}"
    by_id = fetch(open_web.url + f"search?q={url_id(HOSTILE_URL)}")
    assert by_id.status == 303 and by_id.headers["location"] == f"/story/{url_id(HOSTILE_URL)}"
    miss = fetch(open_web.url + "search?q=" + quote("https://nowhere.example/a"))
    assert miss.status == 200 and "No stored article has the URL or id" in text_of(miss)


def test_override_log_page_lists_cli_overrides_newest_first(open_web: WebProcess, engine: Engine) -> None:
    overrides = Overrides(engine)
    first = overrides.split(url_id(EDITED_URL), who="carol", reason="checking the log page")
    second = overrides.undo(first.id, who="carol", reason="put it back")
    page = text_of(fetch(open_web.url + "overrides"))
    assert page.index(f"{second.id} ") < page.index(f"{first.id} ")
    assert "checking the log page" in page and f"undone by #{second.id}" in page
    assert "undo" in page and "carol" in page


# Binding and authentication

def test_a_non_loopback_bind_without_credentials_is_refused(redis_server_url: str, corpus_prefix: str) -> None:
    env = service_env(redis_server_url, corpus_prefix)
    result = CliRunner(env=env).invoke(main, ["web", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: --host 0.0.0.0 is not a loopback address")
    assert "NEWSDEDUP_WEB_TOKEN" in result.output and len(result.output.strip().splitlines()) == 1


def test_overrides_need_credentials_to_start(redis_server_url: str, corpus_prefix: str) -> None:
    env = service_env(redis_server_url, corpus_prefix)
    result = CliRunner(env=env).invoke(main, ["web", "--port", "0", "--overrides"])
    assert result.exit_code == 1 and "overrides from the dashboard need authenticated users" in result.output


def test_a_port_in_use_is_one_error_line(redis_server_url: str, corpus_prefix: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = service_env(redis_server_url, corpus_prefix)
        result = CliRunner(env=env).invoke(main, ["web", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: cannot listen on 127.0.0.1:{port}: the port is in use " \
                                    "(another dashboard?); choose another with --port"


def test_open_dashboard_refuses_foreign_host_names(open_web: WebProcess) -> None:
    # A page on evil.example whose name was rebound to 127.0.0.1 sends Host: evil.example.
    assert fetch(open_web.url, headers={"Host": f"evil.example:{open_web.port}"}).status == 400
    assert fetch(open_web.url, headers={"Host": f"localhost:{open_web.port}"}).status == 200


@pytest.fixture(scope="module")
def token_web(redis_server_url: str, corpus_prefix: str) -> Iterator[WebProcess]:
    """The dashboard on all interfaces (reached here through 127.0.0.1), token and basic auth, overrides on."""
    with web_server(redis_server_url, corpus_prefix, "--host", "0.0.0.0", "--overrides",
                    NEWSDEDUP_WEB_TOKEN=TOKEN, NEWSDEDUP_WEB_USER="dana",
                    NEWSDEDUP_WEB_PASSWORD="correct horse battery") as server:
        yield server


def test_unauthenticated_requests_to_a_public_bind_are_refused(token_web: WebProcess) -> None:
    assert "dashboard on http://0.0.0.0:" in "".join(token_web.output)
    for path in ("/", "/duplicates", f"/story/{url_id(EDITED_URL)}", "/overrides", "/search?q=x"):
        reply = fetch(token_web.url.rstrip("/") + path, headers={"Accept": "application/json"})
        assert reply.status == 401, path
        assert reply.headers["www-authenticate"].startswith("Basic ")
        assert "hostile" not in reply.body and "Articles" not in reply.body
    person = fetch(token_web.url, headers={"Accept": "text/html"})
    assert person.status == 401 and 'name="token"' in person.body and "Articles kept" not in person.body
    assert "redis://" not in person.body and "newsdedup-test-web" not in person.body  # not even where it reads
    assert fetch(token_web.url, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status == 401
    assert fetch(token_web.url + "static/dashboard.css").status == 200  # the sign-in page needs its style


def test_token_bearer_query_and_cookie(token_web: WebProcess) -> None:
    assert fetch(token_web.url, headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
    once = fetch(token_web.url + f"duplicates?kind=near&token={TOKEN}")
    assert once.status == 303 and once.headers["location"] == "/duplicates?kind=near"  # token out of the URL
    cookie = once.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    session = cookie.split(";", 1)[0]
    assert fetch(token_web.url + "duplicates", headers={"Cookie": session}).status == 200
    forged = session.split("=", 1)[0] + "=" + "0" * 64
    assert fetch(token_web.url, headers={"Cookie": forged}).status == 401


def test_login_form(token_web: WebProcess) -> None:
    wrong = fetch(token_web.url + "login", method="POST", data=b"token=nope&next=/overrides")
    assert wrong.status == 401 and "not the one configured" in wrong.body
    right = fetch(token_web.url + "login", method="POST", data=urlencode({"token": TOKEN, "next": "/overrides"}).encode())
    assert right.status == 303 and right.headers["location"] == "/overrides"
    elsewhere = fetch(token_web.url + "login", method="POST",
                      data=urlencode({"token": TOKEN, "next": "//evil.example/"}).encode())
    assert elsewhere.headers["location"] == "/"


def test_basic_auth(token_web: WebProcess) -> None:
    import base64

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert fetch(token_web.url, headers=basic("dana", "correct horse battery")).status == 200
    assert fetch(token_web.url, headers=basic("dana", "wrong")).status == 401
    assert fetch(token_web.url, headers=basic("eve", "correct horse battery")).status == 401


# Overrides from the dashboard

def _csrf(page: Reply) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.body)
    assert match, "no override form on the page"
    return match.group(1)


def test_overrides_from_the_web_with_the_cli_audit_trail(token_web: WebProcess, engine: Engine,
                                                         redis_server_url: str) -> None:
    member_id = url_id(HOSTILE_COPY_URL)
    auth_header = {"Authorization": f"Bearer {TOKEN}"}
    page = fetch(token_web.url + f"story/{member_id}", headers=auth_header)
    assert "Correct this story" in page.body
    form = {"member": member_id, "reason": "a different story after all", "who": "erin",
            "back": f"/story/{member_id}"}
    no_csrf = fetch(token_web.url + "override/split", method="POST", data=urlencode(form).encode(), headers=auth_header)
    assert no_csrf.status == 403
    cross = fetch(token_web.url + "override/split", method="POST", headers={**auth_header, "Origin": "https://evil.example"},
                  data=urlencode({**form, "csrf": _csrf(page)}).encode())
    assert cross.status == 403
    no_reason = fetch(token_web.url + "override/split", method="POST", headers=auth_header,
                      data=urlencode({**form, "csrf": _csrf(page), "reason": " "}).encode())
    assert no_reason.status == 303 and "error=say+why" in no_reason.headers["location"]
    before = len(Overrides(engine).log())
    done = fetch(token_web.url + "override/split", method="POST", headers=auth_header,
                 data=urlencode({**form, "csrf": _csrf(page)}).encode())
    assert done.status == 303 and done.headers["location"].startswith(f"/story/{member_id}?done=")
    log = Overrides(engine).log()
    assert len(log) == before + 1
    entry = log[-1]
    assert (entry.action, entry.who, entry.reason, entry.articles) == (
        "split", "erin@web", "a different story after all", (member_id,))
    assert engine.get(member_id).cluster == member_id  # type: ignore[union-attr]
    # The same entry as the CLI lists it, and undone from the web as well.
    cli = CliRunner().invoke(main, ["override", "log", "--json", "--redis-url", redis_server_url,
                                    "--key-prefix", engine.keys.prefix])
    assert '"who": "erin@web"' in cli.output and '"reason": "a different story after all"' in cli.output
    overrides_page = fetch(token_web.url + "overrides", headers=auth_header)
    undo = {"target": str(entry.id), "reason": "undo from the web", "who": "erin", "back": "/overrides",
            "csrf": _csrf(overrides_page)}
    undone = fetch(token_web.url + "override/undo", method="POST", data=urlencode(undo).encode(), headers=auth_header)
    assert undone.status == 303 and undone.headers["location"].startswith("/overrides?done=")
    assert Overrides(engine).log()[-1].undoes == entry.id
    assert engine.get(member_id).cluster != member_id  # type: ignore[union-attr]


def test_read_only_dashboard_refuses_override_posts(open_web: WebProcess) -> None:
    reply = fetch(open_web.url + "override/split", method="POST", data=b"member=x&reason=y")
    assert reply.status == 403 and "overrides from the dashboard are off" in reply.body
    assert "Correct this story" not in fetch(open_web.url + f"story/{url_id(EDITED_URL)}").body


def test_exposure_rules() -> None:
    with_token = auth.Credentials(token=TOKEN)
    assert auth.exposure_error("127.0.0.1", auth.Credentials(), overrides=False) is None
    assert auth.exposure_error("localhost", auth.Credentials(), overrides=False) is None
    assert auth.exposure_error("::1", auth.Credentials(), overrides=False) is None
    assert auth.exposure_error("127.0.0.2", auth.Credentials(), overrides=False) is None  # 127/8 is loopback
    assert auth.exposure_error("0.0.0.0", auth.Credentials(), overrides=False) is not None
    assert auth.exposure_error("::", auth.Credentials(), overrides=False) is not None
    assert auth.exposure_error("0.0.0.0", with_token, overrides=True) is None
    assert auth.exposure_error("127.0.0.1", auth.Credentials(), overrides=True) is not None
    assert not auth.loopback_host_header("127.0.0.1.evil.example")
    assert auth.loopback_host_header("[::1]:8788") and auth.loopback_host_header("localhost:1")


def test_web_settings_are_validated(tmp_path: Path) -> None:
    config = tmp_path / "web.toml"
    config.write_text('[web]\ntoken = "short"\n')
    result = CliRunner().invoke(main, ["web", "--config", str(config)])
    assert result.exit_code == 1 and f"{config}: web.token: too short to be a secret" in result.output
    config.write_text('[web]\nuser = "admin"\n')
    result = CliRunner().invoke(main, ["web", "--config", str(config)])
    assert result.exit_code == 1 and f"{config}: web.user: basic auth needs web.password as well" in result.output


def test_source_rows_read_pause_failures_and_the_recorded_next_crawl(redis_client: redis.Redis,
                                                                     key_prefix: str) -> None:
    """The overview's sources come from the keys the service and `newsdedup pause` write."""
    import dataclasses
    import time

    from crawler import control
    from crawler.config import Settings, SourceSettings
    from crawler.web.overview import source_rows

    keys = Keys(key_prefix)
    now = time.time()
    settings = dataclasses.replace(Settings(), sources=(
        SourceSettings(name="wire", feeds=("https://wire.example/rss",), every=600.0),))
    control.pause(redis_client, keys, "wire", who="ops", reason="publisher asked")
    control.record_result(redis_client, keys, "wire", control.CrawlResult(
        started=now - 5, finished=now - 1, outcome="partial", instance="a", counts={"fetched": 3}, failures=1),
        {"https://wire.example/gone": "HTTP 404"}, now=now)
    control.set_next_crawls(redis_client, keys, {"wire": now + 42})
    [row] = source_rows(redis_client, keys, settings, now)
    assert row.paused
    assert row.failed_urls == (("https://wire.example/gone", "HTTP 404"),)
    assert row.next_crawl == pytest.approx(now + 42, abs=0.01)
    control.resume(redis_client, keys, "wire")
    [row] = source_rows(redis_client, keys, settings, now)
    assert not row.paused
