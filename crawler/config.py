"""The one settings model: TOML file, then NEWSDEDUP_* environment variables, then flags."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from crawler.netguard import parse_dns_servers, parse_networks
from crawler.redis_conn import cluster_nodes, cluster_url, join_url, parse_node, split_url

DEFAULT_DATA_DIR = ".newsdedup"
DEFAULT_PREFIX = "newsdedup:"
ENV_PREFIX = "NEWSDEDUP_"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
# Keys whose values are durations ("10m") or sizes ("5MB"); other floats are plain numbers.
_DURATION_KEYS = frozenset({
    "retention", "stream_retention", "shutdown_timeout", "every", "delay", "max_delay", "timeout",
    "claim_idle", "lease_ttl", "retry_backoff", "retry_backoff_max", "max_age",
})
_SIZE_KEYS = frozenset({"max_response_size", "cache_size"})


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


def parse_size(value: str | int) -> int:
    """Bytes in "5MB", "512KiB" or a plain number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative size: {value!r}")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size (use e.g. 5MB, 512KiB or a number of bytes): {value!r}")
    unit = match.group(2).lower() if match.group(2) else None
    return int(float(match.group(1)) * _UNIT_BYTES[unit])


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = None
    """None: the embedded Redis under data_dir (or the cluster of `nodes`). After validation, the URL
    every client is made from: cluster, nodes, username, password and tls folded in."""
    prefix: str = DEFAULT_PREFIX
    cluster: bool = False
    """The URL's hosts (or `nodes`) are seed nodes of a Redis Cluster (same as redis+cluster://)."""
    nodes: tuple[str, ...] = ()
    """Seed nodes host:port of a Redis Cluster, when no URL is given (implies cluster)."""
    username: str = ""
    """ACL user, when the URL names none."""
    password: str = ""
    """Password, when the URL has none (NEWSDEDUP_REDIS_PASSWORD keeps it out of the file)."""
    tls: bool = False
    """TLS to the nodes (same as rediss:// or rediss+cluster://)."""


@dataclass(frozen=True)
class DedupSettings:
    retention: float = 30 * 86400
    """Seconds an article stays in the index and store."""
    stream_maxlen: int = 1_000_000
    """Approximate cap on canonical stream length (0: no cap)."""
    stream_retention: float = 0.0
    """Seconds of history the canonical stream keeps (0: trim by length only)."""
    overrides_maxlen: int = 10_000
    """Entries the operator overrides log keeps, the newest (0: no cap); older ones cannot be undone."""
    expected_articles: int = 1_000_000
    """Articles the index is expected to hold (about a day's articles times the retention in days):
    sizes a new index's band shards so they stay compact up to about twice that (0: the smallest
    layout, 16,384 shards, compact up to about 200,000). An existing index keeps the size it was
    created with (`status` says when it has outgrown it)."""
    cache_size: int = 64 * 1024 * 1024
    """Bytes ("64MB") the deciding process keeps recent records and clusters in, while it holds the decider
    lease batch after batch (0: none): a story copied thousands of times is then decided without
    reading its members from Redis again."""


@dataclass(frozen=True)
class ServiceSettings:
    health_host: str = "127.0.0.1"
    health_port: int = 8787
    shutdown_timeout: float = 30.0
    user_agent: str = "newsdedup/0.1 (+https://github.com/newsdedup/newsdedup)"
    extract_workers: int = 0
    """Extraction processes (0: one per core)."""
    log_format: str = "text"
    """"text" or "json" (one JSON object per line)."""
    instance: str = ""
    """Name of this instance in leases and the inbox consumer group (default: host name)."""
    lease_ttl: float = 60.0
    """A source lease outlives a dead instance by at most this long."""
    claim_idle: float = 60.0
    """Inbox entries another instance has held this long are taken over and decided here."""
    inbox_maxlen: int = 100_000
    """Crawling pauses while this many fetched articles wait for a decision."""
    dns_servers: str = ""
    """DNS servers the crawler resolves with ("10.0.0.2, 10.0.0.3:5353"); empty: the system's resolver."""
    fingerprint_in_workers: bool = False
    """Fingerprint articles in the extraction workers instead of the decider (crawler.workers): a cheaper
    service process, dearer workers (a Redis round trip per page); for machines with cores to spare."""


@dataclass(frozen=True)
class WebSettings:
    """The dashboard (`newsdedup web`); [web] in the file."""

    host: str = "127.0.0.1"
    port: int = 8788
    token: str = ""
    """Bearer token (or ?token= once, then a cookie); required with user/password unset off loopback."""
    user: str = ""
    password: str = ""
    """HTTP basic auth, instead of or besides the token."""
    overrides: bool = False
    """Allow split, merge, promote and undo from the dashboard (authenticated users only)."""


