"""Shared fixtures: a real Redis server (the local one, or a private one we start) per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from tests.private_redis import free_port, redis_server_binary, start_redis_cluster, stop_redis_cluster

TESTS_DIR = Path(__file__).parent
DATA_DIR = TESTS_DIR / "data"


def _reachable(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError):
        return False
    return True


def _start_private_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a redis-server binary on a free loopback port."""
    executable = redis_server_binary()
    port = free_port()
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


# A real Redis Cluster of three primaries for the cluster tests (tests.private_redis starts it).


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


@pytest.fixture(params=["server", "cluster"])
def redis_target(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(URL, key prefix) on the standalone test Redis, then on the 3-primary test cluster: one test, both stores."""
    if request.param == "server":
        return request.getfixturevalue("redis_server_url"), request.getfixturevalue("key_prefix")
    return request.getfixturevalue("redis_cluster_url"), request.getfixturevalue("cluster_key_prefix")
