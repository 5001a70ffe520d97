"""A real `newsdedup web` process on loopback against a real Redis holding an ingested corpus."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from click.testing import CliRunner

from crawler.cli import main
from tests.service_process import NEWSDEDUP, service_env, wait_for
from tests.textcases import articles, edited, wrapped_copy

CORPUS = Path(__file__).parent / "data" / "corpus" / "records.jsonl"
HOSTILE_TITLE = '<img src=x onerror="alert(1)"> Breaking </td></table><script>alert(2)</script>'
HOSTILE_URL = 'https://hostile.example/story?q="><script>alert(3)</script>'
HOSTILE_COPY_URL = "https://copy.example/hostile"
EDITED_URL = "https://edited.example/story"
TOKEN = "a-test-token-that-is-long-enough"


def ingest_corpus(redis_url: str, prefix: str, tmp: Path) -> None:
    """The committed test corpus, plus a hostile-titled article with a copy and an edited copy."""
    hostile_text = articles()[7][1]
    lines = CORPUS.read_text("utf-8").split("\n")
    extra = [
        {"url": HOSTILE_URL, "text": hostile_text, "title": HOSTILE_TITLE, "published": "2019-11-18T08:00:00Z"},
        {"url": HOSTILE_COPY_URL, "text": wrapped_copy(hostile_text), "title": HOSTILE_TITLE},
        {"url": EDITED_URL, "text": edited(articles()[8][1], seed=2), "title": "An edited copy"},
        {"url": articles()[8][0], "text": articles()[8][1], "title": "The original of the edited copy",
         "published": "2019-11-17T08:00:00Z"},
    ]
    records = tmp / "records.jsonl"
    records.write_text("".join(line + "\n" for line in lines if line.strip())
                       + "".join(json.dumps(r) + "\n" for r in extra), "utf-8")
    result = CliRunner().invoke(main, ["ingest", str(records), "--workers", "1", "--redis-url", redis_url,
                                       "--key-prefix", prefix], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def delete_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


@dataclass
class WebProcess:
    """One `newsdedup web` subprocess and the URL it serves."""

    proc: subprocess.Popen[str]
    url: str
    output: list[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].strip("/"))


def _collect(stream: object, into: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.append(line)  # noqa: PERF402 (line by line: the test reads the list while it fills)


@contextmanager
def web_server(redis_url: str, prefix: str, *args: str, **env: str) -> Iterator[WebProcess]:
    """`newsdedup web --port 0 ARGS` until the block ends; the URL it prints is where to connect."""
    proc = subprocess.Popen(NEWSDEDUP + ["web", "--port", "0", *args], env=service_env(redis_url, prefix, **env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace")
    output: list[str] = []
    threading.Thread(target=_collect, args=(proc.stdout, output), daemon=True).start()
    try:
        found: list[str] = []

        def listening() -> bool:
            match = re.search(r"dashboard on (http://\S+/)", "".join(output))
            if match:
                found.append(match.group(1))
            assert match or proc.poll() is None, f"web exited with {proc.returncode}: {''.join(output)}"
            return bool(match)

        wait_for(listening, 60, "the dashboard to listen", lambda: "".join(output))
        # Bound to 0.0.0.0 or another address: connect through loopback, never off the machine.
        url = re.sub(r"http://(0\.0\.0\.0|\[::\])", "http://127.0.0.1", found[0])
        yield WebProcess(proc, url, output)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@dataclass
class Reply:
    """An HTTP response, whatever its status."""

    status: int
    headers: dict[str, str]
    body: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One request, redirects not followed (the test looks at them)."""
    request = urllib.request.Request(url, data=data, method=method, headers={"Accept": "text/html", **(headers or {})})
    opener = urllib.request.build_opener(_NoRedirects())
    try:
        with opener.open(request, timeout=30) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()},
                         response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode("utf-8", "replace"))
