"""Driving real `newsdedup` processes from tests: start, watch the log, kill, read what they stored."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from dedup.cluster import scan_keys
from dedup.keys import Keys

NEWSDEDUP = [sys.executable, "-c", "from crawler.entry import main; main()"]


def service_env(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The test's environment without any NEWSDEDUP_* of the developer's, plus Redis and prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")}
    env.update(NEWSDEDUP_REDIS_URL=redis_url, NEWSDEDUP_REDIS_PREFIX=prefix, PYTHONUNBUFFERED="1", **extra)
    return env


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             details: Callable[[], str] = lambda: "") -> None:
    """Poll until predicate() is true; fail with `what` and details() at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{details()[-6000:]}")


def kill_9_once_paused(script: str, args: list[str], paused: str) -> None:
    """Run a Python script (from the repository's root) until it prints `paused` on a line of its
    own, then kill -9 it: a crash at the moment the script chose."""
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=Path(__file__).resolve().parent.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == paused, f"{line!r}\n{proc.stderr.read() if proc.stderr else ''}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


class ServiceProcess:
    """One `newsdedup ...` subprocess; its stderr is collected in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(NEWSDEDUP + args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self.lines: list[str] = []
        self.stdout = ""
        threading.Thread(target=self._collect_err, daemon=True).start()
        threading.Thread(target=self._collect_out, daemon=True).start()

    def _collect_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def _collect_out(self) -> None:
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health_port(self, timeout: float = 60) -> int:
        """Wait until the service serves /healthz (it is running) and return the port."""
        found: list[int] = []

        def listening() -> bool:
            match = re.search(r"health and metrics on http://[\d.]+:(\d+)/", self.log)
            if match:
                found.append(int(match.group(1)))
            assert self.alive(), f"service exited with {self.proc.returncode}\n{self.log[-6000:]}"
            return bool(match)

        wait_for(listening, timeout, "the health endpoint", lambda: self.log)
        return found[0]

    def children(self) -> list[int]:
        """Pids of this process's children (the extraction workers)."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as handle:
                return [int(pid) for pid in handle.read().split()]
        except OSError:
            return []

    def peak_rss_mb(self) -> float:
        """Peak resident memory (VmHWM) of the process, in MiB; 0 when it has gone."""
        return peak_rss_mb(self.pid)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM and the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def cleanup(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)


def start_instances(config: Path, env: dict[str, str], count: int, stagger: float = 0.7) -> list[ServiceProcess]:
    """`count` instances of `newsdedup run`, started `stagger` seconds apart (so that each one's own
    clock would tick at another moment), each serving /healthz before this returns."""
    services: list[ServiceProcess] = []
    try:
        for _ in range(count):
            services.append(ServiceProcess(["run", "--config", str(config)], env))
            time.sleep(stagger)
        for service in services:
            service.health_port()
    except BaseException:
        for service in services:
            service.cleanup()
        raise
    return services


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def alive_pids(pids: list[int]) -> list[int]:
    """The pids that still run (zombies count as gone)."""
    result = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            result.append(pid)
    return result


# What the service stored

def article_count(client: redis.Redis, keys: Keys) -> int:
    return sum(1 for _ in scan_keys(client, keys.prefix + "a:*"))  # every primary of a cluster


def settled(client: redis.Redis, keys: Keys, total: int) -> bool:
    """Every article decided, nothing left in the inbox, no stream event waiting to be completed."""
    try:
        return (article_count(client, keys) >= total and client.xlen(keys.inbox) == 0
                and client.hlen(keys.pending_events) == 0)
    except redis.RedisError:
        return False


def stream_events(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in client.xrange(keys.canonical_stream)]


def export_rows(config: Path, env: dict[str, str]) -> list[dict[str, object]]:
    """`newsdedup export`: one row per stored article."""
    result = subprocess.run(NEWSDEDUP + ["export", "--config", str(config)], check=False, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_decided_once(rows: list[dict[str, object]], stream: list[dict[str, str]],
                        expected: dict[str, str], context: str = "") -> None:
    """Each article stored once with the expected canonical; the stream names each canonical last,
    once: event ids unique, at most one `new` per cluster."""
    urls = [str(row["url"]) for row in rows]
    assert len(urls) == len(set(urls)), f"an article stored twice {context}"
    got = {str(row["url"]): str(row["canonical_url"]) for row in rows}
    missing = sorted(set(expected) - set(got))
    assert not missing, f"{len(missing)} articles never decided, e.g. {missing[:3]} {context}"
    assert len(got) == len(expected), f"unexpected articles: {sorted(set(got) - set(expected))[:3]} {context}"
    wrong = [(url, got[url], canonical) for url, canonical in expected.items() if got[url] != canonical]
    assert not wrong, f"{len(wrong)} articles with another canonical, e.g. {wrong[:3]} {context}"
    event_ids = Counter(event["event_id"] for event in stream)
    assert max(event_ids.values(), default=1) == 1, f"event queued twice: {event_ids.most_common(2)} {context}"
    news = Counter(event["cluster"] for event in stream if event["event"] == "new")
    assert max(news.values(), default=1) == 1, f"two `new` events for a cluster: {news.most_common(2)} {context}"
    last = {event["cluster"]: event for event in stream}
    for row in rows:
        if row["is_canonical"] and not row["thin"]:
            event = last.get(str(row["cluster"]))
            assert event is not None, f"canonical {row['url']} never queued {context}"
            assert event["event"] in ("new", "replaced") and event["url"] == row["url"], (
                f"last event of cluster {row['cluster']} names {event['url']}, not {row['url']} {context}")
    clusters = {str(row["cluster"]) for row in rows}
    assert set(last) <= clusters, f"events for clusters that do not exist: {sorted(set(last) - clusters)[:3]}"
