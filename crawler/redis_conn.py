"""Creating the Redis client: a configured server, or the embedded one under the data directory."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

log = logging.getLogger(__name__)

class RedisUnavailable(RuntimeError):
    """Redis could not be reached or started."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, fit for logs and status output."""
    parts = urlsplit(url)
    if parts.password is None and not parts.username:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if user else f":***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connect(url: str | None, data_dir: str | os.PathLike[str], *, check: bool = True,
            exclusive: bool = False) -> redis.Redis:
    """A client for `url`, or for the embedded server persisted under `data_dir` when url is None.

    exclusive: the embedded server must be this process's own (``newsdedup run``), never another's.
    """
    if url:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30
        )
    else:
        client = _embedded(Path(data_dir), exclusive)
    if check:
        try:
            client.ping()
        except redis.RedisError as exc:
            where = redact_url(url) if url else f"embedded Redis in {data_dir}"
            raise RedisUnavailable(f"cannot reach Redis at {where}: {exc}") from exc
    return client


def _embedded(data_dir: Path, exclusive: bool) -> redis.Redis:
    """The private redis-server whose files live in data_dir (crawler.embedded_redis)."""
    from crawler.embedded_redis import EmbeddedRedisError, client_for

    try:
        return client_for(data_dir, exclusive=exclusive)
    except EmbeddedRedisError as exc:
        raise RedisUnavailable(str(exc)) from None
    except OSError as exc:
        raise RedisUnavailable(f"cannot start the embedded Redis in {data_dir}: {exc}") from exc
