"""deploy/: the Dockerfile, compose file, systemd unit, Kubernetes manifests, redis.conf and locks.

No Docker engine is needed: files are parsed and checked against each other and against the
code's own defaults (crawler.config), and the parts that can run here do run: the image's
HEALTHCHECK command, redis.conf and the StatefulSet's Redis flags on a real redis-server,
systemd-analyze and kubectl kustomize when installed, Kubernetes schemas when the optional
kubernetes-validate package is installed.
"""

from __future__ import annotations

import configparser
import fnmatch
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from threading import Thread
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml  # type: ignore[import-untyped]
from packaging.requirements import Requirement

from crawler.config import ServiceSettings, Settings, load_settings, parse_duration
from crawler.netguard import forbidden_reason
from crawler.redis_conn import cluster_nodes, redact_url
from tests.private_redis import free_port, redis_server_binary

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DEFAULT_SERVICE = ServiceSettings()


# --- parsers --------------------------------------------------------------------------------


def dockerfile(path: Path = DEPLOY / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Instructions per build stage (each list starts with its FROM)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                values[name] = value
    return values


def exec_form(rest: str) -> list[str]:
    """A JSON-array (exec form) argument list; fails on shell form."""
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), rest
    return value


def one(instructions: list[tuple[str, str]], keyword: str) -> str:
    matches = [rest for key, rest in instructions if key == keyword]
    assert len(matches) == 1, f"expected one {keyword}, found {len(matches)}"
    return matches[0]


def redis_conf(path: Path = DEPLOY / "redis.conf") -> dict[str, list[list[str]]]:
    """Directive -> argument lists, in file order."""
    directives: dict[str, list[list[str]]] = {}
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            name, *args = shlex.split(stripped)
            directives.setdefault(name.lower(), []).append(args)
    return directives


