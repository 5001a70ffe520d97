"""The `newsdedup` console script.

`newsdedup run` is a service: a SIGTERM or Ctrl-C while it is still importing (Scrapy, trafilatura
and numpy take about a second) asks it to stop, and nothing is in flight yet, so it exits 0 at
once. This module imports nothing heavy so that the handler is in place within milliseconds;
`run` replaces it with its own as its first step. Other commands keep Python's default handling.
"""

from __future__ import annotations

import signal
import sys


def _command(argv: list[str]) -> str | None:
    """The subcommand: the first argument that is not an option (the group's options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _stop_before_start(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    if _command(sys.argv[1:]) == "run":
        signal.signal(signal.SIGTERM, _stop_before_start)
        signal.signal(signal.SIGINT, _stop_before_start)
    from crawler.cli import main as cli

    cli()
