"""`newsdedup demo` through the real entry point: progress, stories by title, and data kept where it says."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from crawler.demo.runner import SEED_TITLE
from tests.service_process import NEWSDEDUP


def _demo(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NEWSDEDUP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


def test_demo_names_stories_by_title_and_keeps_its_data_where_it_says(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDEDUP_")} | {"TMPDIR": str(temporary)}
    result = _demo(tmp_path, env, "demo", "--seconds", "120")
    assert result.returncode == 0, result.stderr
    assert " INFO " not in result.stderr and "demo: crawled 5 of 5 sources" in result.stderr
    data_dir = tmp_path / "newsdedup-demo"
    assert f"data stays in an embedded Redis in {data_dir}" in result.stderr
    for command in ("newsdedup status --data-dir newsdedup-demo", "newsdedup show URL --data-dir newsdedup-demo",
                    "newsdedup web --data-dir newsdedup-demo"):
        assert command in result.stderr
    lines = result.stdout.splitlines()
    assert SEED_TITLE in lines and "Tim Cook on Apple being pulled into the enterprise" in lines
    assert "South Dakota Gov" not in lines
    # The embedded server was stopped (its socket directory under TMPDIR removed); its data stays.
    assert list(temporary.iterdir()) == []
    status = _demo(tmp_path, env, "status", "--data-dir", "newsdedup-demo", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    decided = report["totals"]["articles"]
    assert decided == 30 and {row["name"] for row in report["sources"]} >= {"newsfarm", "straitstimes"}
    # A second run replaces the first one's data (its pages have new ports, so new URLs).
    again = _demo(tmp_path, env, "demo", "--seconds", "120")
    assert again.returncode == 0 and "replacing the previous demo's data" in again.stderr
    report = json.loads(_demo(tmp_path, env, "status", "--data-dir", "newsdedup-demo", "--json").stdout)
    assert report["totals"]["articles"] == decided