@dataclass(frozen=True)
class CrawlSettings:
    """Politeness and limits for fetching; [crawl] in the file, overridable per source."""

    concurrency: int = 32
    """Requests in flight per crawl, all domains together."""
    concurrency_per_domain: int = 4
    delay: float = 0.25
    """Minimum seconds between requests to one domain (AutoThrottle may wait longer)."""
    autothrottle: bool = True
    autothrottle_target: float = 2.0
    """Average parallel requests AutoThrottle aims for per domain."""
    max_delay: float = 30.0
    retries: int = 3
    retry_backoff: float = 1.0
    """First wait before retrying a 429/5xx or a network error; doubles each retry."""
    retry_backoff_max: float = 60.0
    timeout: float = 30.0
    max_response_size: int = 10 * 1024 * 1024
    """Largest response body accepted, after decompression."""
    obey_robots: bool = True
    max_redirects: int = 5
    max_articles: int = 5000
    """Article pages fetched per crawl of one source, at most (0: no limit)."""
    max_age: float = 0.0
    """Entries a feed or sitemap dates older than this are not fetched (0: no limit)."""
    user_agent: str = ""
    """Overrides [service] user_agent when set."""


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
    crawl: Mapping[str, Any] = field(default_factory=dict)
    """Per-source [crawl] overrides (validated names and values)."""

    def crawl_settings(self, defaults: CrawlSettings) -> CrawlSettings:
        """The [crawl] settings with this source's overrides applied."""
        values = dict(self.crawl)
        if self.concurrency is not None:
            values["concurrency_per_domain"] = self.concurrency
        if self.delay is not None:
            values["delay"] = self.delay
        return replace(defaults, **values)

    @property
    def schedule(self) -> str:
        """The schedule as written: "every 10m" or "cron */10 * * * *"."""
        if self.cron:
            return f"cron {self.cron}"
        every = self.every or 600.0
        for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
            if every >= seconds and every % seconds == 0:
                return f"every {int(every // seconds)}{unit}"
        return f"every {every:g}s"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    redis: RedisSettings = RedisSettings()
    dedup: DedupSettings = DedupSettings()
    service: ServiceSettings = ServiceSettings()
    sources: tuple[SourceSettings, ...] = ()
    config_path: Path | None = None
    crawl: CrawlSettings = CrawlSettings()
    web: WebSettings = WebSettings()
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Per "section.key", the layer its value came from (the file, a variable, a flag); else the default."""

    def source(self, name: str) -> SourceSettings | None:
        return next((source for source in self.sources if source.name == name), None)


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
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not a TOML file (not UTF-8 text)") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc}") from None
    settings = _from_mapping(raw, where)
    settings = _apply_env(settings, env)
    if path is not None:
        settings = replace(settings, config_path=Path(path))
    flags: dict[str, tuple[str, Any]] = {}
    if redis_url:
        flags["redis.url"] = ("--redis-url", redis_url)
    if key_prefix:
        flags["redis.prefix"] = ("--key-prefix", key_prefix)
    if data_dir:
        flags["data_dir"] = ("--data-dir", Path(data_dir))
    return with_flags(settings, flags)


def with_flags(settings: Settings, flags: Mapping[str, tuple[str, Any]]) -> Settings:
    """`settings` with command-line values ({"service.health_port": ("--health-port", 9000)}), validated."""
    origins = dict(settings.origins)
    for dotted, (flag, value) in flags.items():
        origins[dotted] = flag
        section, _, key = dotted.rpartition(".")
        if not section:
            settings = replace(settings, **{key: value})
        else:
            settings = replace(settings, **{section: replace(getattr(settings, section), **{key: value})})
    return validate(replace(settings, origins=origins))


def validate(settings: Settings) -> Settings:
    """Check the merged settings once, whichever layer each value came from; ConfigError names it and the key."""

    def fail(dotted: str, problem: str) -> ConfigError:
        return ConfigError(f"{settings.origins.get(dotted, '<defaults>')}: {dotted}: {problem}")

    prefix = settings.redis.prefix
    if not prefix or any(ch.isspace() for ch in prefix) or "*" in prefix:
        raise fail("redis.prefix", f"key prefix must be non-empty, without spaces or '*': {prefix!r}")
    settings = replace(settings, redis=_redis_problem(settings.redis, fail))
    if not str(settings.data_dir):
        raise fail("data_dir", "expected a path")
    if settings.dedup.retention <= 0:
        raise fail("dedup.retention", f"must be positive, got {settings.dedup.retention:g}s")
    service = settings.service
    if not 0 <= service.health_port <= 65535:
        raise fail("service.health_port", f"not a port number: {service.health_port}")
    if service.log_format not in ("text", "json"):
        raise fail("service.log_format", f"expected \"text\" or \"json\", got {service.log_format!r}")
    for key in ("lease_ttl", "shutdown_timeout", "claim_idle"):
        if getattr(service, key) <= 0:
            raise fail(f"service.{key}", f"must be positive, got {getattr(service, key):g}s")
    if service.extract_workers < 0:
        raise fail("service.extract_workers", "must not be negative (0: one per core)")
    if service.inbox_maxlen < 1:
        raise fail("service.inbox_maxlen", "must be at least 1")
    try:
        parse_dns_servers(service.dns_servers)
    except ValueError as exc:
        raise fail("service.dns_servers", str(exc)) from None
    problem = _crawl_problem(settings.crawl)
    if problem is not None:
        raise fail(f"crawl.{problem[0]}", problem[1])
    web = settings.web
    if not 0 <= web.port <= 65535:
        raise fail("web.port", f"not a port number: {web.port}")
    if web.token and len(web.token) < MIN_TOKEN_LENGTH:
        raise fail("web.token", f"too short to be a secret (at least {MIN_TOKEN_LENGTH} characters; "
                                "e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe())'`)")
    if web.user and not web.password:
        raise fail("web.user", "basic auth needs web.password as well")
    if web.password and not web.user:
        raise fail("web.password", "basic auth needs web.user as well")
    if ":" in web.user:
        raise fail("web.user", "must not contain ':' (basic auth separates user and password with it)")
    return settings


def _redis_problem(section: RedisSettings, fail: Callable[[str, str], ConfigError]) -> RedisSettings:
    """[redis] with its URL made whole (cluster, nodes, credentials, TLS folded in); ConfigError when unusable."""
    url = section.url
    if url and not re.match(r"^(redis|rediss|unix|redis\+cluster|rediss\+cluster)://", url):
        raise fail("redis.url", "expected a redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// URL")
    for node in section.nodes:
        try:
            parse_node(node)
        except ValueError as exc:
            raise fail("redis.nodes", f"expected host:port seed nodes: {exc}") from None
    if section.nodes and url:
        raise fail("redis.nodes", "give either redis.url or redis.nodes, not both")
    if "{" in section.prefix or "}" in section.prefix:
        raise fail("redis.prefix", "must not contain '{' or '}' (newsdedup places keys in cluster slots with "
                                   "hash tags of its own)")
    if section.nodes:
        url = cluster_url(section.nodes, tls=section.tls)
        section = replace(section, cluster=True)
    elif url is None:
        if section.cluster:
            raise fail("redis.cluster", "a cluster needs redis.nodes (seed host:port list) or a redis+cluster:// URL")
        if section.username or section.password or section.tls:
            raise fail("redis.password" if section.password else "redis.username" if section.username
                       else "redis.tls", "applies to a configured Redis: set redis.url or redis.nodes too")
        return section
    scheme, credentials, hosts, path, query = split_url(url)
    if section.cluster or section.tls:
        if scheme == "unix":
            raise fail("redis.cluster" if section.cluster else "redis.tls", "does not apply to a unix:// socket URL")
        tls = section.tls or scheme.startswith("rediss")
        scheme = ("rediss" if tls else "redis") + ("+cluster" if section.cluster or "+cluster" in scheme else "")
    if "+cluster" in scheme:
        try:
            cluster_nodes(join_url(scheme, "", hosts, path, query))
        except ValueError as exc:
            raise fail("redis.url", f"bad cluster URL: {exc}") from None
    if (section.username or section.password) and scheme != "unix":
        if credentials:
            raise fail("redis.password" if section.password else "redis.username",
                       "the URL has credentials already: give them in one place")
        credentials = quote(section.username, safe="") + (f":{quote(section.password, safe='')}"
                                                          if section.password else "")
    # Folded into the URL, so that validating again (with_flags) finds nothing given twice.
    return replace(section, url=join_url(scheme, credentials, hosts, path, query), nodes=(), username="", password="")


MIN_TOKEN_LENGTH = 16
"""Shortest [web] token accepted: a secret, not a word."""


def _crawl_problem(crawl: CrawlSettings) -> tuple[str, str] | None:
    """(key, problem) for the first unusable [crawl] value, else None."""
    for key in ("concurrency", "concurrency_per_domain", "max_response_size"):
        if getattr(crawl, key) < 1:
            return key, "must be at least 1"
    if crawl.timeout <= 0:
        return "timeout", "must be positive"
    return None


def _section(raw: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return value


def _typed(section: str, key: str, value: Any, kind: type, where: str) -> Any:
    label = f"{where}: {section}.{key}"
    if kind is float and key in _DURATION_KEYS:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    if kind is int and key in _SIZE_KEYS:
        try:
            return parse_size(value)
        except ValueError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    if kind is bool:
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.strip().lower() in {"1", "true", "yes", "on"}
        if not isinstance(value, bool):
            raise ConfigError(f"{label}: expected true or false, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{label}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{label}: expected a non-negative number, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label}: expected an integer, got {value!r}")
        if value < 0:
            raise ConfigError(f"{label}: must not be negative, got {value}")
        return value
    if kind is tuple:  # a list of strings; from a variable, comma-separated
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{label}: expected a list of strings, got {value!r}")
        return tuple(value)
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
        kwargs[key] = _typed(section, key, value, _kind(known[key].type), where)
    return cls(**kwargs)


def _kind(annotation: object) -> type:
    text = str(annotation)
    if text.startswith("tuple"):
        return tuple
    for kind in (bool, int, float):
        if text.startswith(kind.__name__):
            return kind
    return str


def _from_mapping(raw: Mapping[str, Any], where: str) -> Settings:
    allowed = {"data_dir", "redis", "dedup", "service", "crawl", "sources", "web"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}: {key}: unknown key (known: {', '.join(sorted(allowed))})")
    origins: dict[str, str] = {}
    built: dict[str, Any] = {}
    for name, cls in (("redis", RedisSettings), ("dedup", DedupSettings), ("service", ServiceSettings),
                      ("crawl", CrawlSettings), ("web", WebSettings)):
        section = _section(raw, name, where)
        built[name] = _build(cls, name, section, where)
        origins.update({f"{name}.{key}": where for key in section})
    data_dir = raw.get("data_dir", DEFAULT_DATA_DIR)
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError(f"{where}: data_dir: expected a path string")
    if "data_dir" in raw:
        origins["data_dir"] = where
    sources = _sources(raw.get("sources", []), where)
    return Settings(Path(data_dir), sources=sources, origins=origins, **built)


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
        try:
            parse_networks(tuple(allow))
        except ValueError as exc:
            raise ConfigError(f"{label}.{exc}") from None
        known = {"name", "feeds", "sitemaps", "every", "cron", "concurrency", "delay", "allow_networks"}
        overridable = {f.name: f for f in fields(CrawlSettings)}
        crawl: dict[str, Any] = {}
        for key, value in entry.items():
            if key in known:
                continue
            if key not in overridable:
                options = ", ".join(sorted(known | set(overridable)))
                raise ConfigError(f"{label}.{key}: unknown key (known: {options})")
            crawl[key] = _typed(f"sources.{name}", key, value, _kind(overridable[key].type), where)
        problem = _crawl_problem(replace(CrawlSettings(), **crawl))
        if problem is not None:
            raise ConfigError(f"{label}.{problem[0]}: {problem[1]}")
        result.append(
            SourceSettings(name, feeds, sitemaps, every_s, cron, concurrency, delay_s, tuple(allow), {}, crawl)
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
    origins = dict(settings.origins)
    if env.get(ENV_PREFIX + "DATA_DIR"):
        settings = replace(settings, data_dir=Path(env[ENV_PREFIX + "DATA_DIR"]))
        origins["data_dir"] = f"{where} ({ENV_PREFIX}DATA_DIR)"
    sections = (("redis", RedisSettings), ("dedup", DedupSettings), ("service", ServiceSettings),
                ("crawl", CrawlSettings), ("web", WebSettings))
    for section_name, cls in sections:
        section = getattr(settings, section_name)
        updates: dict[str, Any] = {}
        for item in fields(cls):
            var = f"{ENV_PREFIX}{section_name.upper()}_{item.name.upper()}"
            if var not in env:
                continue
            raw_value: Any = env[var]
            kind = _kind(item.type)
            if kind is int and item.name not in _SIZE_KEYS:
                try:
                    raw_value = int(raw_value)
                except ValueError:
                    raise ConfigError(f"{where}: {var}: expected an integer, got {raw_value!r}") from None
            updates[item.name] = _typed(section_name, item.name, raw_value, kind, f"{where} ({var})")
            origins[f"{section_name}.{item.name}"] = f"{where} ({var})"
        if updates:
            settings = replace(settings, **{section_name: replace(section, **updates)})
    return replace(settings, origins=origins)