def unit_entries(path: Path = DEPLOY / "newsdedup.service") -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value (systemd keys may repeat, configparser keeps only one)."""
    entries: dict[str, dict[str, list[str]]] = {}
    section = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("["):
            section = stripped.strip("[]")
            entries.setdefault(section, {})
            continue
        key, _, value = stripped.partition("=")
        entries[section].setdefault(key.strip(), []).append(value.strip())
    return entries


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose-file variable substitution: $$, ${VAR}, ${VAR:-default}, ${VAR:?error}."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name, "")
        if op == ":?" and not value:
            raise KeyError(f"{name}: {arg}")
        if op == ":-" and not value:
            return arg or ""
        return value

    return re.sub(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}", substitute, text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    text = (DEPLOY / "docker-compose.yml").read_text()
    document: dict[str, Any] = yaml.safe_load(
        interpolate(text, env if env is not None else {"REDIS_PASSWORD": "s3cret"})
    )
    return document


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    matches = [
        doc
        for _, doc in k8s_docs()
        if doc["kind"] == kind and doc.get("metadata", {}).get("name") == name
    ]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} manifests"
    return matches[0]


def seconds(value: str | float) -> float:
    return parse_duration(value)


def image_data_dir() -> str:
    return env_of(stages(dockerfile())[-1])["NEWSDEDUP_DATA_DIR"]


def image_config_path() -> str:
    command = exec_form(one(stages(dockerfile())[-1], "CMD"))
    return command[command.index("--config") + 1]


def effective(config_text: str | None, env: dict[str, str], tmp_path: Path) -> Settings:
    """Settings a daemon would run with: this config file (or none) plus this environment."""
    path = None
    if config_text is not None:
        path = tmp_path / "sources.toml"
        path.write_text(config_text)
    return load_settings(path, env=env)


@contextmanager
def _running_redis(args: list[str], tmp_path: Path) -> Iterator[redis.Redis]:
    """redis-server with args (then a local port, bind and password); fails with its output if it refuses."""
    port = free_port()
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            *args,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            "pw",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port, password="pw", socket_connect_timeout=1)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None:
                    output = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"redis-server refused the configuration:\n{output}")
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = dockerfile()
    args = dict(rest.split("=", 1) for key, rest in instructions if key == "ARG" and "=" in rest)
    bases = [rest.split()[0] for key, rest in instructions if key == "FROM"]
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base) for base in bases]
    assert len(resolved) >= 2 and set(resolved) == {"python:3.11-slim"}
    final = stages(instructions)[-1]
    assert any(key == "COPY" and rest.startswith("--from=") for key, rest in final)


def test_dockerfile_installs_only_the_hashed_lock() -> None:
    runs = " ".join(rest for key, rest in stages(dockerfile())[0] if key == "RUN")
    installs = re.findall(r"pip install ([^&]*)", runs)
    assert any("--require-hashes" in cmd and "requirements.lock" in cmd for cmd in installs)
    # The project itself goes in without pulling anything unpinned.
    assert all("--require-hashes" in cmd or "--no-deps" in cmd for cmd in installs), installs


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    user = one(stages(dockerfile())[-1], "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "Kubernetes runAsNonRoot can only verify a numeric uid"


def test_dockerfile_entrypoint_and_signals() -> None:
    final = stages(dockerfile())[-1]
    assert exec_form(one(final, "ENTRYPOINT")) == ["newsdedup"]
    assert exec_form(one(final, "CMD")) == ["run", "--config", "/etc/newsdedup/sources.toml"]
    assert one(final, "STOPSIGNAL") == "SIGTERM"


def test_dockerfile_healthcheck_asks_healthz_without_curl() -> None:
    healthcheck = one(stages(dockerfile())[-1], "HEALTHCHECK")
    _, _, command = healthcheck.partition(" CMD ")
    argv = exec_form(command.strip())
    assert (
        argv[0] == "python"
        and "/healthz" in argv[-1]
        and str(DEFAULT_SERVICE.health_port) in argv[-1]
    )
    assert "curl" not in healthcheck and "wget" not in healthcheck


def test_dockerfile_data_dir_is_a_volume_owned_by_the_user() -> None:
    final = stages(dockerfile())[-1]
    data_dir = image_data_dir()
    assert data_dir in exec_form(one(final, "VOLUME"))
    runs = " ".join(rest for key, rest in final if key == "RUN")
    assert re.search(rf"install -d -o \S+ -g \S+ .*{re.escape(data_dir)}", runs)


class _Healthz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_dockerfile_healthcheck_command_runs(status: int, healthy: bool) -> None:
    """The HEALTHCHECK line itself, run here against a stand-in /healthz."""
    argv = exec_form(one(stages(dockerfile())[-1], "HEALTHCHECK").partition(" CMD ")[2].strip())
    handler = type("Handler", (_Healthz,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "NEWSDEDUP_SERVICE_HEALTH_PORT": str(server.server_address[1]),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }  # must be bypassed
    try:
        result = subprocess.run(
            [sys.executable, *argv[1:]], env=env, check=False, capture_output=True, timeout=30
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy, result.stderr.decode()[-500:]


def test_dockerfile_healthcheck_fails_when_nothing_listens() -> None:
    argv = exec_form(one(stages(dockerfile())[-1], "HEALTHCHECK").partition(" CMD ")[2].strip())
    env = {**os.environ, "NEWSDEDUP_SERVICE_HEALTH_PORT": str(free_port())}
    assert (
        subprocess.run(
            [sys.executable, *argv[1:]], env=env, check=False, capture_output=True, timeout=30
        ).returncode
        != 0
    )


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a directory match covers its contents."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        candidates = [body] + ([body[3:]] if body.startswith("**/") else [])
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        suffixes = (
            ["/".join(parts[i:]) for i in range(len(parts))] if body.startswith("**/") else []
        )
        if any(fnmatch.fnmatchcase(p, c) for c in candidates for p in prefixes + suffixes):
            excluded = not negate
    return excluded


def test_dockerignore_admits_what_the_image_copies_and_nothing_secret() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources: list[str] = []
    for key, rest in dockerfile():
        if key == "COPY" and not rest.startswith("--from="):
            sources.extend(shlex.split(rest)[:-1])
    for source in sources:
        if source == "README.md" and not (REPO / source).exists():
            pytest.fail("README.md is missing: pyproject.toml names it, the image build copies it")
        assert (REPO / source).exists(), source
        assert not _dockerignore_excludes(source, patterns), (
            f"{source} is excluded from the context"
        )
    for secret in (
        ".git/config",
        "deploy/.env",
        ".newsdedup/newsdedup.rdb",
        ".venv/bin/python",
        "crawler/__pycache__/config.cpython-311.pyc",
        "tests/test_deploy.py",
    ):
        assert _dockerignore_excludes(secret, patterns), f"{secret} would be sent to the build"


def test_wheel_ships_every_data_file_the_packages_hold() -> None:
    """The image installs a wheel, not the source tree: non-Python files need package-data."""
    setuptools_config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs: dict[str, list[str]] = setuptools_config.get("package-data", {})
    shipped: set[Path] = set()
    for package, patterns in globs.items():
        roots = (
            [REPO / "crawler", REPO / "dedup"]
            if package == "*"
            else [REPO / package.replace(".", "/")]
        )
        for root in roots:
            for pattern in patterns:
                shipped.update(path for path in root.glob(pattern) if path.is_file())
    data_files = {
        path
        for top in ("crawler", "dedup")
        for path in (REPO / top).rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    missing = sorted(str(path.relative_to(REPO)) for path in data_files - shipped)
    assert not missing, f"not in [tool.setuptools.package-data], so not in the image: {missing}"


# --- dependency locks -----------------------------------------------------------------------


def _pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Canonical name -> (version, hashes) from a pip-compile --generate-hashes file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s\\;]+)", block)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            pins[name] = (match.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def test_lock_pins_every_dependency_with_hashes() -> None:
    from importlib.metadata import requires

    pins = _pins(DEPLOY / "requirements.lock")
    assert all(hashes for _, hashes in pins.values()), "a pin without --hash fails --require-hashes"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in deploy/requirements.lock: run deploy/lock.sh"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{name}=={pins[name][0]} does not satisfy {line}: run deploy/lock.sh"
        )
        for extra in requirement.extras:  # e.g. redis[hiredis] -> hiredis must be pinned too
            for dependency in map(Requirement, requires(requirement.name) or []):
                if dependency.marker and dependency.marker.evaluate({"extra": extra}):
                    assert re.sub(r"[-_.]+", "-", dependency.name).lower() in pins, dependency


def test_lock_matches_the_image_python_and_build_backend() -> None:
    header = (DEPLOY / "requirements.lock").read_text()[:400]
    assert "Python 3.11" in header  # markers were resolved for the image's interpreter
    build = _pins(DEPLOY / "build-requirements.lock")
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    for line in requires:
        requirement = Requirement(line)
        assert requirement.specifier.contains(build[requirement.name.lower()][0])


# --- redis.conf -----------------------------------------------------------------------------

# Commands the engine and the service send; none may be renamed or disabled.
USED_COMMANDS = {
    "EVAL",
    "EVALSHA",
    "SCRIPT",
    "XADD",
    "XTRIM",
    "XRANGE",
    "XREVRANGE",
    "XREADGROUP",
    "XACK",
    "XAUTOCLAIM",
    "XGROUP",
    "XLEN",
    "XINFO",
    "HSET",
    "HGET",
    "HGETALL",
    "HMGET",
    "HDEL",
    "SET",
    "GET",
    "DEL",
    "EXPIRE",
    "PEXPIRE",
    "SADD",
    "SREM",
    "SMEMBERS",
    "ZADD",
    "ZRANGEBYSCORE",
    "ZREM",
    "SCAN",
    "INFO",
    "PING",
    "MULTI",
    "EXEC",
}


def test_redis_conf_is_durable_and_never_evicts() -> None:
    conf = redis_conf()
    assert conf["appendonly"] == [["yes"]]
    assert conf["appendfsync"] == [["everysec"]]
    assert conf["maxmemory-policy"] == [["noeviction"]]
    assert re.fullmatch(r"\d+(mb|gb)", conf["maxmemory"][0][0])
    assert conf["protected-mode"] == [["yes"]]
    assert conf["bind"] and conf["dir"] == [["/data"]]
    assert "requirepass" not in conf, "the password must come from the environment, not this file"
    renamed = {args[0].upper() for args in conf.get("rename-command", [])}
    assert not renamed & USED_COMMANDS


def test_redis_conf_loads_on_a_real_redis_server(tmp_path: Path) -> None:
    text = (DEPLOY / "redis.conf").read_text().replace("\ndir /data\n", f"\ndir {tmp_path}\n")
    (tmp_path / "redis.conf").write_text(text)
    with _running_redis([str(tmp_path / "redis.conf")], tmp_path) as client:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        sha = client.script_load("return redis.call('XADD', KEYS[1], '*', 'f', ARGV[1])")
        assert client.evalsha(sha, 1, "s", "v")
        assert client.xlen("s") == 1


# --- docker-compose.yml ---------------------------------------------------------------------


def test_compose_requires_a_redis_password() -> None:
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        compose({})


def test_compose_redis_is_persistent_healthchecked_and_configured() -> None:
    redis_service = compose()["services"]["redis"]
    assert redis_service["image"] == "redis:7-alpine"
    conf_path = redis_service["command"][1]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in redis_service["volumes"]}
    assert (DEPLOY / mounts[conf_path]).resolve() == (DEPLOY / "redis.conf").resolve()
    assert mounts["/data"] in compose()["volumes"]
    assert redis_conf()["dir"] == [["/data"]]
    assert redis_service["command"][2:] == ["--requirepass", "s3cret"]
    test = " ".join(redis_service["healthcheck"]["test"])
    assert "redis-cli ping" in test and "PONG" in test  # redis-cli exits 0 on NOAUTH
    assert redis_service["environment"]["REDISCLI_AUTH"] == "s3cret"


def test_compose_daemon_builds_connects_and_stops_gracefully(tmp_path: Path) -> None:
    services = compose()["services"]
    daemon = services["newsdedup"]
    assert (DEPLOY / daemon["build"]["context"] / daemon["build"]["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    ).resolve()
    url = urlsplit(daemon["environment"]["NEWSDEDUP_REDIS_URL"])
    assert (url.scheme, url.hostname, url.port, url.path, url.password) == (
        "redis",
        "redis",
        6379,
        "/0",
        "s3cret",
    )
    assert url.hostname in services
    assert daemon["depends_on"]["redis"]["condition"] == "service_healthy"
    assert daemon["restart"] == "unless-stopped" and daemon["stop_signal"] == "SIGTERM"
    mounts = {volume.rsplit(":", 2)[1]: volume.split(":")[0] for volume in daemon["volumes"]}
    config_source = DEPLOY / mounts[image_config_path()]
    assert config_source.exists()
    assert mounts[image_data_dir()] in compose()["volumes"]
    settings = effective(
        config_source.read_text(), {k: str(v) for k, v in daemon["environment"].items()}, tmp_path
    )
    grace = seconds(daemon["stop_grace_period"])
    assert grace > settings.service.shutdown_timeout and grace > DEFAULT_SERVICE.shutdown_timeout
    assert daemon["ports"] == [
        f"127.0.0.1:{settings.service.health_port}:{settings.service.health_port}"
    ]
    assert settings.service.health_host == "0.0.0.0"  # else the published port reaches nothing
    assert daemon["read_only"] is True and "/tmp" in daemon["tmpfs"]


# --- systemd unit ---------------------------------------------------------------------------


def test_systemd_unit_parses_and_runs_the_venv_binary() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "newsdedup.service")
    assert set(parser.sections()) == {"Unit", "Service", "Install"}
    service = parser["Service"]
    assert (
        service["ExecStart"]
        == "/opt/newsdedup/.venv/bin/newsdedup run --config " + image_config_path()
    )
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert seconds(service["TimeoutStopSec"]) > DEFAULT_SERVICE.shutdown_timeout
    assert service["EnvironmentFile"] == "-/etc/newsdedup/newsdedup.env"
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_is_unprivileged_and_hardened() -> None:
    service = {key: values[-1] for key, values in unit_entries()["Service"].items()}
    assert service.get("DynamicUser") == "yes" or service.get("User") not in (None, "root", "0")
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    environment = dict(value.split("=", 1) for value in unit_entries()["Service"]["Environment"])
    assert environment["NEWSDEDUP_DATA_DIR"] == f"/var/lib/{service['StateDirectory']}"
    assert "link-local" in service["IPAddressDeny"]


def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "newsdedup.service"
    shutil.copy(DEPLOY / "newsdedup.service", unit)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line
        for line in (verify.stdout + verify.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]  # /opt/newsdedup is not installed here
    assert not complaints, complaints
    # Exposure score in tenths: 20 = 2.0 ("OK"); unhardened services score 9+.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert security.returncode == 0, security.stdout[-2000:]


# --- Kubernetes -----------------------------------------------------------------------------


def _deployment_env() -> dict[str, str]:
    """The daemon's environment, with stand-ins for values Kubernetes fills in."""
    container = k8s("Deployment", "newsdedup")["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item["valueFrom"]:
            env[item["name"]] = "redis://:pw@newsdedup-redis:6379/0"
        else:
            env[item["name"]] = "newsdedup-6d5f7c9b8-x2x4z"
    return env


def _k8s_settings(tmp_path: Path) -> Settings:
    configmap = k8s("ConfigMap", "newsdedup-config")
    return effective(configmap["data"][Path(image_config_path()).name], _deployment_env(), tmp_path)


def test_k8s_manifests_are_namespace_agnostic_and_all_applied() -> None:
    docs = k8s_docs()
    assert all("namespace" not in doc.get("metadata", {}) for _, doc in docs)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {path.name for path, doc in docs if doc["kind"] != "Kustomization"}
    assert listed == files - {"secret.example.yaml"}, "every manifest but the example is applied"


def test_k8s_kustomize_builds() -> None:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], check=False, capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(built.stdout))
    assert kinds == sorted(
        doc["kind"] for path, doc in k8s_docs() if doc["kind"] not in ("Kustomization", "Secret")
    )


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for path, doc in k8s_docs():
        if doc["kind"] != "Kustomization":
            kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_k8s_config_loads_and_the_env_names_exist(tmp_path: Path) -> None:
    settings = _k8s_settings(tmp_path)
    assert settings.sources
    assert settings.redis.url == "redis://:pw@newsdedup-redis:6379/0"
    assert settings.service.health_host == "0.0.0.0"  # probes come from the kubelet, not loopback


