"""crawler.spiders in a real crawl: a host that refuses connections, robots.txt included."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from tests.service_process import NEWSDEDUP, service_env


def test_unreachable_robots_txt_is_one_line_and_a_count_then_the_host_is_crawled(
    tmp_path: Path, redis_server_url: str, key_prefix: str,
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = f"http://127.0.0.1:{port}/feed.xml"
    config = tmp_path / "sources.toml"
    config.write_text(f"""
[crawl]
delay = "0s"
autothrottle = false
timeout = "2s"
retries = 1
retry_backoff = "0.1s"

[service]
extract_workers = 1

[[sources]]
name = "refusing"
feeds = ["{feed}"]
""")
    env = service_env(redis_server_url, key_prefix)
    result = subprocess.run(NEWSDEDUP + ["crawl", "refusing", "--config", str(config), "--json"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    log = result.stderr
    assert "Traceback" not in log, log
    robots = [line for line in log.splitlines() if "robots.txt" in line]
    assert len(robots) == 1, log
    assert f"source=refusing url=http://127.0.0.1:{port}/robots.txt: robots.txt unreachable" in robots[0]
    assert "Connection" in robots[0] and "refused" in robots[0]
    # Then the host is crawled as if it had no robots.txt: the feed is requested (and refused too).
    assert f"source=refusing url={feed}: feed or sitemap fetch failed" in log, log
    assert json.loads(result.stdout)["outcome"] == "partial"
    listed = subprocess.run(NEWSDEDUP + ["sources", "--config", str(config), "--json"], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    counts = json.loads(listed.stdout.splitlines()[0])["last_counts"]
    assert counts["robots_unreachable"] == 1, counts
