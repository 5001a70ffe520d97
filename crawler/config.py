"""The one settings model: TOML file, then NEWSDEDUP_* environment variables, then flags."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = ".newsdedup"
DEFAULT_PREFIX = "newsdedup:"
ENV_PREFIX = "NEWSDEDUP_"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, the key and the problem."""


def parse_duration(value: str | int | float) -> float:
    """Seconds in "90s", "10m", "2h", "30d" or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration (use e.g. 90s, 10m, 2h, 30d): {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = None
    """None: the embedded Redis under data_dir."""
    prefix: str = DEFAULT_PREFIX


@dataclass(frozen=True)
class DedupSettings:
    retention: float = 30 * 86400
    """Seconds an article stays in the index and store."""
    stream_maxlen: int = 1_000_000
    """Approximate cap on canonical stream length (0: no cap)."""
    stream_retention: float = 0.0
    """Seconds of history the canonical stream keeps (0: trim by length only)."""


@dataclass(frozen=True)
class ServiceSettings:
    health_host: str = "127.0.0.1"
    health_port: int = 8787
    shutdown_timeout: float = 30.0
    user_agent: str = "newsdedup/0.1 (+https://github.com/newsdedup/newsdedup)"
    extract_workers: int = 0
    """Extraction processes (0: one per core)."""
    log_format: str = "text"


@dataclass(frozen=True)
class SourceSettings:
    name: str
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    every: float | None = None
    cron: str | None = None
    concurrency: int | None = None
    delay: float | None = None
    allow_networks: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    redis: RedisSettings = RedisSettings()
    dedup: DedupSettings = DedupSettings()
    service: ServiceSettings = ServiceSettings()
    sources: tuple[SourceSettings, ...] = ()
    config_path: Path | None = None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    redis_url: str | None = None,
    key_prefix: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Read the TOML file (if any), apply NEWSDEDUP_* variables, then the given flag values."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    raw: dict[str, Any] = {}
    where = "<defaults>"
    if path is not None:
        where = str(path)
        try:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{where}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc}") from None
    settings = _from_mapping(raw, where)
    settings = _apply_env(settings, env)
    if path is not None:
        settings = replace(settings, config_path=Path(path))
    if redis_url:
        settings = replace(settings, redis=replace(settings.redis, url=redis_url))
    if key_prefix:
        settings = replace(settings, redis=replace(settings.redis, prefix=_check_prefix(key_prefix, "--key-prefix")))
    if data_dir:
        settings = replace(settings, data_dir=Path(data_dir))
    return settings


def _check_prefix(prefix: str, where: str) -> str:
    if not prefix or any(ch.isspace() for ch in prefix) or "*" in prefix:
        raise ConfigError(f"{where}: key prefix must be non-empty, without spaces or '*': {prefix!r}")
    return prefix


def _section(raw: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return value


def _typed(section: str, key: str, value: Any, kind: type, where: str) -> Any:
    label = f"{where}: {section}.{key}"
    if kind is float and key in {"retention", "stream_retention", "shutdown_timeout", "every", "delay"}:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label}: expected an integer, got {value!r}")
        if value < 0:
            raise ConfigError(f"{label}: must not be negative, got {value}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{label}: unsupported value {value!r}")  # pragma: no cover


def _build(cls: type, section: str, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: {section}.{key}: unknown key (known: {', '.join(sorted(known))})")
        annotation = str(known[key].type)
        kind: type = int if annotation.startswith("int") else float if annotation.startswith("float") else str
        kwargs[key] = _typed(section, key, value, kind, where)
    return cls(**kwargs)


def _from_mapping(raw: Mapping[str, Any], where: str) -> Settings:
    allowed = {"data_dir", "redis", "dedup", "service", "sources"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}: {key}: unknown key (known: {', '.join(sorted(allowed))})")
    redis_settings = _build(RedisSettings, "redis", _section(raw, "redis", where), where)
    _check_prefix(redis_settings.prefix, f"{where}: redis.prefix")
    dedup = _build(DedupSettings, "dedup", _section(raw, "dedup", where), where)
    if dedup.retention <= 0:
        raise ConfigError(f"{where}: dedup.retention: must be positive")
    service = _build(ServiceSettings, "service", _section(raw, "service", where), where)
    if not 0 <= service.health_port <= 65535:
        raise ConfigError(f"{where}: service.health_port: not a port number: {service.health_port}")
    data_dir = raw.get("data_dir", DEFAULT_DATA_DIR)
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError(f"{where}: data_dir: expected a path string")
    sources = _sources(raw.get("sources", []), where)
    return Settings(Path(data_dir), redis_settings, dedup, service, sources)


def _sources(raw: Any, where: str) -> tuple[SourceSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: sources: expected [[sources]] tables")
    result: list[SourceSettings] = []
    names: set[str] = set()
    for index, entry in enumerate(raw):
        label = f"{where}: sources[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{label}: expected a table")
        name = entry.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ConfigError(f"{label}.name: required, letters, digits, '_', '.', '-' only")
        if name in names:
            raise ConfigError(f"{label}.name: duplicate source name {name!r}")
        names.add(name)
        label = f"{where}: sources.{name}"
        feeds = _url_list(entry.get("feeds", []), f"{label}.feeds")
        sitemaps = _url_list(entry.get("sitemaps", []), f"{label}.sitemaps")
        if not feeds and not sitemaps:
            raise ConfigError(f"{label}: needs at least one of feeds or sitemaps")
        every = entry.get("every")
        cron = entry.get("cron")
        if every is not None and cron is not None:
            raise ConfigError(f"{label}: give either every or cron, not both")
        every_s: float | None = None
        if every is not None:
            try:
                every_s = parse_duration(every)
            except ValueError as exc:
                raise ConfigError(f"{label}.every: {exc}") from None
            if every_s < 1:
                raise ConfigError(f"{label}.every: must be at least 1s")
        if cron is not None:
            if not isinstance(cron, str) or len(cron.split()) != 5:
                raise ConfigError(f"{label}.cron: expected five fields like '*/10 * * * *', got {cron!r}")
            try:
                from apscheduler.triggers.cron import CronTrigger

                CronTrigger.from_crontab(cron)
            except ValueError as exc:
                raise ConfigError(f"{label}.cron: {exc}") from None
        if every is None and cron is None:
            every_s = 600.0
        concurrency = entry.get("concurrency")
        if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1):
            raise ConfigError(f"{label}.concurrency: expected a positive integer, got {concurrency!r}")
        delay = entry.get("delay")
        delay_s: float | None = None
        if delay is not None:
            try:
                delay_s = parse_duration(delay)
            except ValueError as exc:
                raise ConfigError(f"{label}.delay: {exc}") from None
        allow = entry.get("allow_networks", [])
        if not isinstance(allow, list) or not all(isinstance(item, str) for item in allow):
            raise ConfigError(f"{label}.allow_networks: expected a list of CIDR strings")
        known = {"name", "feeds", "sitemaps", "every", "cron", "concurrency", "delay", "allow_networks"}
        extra = {key: value for key, value in entry.items() if key not in known}
        result.append(
            SourceSettings(name, feeds, sitemaps, every_s, cron, concurrency, delay_s, tuple(allow), extra)
        )
    return tuple(result)


def _url_list(value: Any, label: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{label}: expected a list of URLs")
    for url in value:
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(f"{label}: not an http(s) URL: {url!r}")
    return tuple(value)


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    """NEWSDEDUP_REDIS_URL, NEWSDEDUP_REDIS_PREFIX, NEWSDEDUP_DATA_DIR, NEWSDEDUP_<SECTION>_<KEY>."""
    where = "environment"
    if env.get(ENV_PREFIX + "DATA_DIR"):
        settings = replace(settings, data_dir=Path(env[ENV_PREFIX + "DATA_DIR"]))
    for section_name, cls in (("redis", RedisSettings), ("dedup", DedupSettings), ("service", ServiceSettings)):
        section = getattr(settings, section_name)
        updates: dict[str, Any] = {}
        for item in fields(cls):
            var = f"{ENV_PREFIX}{section_name.upper()}_{item.name.upper()}"
            if var not in env:
                continue
            raw_value: Any = env[var]
            annotation = str(item.type)
            if annotation.startswith("int"):
                try:
                    raw_value = int(raw_value)
                except ValueError:
                    raise ConfigError(f"{where}: {var}: expected an integer, got {raw_value!r}") from None
            kind: type = int if annotation.startswith("int") else float if annotation.startswith("float") else str
            updates[item.name] = _typed(section_name, item.name, raw_value, kind, f"{where} ({var})")
        if updates:
            settings = replace(settings, **{section_name: replace(section, **updates)})
    _check_prefix(settings.redis.prefix, "NEWSDEDUP_REDIS_PREFIX")
    return settings
