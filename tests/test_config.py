"""crawler.config: the [crawl] section, per-source politeness, environment and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import ConfigError, load_settings

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
