"""Creating the Redis client: a configured server or cluster, or the embedded one under the data directory.

URLs: redis://, rediss:// (TLS), unix:// for one server; redis+cluster://host:port[,host:port...] and
rediss+cluster:// (TLS) for a Redis Cluster, whose hosts are seed nodes (the client learns the rest
from the cluster). User and password go in the URL as usual; TLS options (ssl_ca_certs, ssl_cert_reqs,
ssl_certfile, ssl_keyfile...) in its query string, as redis-py reads them for rediss://.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

log = logging.getLogger(__name__)

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
URL_SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES)
_TIMEOUTS: dict[str, Any] = {"socket_connect_timeout": 5, "socket_timeout": 30, "health_check_interval": 30}


class RedisUnavailable(RuntimeError):
    """Redis could not be reached or started."""


def split_url(url: str) -> tuple[str, str, str, str, str]:
    """(scheme, credentials, hosts, path, query) of a Redis URL; hosts may list several host:port."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    credentials, _, hosts = authority.rpartition("@")
    return scheme, credentials, hosts, slash + path, query


def join_url(scheme: str, credentials: str, hosts: str, path: str, query: str) -> str:
    return f"{scheme}://{credentials}{'@' if credentials else ''}{hosts}{path}{'?' if query else ''}{query}"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, fit for logs and status output."""
    scheme, credentials, hosts, path, query = split_url(url)
    user, colon, _ = credentials.partition(":")
    if not colon:
        return url
    return join_url(scheme, f"{user}:***", hosts, path, query)


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The seed nodes (host, port) of a redis+cluster:// URL; ValueError names what is wrong."""
    scheme, _, hosts, path, _ = split_url(url)
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError("expected redis+cluster:// or rediss+cluster://")
    if path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has only database 0")
    return [parse_node(item) for item in hosts.split(",")]


def parse_node(text: str) -> tuple[str, int]:
    """host:port (or [v6]:port; port 6379 when left out) as (host, port); ValueError when malformed."""
    text = text.strip()
    if text.startswith("["):
        host, _, port_text = text[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port_text:
        return host, 6379
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and url.partition("://")[0] in CLUSTER_SCHEMES  # type: ignore[union-attr]


def cluster_url(nodes: list[str] | tuple[str, ...], *, tls: bool = False, username: str = "",
                password: str = "") -> str:
    """A redis+cluster:// URL for seed nodes given as host:port, with optional credentials."""
    scheme = "rediss+cluster" if tls else "redis+cluster"
    credentials = ""
    if username or password:
        credentials = f"{quote(username, safe='')}:{quote(password, safe='')}@" if password else \
            f"{quote(username, safe='')}@"
    return f"{scheme}://{credentials}{','.join(nodes)}"


def connect(url: str | None, data_dir: str | os.PathLike[str], *, check: bool = True,
            exclusive: bool = False) -> Any:
    """A client for `url` (redis.Redis, or RedisCluster for a cluster URL), or for the embedded server
    persisted under `data_dir` when url is None.

    exclusive: the embedded server must be this process's own (``newsdedup run``), never another's.
    """
    client: Any
    if url and is_cluster_url(url):
        try:
            client = _cluster(url)
        except (redis.RedisError, RedisClusterException, OSError) as exc:  # no seed node told the layout
            raise RedisUnavailable(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
    elif url:
        client = redis.Redis.from_url(url, **_TIMEOUTS)
    else:
        client = _embedded(Path(data_dir), exclusive)
    if check:
        try:
            client.ping()
        except redis.RedisError as exc:
            where = redact_url(url) if url else f"embedded Redis in {data_dir}"
            raise RedisUnavailable(f"cannot reach Redis at {where}: {exc}") from exc
    return client


def connect_cluster_waiting(url: str, stop: Callable[[], bool], *, backoff: float = 0.5,
                            max_backoff: float = 30.0) -> RedisCluster:
    """A client for a cluster that may not be up yet (the service's start): tried with backoff, a
    warning now and then, until it answers or `stop()` says the service is stopping (RedisUnavailable)."""
    delay, attempts = backoff, 0
    while True:
        try:
            client = _cluster(url)
            client.ping()
            return client
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            attempts += 1
            if stop():
                raise RedisUnavailable(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
            level = logging.WARNING if attempts == 1 or attempts % 10 == 0 else logging.DEBUG
            log.log(level, "Redis unreachable (start, attempt %d): %s; retrying in %.1fs", attempts, exc, delay)
            time.sleep(delay)
            delay = min(max_backoff, delay * 2)


def _cluster(url: str) -> RedisCluster:
    """A RedisCluster client from redis+cluster://: the first seed node goes as a plain URL (redis-py
    reads credentials, TLS options and timeouts from it), the others as further startup nodes."""
    nodes = cluster_nodes(url)
    scheme, credentials, _, _, query = split_url(url)
    host, port = nodes[0]
    first = join_url(CLUSTER_SCHEMES[scheme], credentials, f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                     "", query)
    return RedisCluster(
        url=first,
        startup_nodes=[ClusterNode(h, p) for h, p in nodes[1:]],
        # No load_balancing_strategy: every command goes to the slot's primary. Replicas lag it, and a
        # decision, a lease or a seen-set read there could be stale.
        **_TIMEOUTS,
    )


def _embedded(data_dir: Path, exclusive: bool) -> redis.Redis:
    """The private redis-server whose files live in data_dir (crawler.embedded_redis)."""
    from crawler.embedded_redis import EmbeddedRedisError, client_for

    try:
        return client_for(data_dir, exclusive=exclusive)
    except EmbeddedRedisError as exc:
        raise RedisUnavailable(str(exc)) from None
    except OSError as exc:
        raise RedisUnavailable(f"cannot start the embedded Redis in {data_dir}: {exc}") from exc