def test_k8s_deployment_probes_resources_and_grace(tmp_path: Path) -> None:
    settings = _k8s_settings(tmp_path)
    spec = k8s("Deployment", "newsdedup")["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["terminationGracePeriodSeconds"] > max(
        settings.service.shutdown_timeout, DEFAULT_SERVICE.shutdown_timeout
    )
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports.get(get["port"], get["port"]) == settings.service.health_port
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    cpu_limit = float(str(container["resources"]["limits"]["cpu"]).removesuffix("m")) / (
        1000 if str(container["resources"]["limits"]["cpu"]).endswith("m") else 1
    )
    assert 0 < settings.service.extract_workers <= cpu_limit, "0 would mean one per node CPU"
    assert container.get("args", exec_form(one(stages(dockerfile())[-1], "CMD"))) == exec_form(
        one(stages(dockerfile())[-1], "CMD")
    )


def test_k8s_deployment_security_context() -> None:
    pod = k8s("Deployment", "newsdedup")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    uid = int(one(stages(dockerfile())[-1], "USER").split(":")[0])
    assert (
        pod["securityContext"]["runAsNonRoot"] is True
        and pod["securityContext"]["runAsUser"] == uid
    )
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    # A read-only root needs writable emptyDirs for the data dir and /tmp.
    assert "emptyDir" in volumes[mounts[image_data_dir()]] and "emptyDir" in volumes[mounts["/tmp"]]
    config_volume = volumes[mounts[str(PurePosixPath(image_config_path()).parent)]]
    assert config_volume["configMap"]["name"] == "newsdedup-config"


