"""Fingerprinting in the extraction workers: each worker process fingerprints the articles it extracts
(junk stripping, site boilerplate counted and discounted, signatures), so the service process only packs
and decides them. One Redis client and engine per worker process, made on first use."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

from dedup.article import Article
from dedup.engine import Engine, EngineConfig, Fingerprinted
from dedup.keys import Keys
from dedup.validate import InvalidArticle

log = logging.getLogger(__name__)

RETRY_AFTER = 10.0
"""Seconds a worker leaves fingerprinting to the decider after Redis failed it (instead of waiting on
Redis for every page while it is away)."""
_PLAIN = (str, bytes, int, float, bool, type(None))


@dataclass(frozen=True)
class FingerprintSpec:
    """What a worker needs to fingerprint as the service's engine would: how to reach its Redis (plain
    connection settings, no live objects: it is pickled to the worker), the key prefix, the engine's
    configuration."""

    connection_class: type
    connection_kwargs: dict[str, Any]
    prefix: str
    config: EngineConfig
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Names this spec in a worker's cache of engines (the same spec arrives with every page)."""

    @classmethod
    def of(cls, client: Any, keys: Keys, config: EngineConfig) -> FingerprintSpec | None:
        """The spec for workers to reach the client's server; None for a client that is not one Redis
        connection pool (a cluster client): the decider then fingerprints."""
        pool = getattr(client, "connection_pool", None)
        if not isinstance(client, redis.Redis) or not isinstance(pool, redis.ConnectionPool):
            return None
        # redis-py keeps live helpers (locks, handlers) beside the settings, and copies under orig_*.
        kwargs = {name: value for name, value in pool.connection_kwargs.items()
                  if isinstance(value, _PLAIN) and not name.startswith("orig_")}
        return cls(pool.connection_class, kwargs, keys.prefix, config)

    def engine(self) -> Engine:
        pool = redis.ConnectionPool(connection_class=self.connection_class, **self.connection_kwargs)
        return Engine(redis.Redis(connection_pool=pool), Keys(self.prefix), self.config)


_engines: dict[str, Engine] = {}
_failed_until: dict[str, float] = {}


def fingerprinted(article: Article, spec: FingerprintSpec | None) -> Article | Fingerprinted:
    """Worker: the article fingerprinted (its site's boilerplate counted in Redis); the article as it is
    when that cannot be done here (the decider then does it, or dead-letters an invalid article)."""
    if spec is None or time.monotonic() < _failed_until.get(spec.token, 0.0):
        return article
    engine = _engines.get(spec.token)
    try:
        if engine is None:
            engine = _engines[spec.token] = spec.engine()
    except Exception as exc:  # noqa: BLE001 - Redis away, or an index of other parameters (the decider refuses to start)
        _failed_until[spec.token] = time.monotonic() + RETRY_AFTER
        log.warning("fingerprinting left to the decider for %.0fs: %s: %s", RETRY_AFTER, type(exc).__name__, exc)
        return article
    try:
        return engine.fingerprint_many([article])[0]
    except InvalidArticle:
        return article  # refused by the decider, with its reason, onto the dead letters
    except redis.RedisError as exc:
        _failed_until[spec.token] = time.monotonic() + RETRY_AFTER
        _engines.pop(spec.token, None)
        engine.client.close()
        log.warning("fingerprinting left to the decider for %.0fs: Redis: %s (%s)", RETRY_AFTER, exc, article.url)
        return article
    except Exception:  # one article's boundary: the decider tries it again, dead-letters it if it fails
        log.warning("fingerprinting failed, left to the decider: %s", article.url, exc_info=True)
        return article
