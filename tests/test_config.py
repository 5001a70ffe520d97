"""crawler.config: the [crawl] section, per-source politeness, environment and refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from crawler.config import ConfigError, load_settings, with_flags

GOOD = """
[crawl]
delay = "500ms"
max_response_size = "2MB"
autothrottle = false
user_agent = "newsdedup-test (+mailto:ops@example.org)"

[service]
lease_ttl = "30s"
log_format = "json"

[[sources]]
name = "wire"
feeds = ["https://wire.example/rss.xml"]
every = "10m"
concurrency = 2
obey_robots = false
timeout = "5s"

[[sources]]
name = "maps"
sitemaps = ["https://maps.example/news-sitemap.xml"]
cron = "*/10 * * * *"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return path


def test_crawl_section_and_source_overrides(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, GOOD), env={})
    assert settings.crawl.delay == 0.5
    assert settings.crawl.max_response_size == 2_000_000
    assert settings.crawl.autothrottle is False
    assert settings.service.lease_ttl == 30.0
    wire = settings.source("wire")
    assert wire is not None and wire.schedule == "every 10m"
    crawl = wire.crawl_settings(settings.crawl)
    assert (crawl.concurrency_per_domain, crawl.obey_robots, crawl.timeout, crawl.delay) == (2, False, 5.0, 0.5)
    maps = settings.source("maps")
    assert maps is not None and maps.schedule == "cron */10 * * * *"
    assert maps.crawl_settings(settings.crawl).obey_robots is True


def test_the_decider_cache_size_reaches_the_engine(tmp_path: Path) -> None:
    from crawler.service import Service

    settings = load_settings(_write(tmp_path, '[dedup]\ncache_size = "16MiB"\n'), env={})
    assert settings.dedup.cache_size == 16 * 1024 * 1024
    service = Service(settings, redis.Redis.from_url("redis://127.0.0.1:1"), health=False)  # never connects
    assert service._engine_config().cache_bytes == 16 * 1024 * 1024
    off = load_settings(_write(tmp_path, ""), env={"NEWSDEDUP_DEDUP_CACHE_SIZE": "0"})
    assert off.dedup.cache_size == 0


def test_environment_overrides_file_and_flags_override_both(tmp_path: Path) -> None:
    env = {"NEWSDEDUP_CRAWL_CONCURRENCY": "7", "NEWSDEDUP_CRAWL_OBEY_ROBOTS": "false",
           "NEWSDEDUP_CRAWL_DELAY": "2s", "NEWSDEDUP_REDIS_URL": "redis://env.example:6379/0"}
    settings = load_settings(_write(tmp_path, GOOD), env=env, redis_url="redis://flag.example:6379/0")
    assert settings.crawl.concurrency == 7
    assert settings.crawl.obey_robots is False
    assert settings.crawl.delay == 2.0
    assert settings.redis.url == "redis://flag.example:6379/0"


@pytest.mark.parametrize(("text", "message"), [
    ("[crawl]\ndelay = \"soon\"\n", "crawl.delay: not a duration"),
    ("[crawl]\nmax_response_size = \"big\"\n", "crawl.max_response_size: not a size"),
    ("[dedup]\ncache_size = \"lots\"\n", "dedup.cache_size: not a size"),
    ("[crawl]\nautothrottle = \"maybe\"\n", "crawl.autothrottle: expected true or false"),
    ("[crawl]\nconcurrency = 0\n", "crawl.concurrency: must be at least 1"),
    ("[crawl]\nspeed = 3\n", "crawl.speed: unknown key"),
    ('[[sources]]\nname = "a"\nfeeds = ["https://a.example/f"]\nfeed = "x"\n', "sources.a.feed: unknown key"),
    ('[[sources]]\nname = "a"\nfeeds = ["https://a.example/f"]\ncron = "every minute"\n', "sources.a.cron"),
    ('[[sources]]\nname = "a"\nfeeds = ["https://a.example/f"]\nretries = -1\n', "sources.a.retries"),
    ('[[sources]]\nname = "a"\n', "needs at least one of feeds or sitemaps"),
    ('[service]\nlog_format = "xml"\n', "service.log_format"),
    ('[[sources]]\nname = "a"\nfeeds = ["https://a.example/f"]\nallow_networks = ["10.0.0.0/33"]\n',
     "sources.a.allow_networks: not a CIDR network: '10.0.0.0/33'"),
])
def test_bad_config_names_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path, env={})
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_bad_environment_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSDEDUP_CRAWL_TIMEOUT"):
        load_settings(_write(tmp_path, GOOD), env={"NEWSDEDUP_CRAWL_TIMEOUT": "forever"})


