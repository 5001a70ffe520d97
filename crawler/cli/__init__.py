"""The `newsdedup` command: a thin layer that parses, calls the library and renders.

Errors: every command ends a user mistake or an unreachable service with one `Error:` line on stderr
and exit status 1; a usage error (unknown option, missing argument) is click's, with exit status 2.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import redis

from crawler.config import ConfigError, Settings, load_settings
from crawler.embedded_redis import DB_FILENAME
from crawler.redis_conn import RedisUnavailable, connect, redact_url
from dedup.engine import Engine, EngineConfig
from dedup.index import IndexParams, IndexParamsMismatch
from dedup.keys import Keys

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG_PATHS = ("sources.toml", "/etc/newsdedup/sources.toml")
"""Where commands look for a config file when neither --config nor $NEWSDEDUP_CONFIG names one."""


class NoStore(click.ClickException):
    """A read-only command found no Redis to read: it says where it looked instead of creating a store."""


@dataclass
class Context:
    """What every command needs: settings, and (lazily) Redis and the engine."""

    settings: Settings
    creates_store: bool = False
    """Only commands that write (ingest, run, crawl, demo) may start an embedded Redis in a new directory."""
    _client: redis.Redis | None = None
    _engine: Engine | None = None

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.redis.prefix)

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            url = self.settings.redis.url
            if url is None and not self.creates_store:
                require_embedded_store(self.settings)
            try:
                self._client = connect(url, self.settings.data_dir)
            except ValueError as exc:  # redis-py's verdict on a URL that passed the scheme check
                raise click.ClickException(f"bad Redis URL {redact_url(url or '')}: {exc}") from None
        return self._client

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.client, self.keys, engine_config(self.settings))
        return self._engine


def embedded_store_exists(data_dir: Path) -> bool:
    """True when data_dir holds an embedded Redis's files (its snapshot or append-only file)."""
    if not data_dir.is_dir():
        return False
    return (data_dir / DB_FILENAME).exists() or any(data_dir.glob("appendonly*"))


def require_embedded_store(settings: Settings) -> None:
    """Refuse (one line naming where it looked) instead of creating an empty store to read from."""
    if embedded_store_exists(settings.data_dir):
        return
    looked = ("$NEWSDEDUP_CONFIG", *(p if os.path.isabs(p) else f"./{p}" for p in DEFAULT_CONFIG_PATHS))
    config = str(settings.config_path) if settings.config_path else f"none found ({', '.join(looked)})"
    raise NoStore(
        f"no newsdedup data here: no Redis URL is configured (config: {config}; $NEWSDEDUP_REDIS_URL unset) "
        f"and there is no embedded store in {settings.data_dir.resolve()}. To read the service's data, "
        "pass --redis-url URL or --config FILE (the service's), or --data-dir DIR of its embedded store"
    )


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        retention=settings.dedup.retention,
        stream_maxlen=settings.dedup.stream_maxlen,
        stream_retention=settings.dedup.stream_retention,
        overrides_maxlen=settings.dedup.overrides_maxlen,
        params=IndexParams.for_size(settings.dedup.expected_articles),
    )


def default_config_path(env: os._Environ[str] | dict[str, str] | None = None) -> str | None:
    """$NEWSDEDUP_CONFIG, else the first of ./sources.toml and /etc/newsdedup/sources.toml that exists."""
    env = os.environ if env is None else env
    if env.get("NEWSDEDUP_CONFIG"):
        return env["NEWSDEDUP_CONFIG"]
    return next((path for path in DEFAULT_CONFIG_PATHS if os.path.isfile(path)), None)


def check_data_dir(data_dir: Path) -> None:
    """A data directory that cannot be one (a path through a file) is refused before Redis starts."""
    for parent in (data_dir, *data_dir.parents):
        if parent.exists():
            if not parent.is_dir():
                raise click.ClickException(f"--data-dir {data_dir}: {parent} is not a directory")
            return


def settings_from(config_path: str | None, redis_url: str | None, key_prefix: str | None,
                  data_dir: str | None) -> Settings:
    """The settings from the flags, the environment and the config file, checked before any Redis starts."""
    try:
        settings = load_settings(config_path or default_config_path(), redis_url=redis_url, key_prefix=key_prefix,
                                 data_dir=data_dir)
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from None
    if settings.redis.url is None:
        check_data_dir(settings.data_dir)
    return settings


def common_options(command: F | None = None, *, creates_store: bool = False) -> Any:
    """--config, --redis-url, --key-prefix and --data-dir, resolved into a Context.

    Without creates_store a command never starts an embedded Redis in a directory that holds none.
    """

    def decorate(command: F) -> F:
        @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                      help="TOML config file (default: $NEWSDEDUP_CONFIG, ./sources.toml, "
                           "/etc/newsdedup/sources.toml).")
        @click.option("--redis-url", default=None,
                      help="Redis URL (default: $NEWSDEDUP_REDIS_URL, the config, or the embedded Redis).")
        @click.option("--key-prefix", default=None, help="Redis key prefix (default: newsdedup:).")
        @click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                      help="Where the embedded Redis keeps its files (default: ./.newsdedup).")
        @functools.wraps(command)
        def wrapper(config_path: str | None, redis_url: str | None, key_prefix: str | None,
                    data_dir: str | None, **kwargs: Any) -> Any:
            ctx = Context(settings_from(config_path, redis_url, key_prefix, data_dir), creates_store=creates_store)
            return command(ctx, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(command) if command is not None else decorate


def error_line(exc: BaseException) -> str | None:
    """The one line an expected failure is reported with, or None for a bug."""
    if isinstance(exc, RedisUnavailable | IndexParamsMismatch):
        return str(exc)
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"lost the connection to Redis: {exc}"
    if isinstance(exc, redis.ResponseError):
        return f"Redis refused a command: {exc}"
    if isinstance(exc, UnicodeError):
        return f"not valid text: {exc}"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return None


def _silence_stdout() -> None:
    """The reader of our output went away (`| head`): later writes and the final flush go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


class NewsdedupGroup(click.Group):
    """The root group: one error handler for every command and subcommand."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _silence_stdout()
            raise click.exceptions.Exit(0) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the one boundary where every command's failure is reported
            line = error_line(exc)
            if line is None:
                if logging.getLogger().level <= logging.DEBUG:
                    traceback.print_exc()
                line = f"internal error: {exc.__class__.__name__}: {exc} (run with -vv for the traceback)"
            raise click.ClickException(line) from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except SystemExit as exit_:
            try:
                sys.stdout.flush()
            except BrokenPipeError:  # at the final flush: the reader took what it wanted, which is success
                _silence_stdout()
                raise SystemExit(0) from None
            raise exit_ from None


@click.group(cls=NewsdedupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="newsdedup")
def main(verbose: int) -> None:
    """newsdedup: crawl syndicated news and keep one canonical copy of every story.

    Errors are one `Error:` line and exit status 1; usage errors exit with status 2.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from crawler.cli import control, dead, ingest, inspect, ops, override, queue, service, web

    for module in (ingest, service, ops, inspect, override, queue, control, dead, web):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