def test_k8s_secret_example_holds_what_the_pods_read() -> None:
    secret = k8s("Secret", "newsdedup-redis")
    for workload in (k8s("Deployment", "newsdedup"), k8s("StatefulSet", "newsdedup-redis")):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert (
                        ref["name"] == secret["metadata"]["name"]
                        and ref["key"] in secret["stringData"]
                    )


def test_k8s_redis_is_durable_and_never_evicts(tmp_path: Path) -> None:
    statefulset = k8s("StatefulSet", "newsdedup-redis")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    flags = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert flags["--appendonly"] == "yes" and flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--requirepass"] == "$(REDIS_PASSWORD)"
    assert any(item["name"] == "REDIS_PASSWORD" for item in container["env"])
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert flags["--dir"] in mounts
    assert "PONG" in " ".join(container["livenessProbe"]["exec"]["command"])
    # The same flags on a real redis-server (password and data dir swapped for local ones).
    local = [
        str(tmp_path) if arg == flags["--dir"] else arg
        for arg in args
        if arg not in ("--requirepass", "$(REDIS_PASSWORD)")
    ]
    with _running_redis(local, tmp_path) as client:
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("save") == {"save": "3600 1 300 100 60 10000"}


def _egress_allows(policy: dict[str, Any], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if (
                block
                and ip in ipaddress.ip_network(block["cidr"])
                and not any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
            ):
                return True
    return False


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.20.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "127.0.0.1",
        "100.64.0.1",
        "0.0.0.0",
        "fd00::1",
        "fe80::1",
        "::1",
    ],
)
def test_k8s_egress_blocks_what_netguard_refuses(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is not None
    assert not _egress_allows(k8s("NetworkPolicy", "newsdedup"), address)


def test_k8s_egress_reaches_the_internet() -> None:
    policy = k8s("NetworkPolicy", "newsdedup")
    assert _egress_allows(policy, "93.184.216.34") and _egress_allows(policy, "2606:2800:220:1::1")


# --- the example config and the environment variables every deploy file sets ----------------


def _deploy_env_assignments() -> dict[str, str]:
    """NEWSDEDUP_* name -> value, from every place a deploy file sets one for the daemon."""
    found: dict[str, str] = {}
    found.update(
        {k: v for k, v in env_of(stages(dockerfile())[-1]).items() if k.startswith("NEWSDEDUP_")}
    )
    found.update({k: str(v) for k, v in compose()["services"]["newsdedup"]["environment"].items()})
    found.update(_deployment_env())
    for value in unit_entries()["Service"]["Environment"]:
        name, _, setting = value.partition("=")
        found[name] = setting
    for path in (DEPLOY / "newsdedup.env.example",):
        for match in re.finditer(r"^#?\s*(NEWSDEDUP_\w+)=(\S*)", path.read_text(), re.MULTILINE):
            found[match.group(1)] = match.group(2)
    healthcheck = one(stages(dockerfile())[-1], "HEALTHCHECK")
    for name in re.findall(r"NEWSDEDUP_\w+", healthcheck):
        found.setdefault(name, "18787")
    return {name: value for name, value in found.items() if name.startswith("NEWSDEDUP_")}


def test_every_deploy_env_var_is_read_by_the_config() -> None:
    """A misspelt variable would be ignored silently; each one must change the settings."""
    baseline = load_settings(None, env={})
    for name, value in _deploy_env_assignments().items():
        changed = load_settings(None, env={name: value})
        assert changed != baseline, f"{name}={value!r} changes nothing: not a setting"


def test_example_config_loads() -> None:
    settings = load_settings(DEPLOY / "sources.example.toml", env={})
    assert settings.sources and all(source.feeds or source.sitemaps for source in settings.sources)
    assert any(source.allow_networks for source in settings.sources)


# --- Redis Cluster: compose profile and Kubernetes overlay -----------------------------------

CLUSTER_NODE_SERVICES = ("redis-node-1", "redis-node-2", "redis-node-3")


def test_compose_cluster_profile_forms_a_cluster_and_points_the_daemon_at_it(tmp_path: Path) -> None:
    services = compose()["services"]
    assert "profiles" not in services["redis"] and "profiles" not in services["newsdedup"]  # default: one Redis
    for name in CLUSTER_NODE_SERVICES:
        node = services[name]
        assert node["profiles"] == ["cluster"] and node["image"] == "redis:7-alpine"
        script = node["command"][-1]
        for option in ("--cluster-enabled yes", "--requirepass", "--masterauth", "--cluster-announce-hostname",
                       "/usr/local/etc/redis/redis.conf"):
            assert option in script, (name, option)
        assert node["environment"]["NODE_NAME"] == name and node["environment"]["REDISCLI_AUTH"] == "s3cret"
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in node["volumes"]}
        assert mounts["/data"] == f"{name}-data" and mounts["/data"] in compose()["volumes"]
        assert (DEPLOY / mounts["/usr/local/etc/redis/redis.conf"]).resolve() == (DEPLOY / "redis.conf").resolve()
        assert "PONG" in " ".join(node["healthcheck"]["test"])
    create = services["redis-cluster-create"]
    assert create["profiles"] == ["cluster"] and create["restart"] == "no"
    assert create["environment"]["CLUSTER_NODES"].split() == list(CLUSTER_NODE_SERVICES)
    assert {name: dep["condition"] for name, dep in create["depends_on"].items()} == dict.fromkeys(
        CLUSTER_NODE_SERVICES, "service_healthy")
    script = create["command"][-1]
    assert "--cluster create" in script and "cluster_state:ok" in script and "cluster_slots_assigned:" in script
    daemon = services["newsdedup-cluster"]
    assert daemon["profiles"] == ["cluster"]
    assert daemon["depends_on"]["redis-cluster-create"]["condition"] == "service_completed_successfully"
    url = str(daemon["environment"]["NEWSDEDUP_REDIS_URL"])
    settings = effective(image_config_path_text(), {k: str(v) for k, v in daemon["environment"].items()}, tmp_path)
    assert settings.redis.url == url and url.startswith("redis+cluster://:s3cret@")
    assert [host for host, _ in cluster_nodes(url)] == list(CLUSTER_NODE_SERVICES)
    assert redact_url(url) == url.replace("s3cret", "***")
    assert seconds(daemon["stop_grace_period"]) > settings.service.shutdown_timeout