@pytest.mark.parametrize(("env", "message"), [
    ({"NEWSDEDUP_DEDUP_RETENTION": "0"},
     "environment (NEWSDEDUP_DEDUP_RETENTION): dedup.retention: must be positive"),
    ({"NEWSDEDUP_SERVICE_HEALTH_PORT": "70000"},
     "environment (NEWSDEDUP_SERVICE_HEALTH_PORT): service.health_port: not a port number: 70000"),
    ({"NEWSDEDUP_SERVICE_LEASE_TTL": "0s"}, "environment (NEWSDEDUP_SERVICE_LEASE_TTL): service.lease_ttl"),
    ({"NEWSDEDUP_SERVICE_LOG_FORMAT": "xml"}, "environment (NEWSDEDUP_SERVICE_LOG_FORMAT): service.log_format"),
    ({"NEWSDEDUP_SERVICE_DNS_SERVERS": "dns.example"}, "service.dns_servers: not a DNS server address"),
    ({"NEWSDEDUP_CRAWL_CONCURRENCY": "0"}, "environment (NEWSDEDUP_CRAWL_CONCURRENCY): crawl.concurrency"),
    ({"NEWSDEDUP_REDIS_PREFIX": "a b"}, "environment (NEWSDEDUP_REDIS_PREFIX): redis.prefix"),
])
def test_environment_values_are_validated_like_the_file(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(_write(tmp_path, GOOD), env=env)
    assert message in str(error.value)


def test_file_values_still_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[dedup]\nretention = 0\n[service]\nhealth_port = 70000\n")
    with pytest.raises(ConfigError, match=r"dedup\.retention: must be positive") as error:
        load_settings(path, env={})
    assert str(error.value).startswith(f"{path}: ")


def test_an_environment_value_can_fix_a_file_value(tmp_path: Path) -> None:
    """The merged configuration is what is validated: the layer that wins is the one checked."""
    path = _write(tmp_path, "[service]\nhealth_port = 70000\n")
    assert load_settings(path, env={"NEWSDEDUP_SERVICE_HEALTH_PORT": "9000"}).service.health_port == 9000


def test_flags_are_validated_and_named(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, GOOD), env={})
    with pytest.raises(ConfigError, match=r"^--health-port: service\.health_port: not a port number: 70000$"):
        with_flags(settings, {"service.health_port": ("--health-port", 70000)})
    with pytest.raises(ConfigError, match=r"^--key-prefix: redis\.prefix"):
        load_settings(_write(tmp_path, GOOD), env={}, key_prefix="a*b")
    assert with_flags(settings, {"service.health_port": ("--health-port", 0)}).service.health_port == 0


def test_run_refuses_a_bad_port_from_the_environment_before_starting(tmp_path: Path) -> None:
    """Through the real command: one clear line and exit 1, no service started."""
    path = _write(tmp_path, GOOD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")}
    env.update(NEWSDEDUP_SERVICE_HEALTH_PORT="70000", NEWSDEDUP_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run([sys.executable, "-c", "from crawler.entry import main; main()", "run", "--config",
                             str(path)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [(
        "Error: bad configuration: environment (NEWSDEDUP_SERVICE_HEALTH_PORT): service.health_port: "
        "not a port number: 70000")]
    assert not (tmp_path / "data").exists(), "the embedded Redis was started for a refused configuration"


@pytest.mark.parametrize("redis_toml, env, url", [
    ('url = "redis+cluster://a:7000,b:7001"', {}, "redis+cluster://a:7000,b:7001"),
    ('url = "redis://a:7000/0"\ncluster = true\npassword = "p w"', {}, "redis+cluster://:p%20w@a:7000/0"),
    ('nodes = ["a:7000", "[::1]:7001"]\ntls = true', {}, "rediss+cluster://a:7000,[::1]:7001"),
    ('nodes = ["a:7000"]\nusername = "nd"', {"NEWSDEDUP_REDIS_PASSWORD": "s"}, "redis+cluster://nd:s@a:7000"),
    ('url = "rediss://a:6380/0"', {"NEWSDEDUP_REDIS_CLUSTER": "true"}, "rediss+cluster://a:6380/0"),
    ("", {"NEWSDEDUP_REDIS_NODES": "a:7000, b:7001"}, "redis+cluster://a:7000,b:7001"),
    ('url = "redis://a:6379/0"\nusername = "u"\npassword = "p"', {}, "redis://u:p@a:6379/0"),
])
def test_redis_cluster_settings_fold_into_one_url(tmp_path: Path, redis_toml: str, env: dict[str, str],
                                                   url: str) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(f"[redis]\n{redis_toml}\n", "utf-8")
    settings = load_settings(config, env=env)
    assert settings.redis.url == url
    again = with_flags(settings, {"service.health_port": ("--health-port", 9000)})  # validated again: unchanged
    assert again.redis.url == url


@pytest.mark.parametrize("redis_toml, problem", [
    ("cluster = true", "redis.cluster: a cluster needs redis.nodes"),
    ('url = "redis+cluster://a:7000/3"', "redis.url: bad cluster URL: a Redis Cluster has only database 0"),
    ('url = "redis+cluster://a:x"', "redis.url: bad cluster URL: bad port in 'a:x'"),
    ('url = "unix:///tmp/r.sock"\ncluster = true', "redis.cluster: does not apply to a unix:// socket URL"),
    ('url = "redis://:p@a:6379/0"\npassword = "q"', "redis.password: the URL has credentials already"),
    ('url = "redis://a:6379/0"\nnodes = ["b:7000"]', "redis.nodes: give either redis.url or redis.nodes"),
    ('nodes = ["a:70000"]', "redis.nodes: expected host:port seed nodes: bad port"),
    ('password = "p"', "redis.password: applies to a configured Redis"),
    ('prefix = "a{b}:"', "redis.prefix: must not contain '{' or '}'"),
])
def test_bad_redis_cluster_settings_name_the_key(tmp_path: Path, redis_toml: str, problem: str) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(f"[redis]\n{redis_toml}\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert problem in str(caught.value)
