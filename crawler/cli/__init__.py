"""The `newsdedup` command: a thin layer that parses, calls the library and renders."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import redis

from crawler.config import ConfigError, Settings, load_settings
from crawler.redis_conn import RedisUnavailable, connect
from dedup.engine import Engine, EngineConfig
from dedup.index import IndexParamsMismatch
from dedup.keys import Keys

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    """What every command needs: settings, and (lazily) Redis and the engine."""

    settings: Settings
    _client: redis.Redis | None = None
    _engine: Engine | None = None

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.redis.prefix)

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(self.settings.redis.url, self.settings.data_dir)
        return self._client

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.client, self.keys, engine_config(self.settings))
        return self._engine


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        retention=settings.dedup.retention,
        stream_maxlen=settings.dedup.stream_maxlen,
        stream_retention=settings.dedup.stream_retention,
        overrides_maxlen=settings.dedup.overrides_maxlen,
    )


def common_options(command: F) -> F:
    """--config, --redis-url, --key-prefix and --data-dir, resolved into a Context."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="TOML config file (default: $NEWSDEDUP_CONFIG).")
    @click.option("--redis-url", default=None,
                  help="Redis URL (default: $NEWSDEDUP_REDIS_URL, the config, or the embedded Redis).")
    @click.option("--key-prefix", default=None, help="Redis key prefix (default: newsdedup:).")
    @click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                  help="Where the embedded Redis keeps its files (default: ./.newsdedup).")
    @functools.wraps(command)
    def wrapper(config_path: str | None, redis_url: str | None, key_prefix: str | None,
                data_dir: str | None, **kwargs: Any) -> Any:
        try:
            settings = load_settings(config_path, redis_url=redis_url, key_prefix=key_prefix, data_dir=data_dir)
        except ConfigError as exc:
            raise click.ClickException(f"bad configuration: {exc}") from None
        ctx = Context(settings)
        try:
            return command(ctx, **kwargs)
        except RedisUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        except IndexParamsMismatch as exc:
            raise click.ClickException(str(exc)) from None
        except redis.ConnectionError as exc:
            raise click.ClickException(f"lost the connection to Redis: {exc}") from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="newsdedup")
def main(verbose: int) -> None:
    """newsdedup: crawl syndicated news and keep one canonical copy of every story."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from crawler.cli import dead, ingest, inspect, ops, override, queue, service

    for module in (ingest, service, ops, inspect, override, queue, dead):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