def image_config_path_text() -> str:
    """The config the compose daemons mount (the example next to the compose file)."""
    return (DEPLOY / "sources.example.toml").read_text()


K8S_CLUSTER = DEPLOY / "k8s-cluster"


def _k8s_cluster_docs() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S_CLUSTER / "redis-cluster.yaml").read_text()) if doc]


def test_k8s_cluster_overlay_swaps_the_single_redis_for_a_cluster() -> None:
    overlay = yaml.safe_load((K8S_CLUSTER / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../k8s", "redis-cluster.yaml"]
    deleted = sorted((patch["kind"], patch["metadata"]["name"]) for patch in
                     (yaml.safe_load(item["patch"]) for item in overlay["patches"]))
    single = sorted((doc["kind"], doc["metadata"]["name"]) for doc in
                    yaml.safe_load_all((K8S / "redis.yaml").read_text()) if doc)
    assert deleted == single
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for doc in _k8s_cluster_docs()}
    nodes = docs[("StatefulSet", "newsdedup-redis-cluster")]
    assert nodes["spec"]["replicas"] == 3
    container = nodes["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    options = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert options["--cluster-enabled"] == "yes" and options["--maxmemory-policy"] == "noeviction"
    assert options["--appendonly"] == "yes" and options["--requirepass"] == options["--masterauth"]
    assert {port["containerPort"] for port in container["ports"]} == {6379, 16379}
    labels = nodes["spec"]["template"]["metadata"]["labels"]
    daemon_policy = k8s("NetworkPolicy", "newsdedup")
    redis_egress = daemon_policy["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]
    assert redis_egress.items() <= labels.items()  # the daemons may reach every node
    job = docs[("Job", "newsdedup-redis-cluster-create")]
    job_container = job["spec"]["template"]["spec"]["containers"][0]
    hosts = next(item["value"] for item in job_container["env"] if item["name"] == "CLUSTER_NODES").split()
    assert hosts == [f"newsdedup-redis-cluster-{i}.newsdedup-redis-cluster" for i in range(3)]
    assert "--cluster create" in job_container["command"][-1]
    url = "redis+cluster://:pw@" + ",".join(f"{host}:6379" for host in hosts)
    assert url in (K8S_CLUSTER / "kustomization.yaml").read_text().replace("$PW", "pw")
    assert load_settings(None, env={"NEWSDEDUP_REDIS_URL": url}).redis.url == url


def test_k8s_cluster_kustomize_builds() -> None:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    built = subprocess.run(["kubectl", "kustomize", str(K8S_CLUSTER)], check=False, capture_output=True, text=True,
                           timeout=60)
    assert built.returncode == 0, built.stderr
    names = sorted((doc["kind"], doc["metadata"]["name"]) for doc in yaml.safe_load_all(built.stdout))
    assert ("StatefulSet", "newsdedup-redis") not in names and ("Service", "newsdedup-redis") not in names
    assert ("StatefulSet", "newsdedup-redis-cluster") in names and ("Deployment", "newsdedup") in names
