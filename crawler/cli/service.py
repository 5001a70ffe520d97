"""`newsdedup run`, `crawl`, `sources` and `demo`: the crawler service and its one-off forms."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from crawler.cli import Context, common_options
from crawler.cli.ingest import final_roles
from crawler.config import ConfigError, Settings, with_flags

log = logging.getLogger(__name__)


def _with_flags(settings: Settings, health_host: str | None, health_port: int | None,
                shutdown_timeout: float | None, workers: int | None) -> Settings:
    """Command-line flags override the file and the environment; the result is validated as a whole."""
    flags = {"service.health_host": ("--health-host", health_host),
             "service.health_port": ("--health-port", health_port),
             "service.shutdown_timeout": ("--shutdown-timeout", shutdown_timeout),
             "service.extract_workers": ("--workers", workers)}
    try:
        return with_flags(settings, {key: flag for key, flag in flags.items() if flag[1] is not None})
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from None


def _hold_signals_while_starting() -> list[int]:
    """Until the service handles SIGTERM/SIGINT, only note them: it stops cleanly on them as soon as it runs.

    (Raising SystemExit from the handler instead lands anywhere: in a fork's at-fork hook it is ignored
    and leaves the logging lock held, and every thread that logs later hangs.)
    """
    import signal

    held: list[int] = []

    def note(signum: int, _frame: object) -> None:
        held.append(signum)

    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    return held


def _log_level(verbose: int) -> int:
    root = logging.getLogger().level
    return logging.DEBUG if root <= logging.DEBUG or verbose > 1 else logging.INFO


def _check_health_port(host: str, port: int) -> None:
    """One line, before anything starts, when the health port is taken (by another `run`, most likely)."""
    if port == 0:
        return
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve /healthz on {host}:{port}: {exc.strerror or exc} (another `newsdedup run`? "
            "choose another with --health-port or [service] health_port)") from None


@click.command()
@click.option("--health-host", default=None, help="Address for /healthz and /metrics (default 127.0.0.1).")
@click.option("--health-port", type=int, default=None, help="Port for /healthz and /metrics (0: any free port).")
@click.option("--shutdown-timeout", type=float, default=None, help="Seconds to finish in-flight work on SIGTERM.")
@click.option("--workers", type=int, default=None, help="Extraction processes (0: one per core).")
@common_options(creates_store=True)
def run(ctx: Context, health_host: str | None, health_port: int | None, shutdown_timeout: float | None,
        workers: int | None) -> None:
    """Run the crawler service: crawl every source on its schedule until SIGTERM or Ctrl-C."""
    held = _hold_signals_while_starting()  # first: importing the service (Scrapy) alone takes a while
    from crawler.logs import configure_logging
    from crawler.service import Service, extraction_pool, run_in_reactor, tune_gc

    settings = _with_flags(ctx.settings, health_host, health_port, shutdown_timeout, workers)
    if not settings.sources:
        where = settings.config_path or "the configuration (no --config given)"
        raise click.ClickException(f"{where}: no [[sources]] to crawl")
    _check_health_port(settings.service.health_host, settings.service.health_port)
    configure_logging(settings.service.log_format, _log_level(0))
    pool = extraction_pool(settings.service.extract_workers, wait=False)
    from crawler.redis_conn import (
        RedisUnavailable,
        connect,
        connect_cluster_waiting,
        is_cluster_url,
    )

    # A configured Redis that is down at start is waited for (with backoff), not a reason to exit. The embedded
    # one is the service's own: it stops with the service, and one another process owns is not shared.
    # A cluster client needs the layout from a seed node before its first command: waited for here.
    if is_cluster_url(settings.redis.url):
        try:
            client = connect_cluster_waiting(settings.redis.url or "", stop=lambda: bool(held))
        except RedisUnavailable as exc:
            log.info("stopped while waiting for Redis: %s", exc)
            raise SystemExit(0) from None
    else:
        client = connect(settings.redis.url, settings.data_dir, check=bool(not settings.redis.url), exclusive=True)
    tune_gc()
    code = run_in_reactor(lambda: Service(settings, client, executor=pool, held_signals=held).run())
    raise SystemExit(code)


@click.command()
@click.argument("source")
@click.option("--workers", type=int, default=None, help="Extraction processes (0: one per core).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common_options(creates_store=True)
def crawl(ctx: Context, source: str, workers: int | None, as_json: bool) -> None:
    """Crawl one source once, in the foreground, and decide everything it fetched."""
    from crawler.logs import configure_logging
    from crawler.service import Service, extraction_pool, run_in_reactor, tune_gc

    settings = _with_flags(ctx.settings, None, None, None, workers)
    if settings.source(source) is None:
        known = ", ".join(s.name for s in settings.sources) or "none configured"
        raise click.ClickException(f"unknown source {source!r} (sources: {known})")
    configure_logging(settings.service.log_format, _log_level(0))
    pool = extraction_pool(settings.service.extract_workers, wait=False)
    client = ctx.client
    service = Service(settings, client, sources=[source], once=True, health=False, executor=pool)
    tune_gc()
    code = run_in_reactor(service.run)
    decisions = service.decisions
    # As stored now: a canonical that a later page of the same crawl displaced is counted as a duplicate.
    roles = final_roles(ctx.engine, [d.article_id for d in decisions if not d.known])
    summary = {
        "source": source,
        "outcome": service.results.get(source, "failed"),
        "decided": len(decisions),
        "canonical": roles["canonical"],
        "duplicates": roles["duplicates"],
        "thin": roles["thin"],
        "known": sum(1 for d in decisions if d.known),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"{source}: {summary['outcome']}; {summary['decided']} articles decided: "
                   f"{summary['canonical']} canonical, {summary['duplicates']} duplicates, "
                   f"{summary['thin']} with too little text, {summary['known']} already known")
    raise SystemExit(code if summary["outcome"] in ("ok", "partial") else code or 1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@common_options
def sources(ctx: Context, as_json: bool) -> None:
    """List the configured sources: schedule, feeds, next crawl, paused, last results, failing URLs."""
    from crawler.cli.ops import emit, source_lines, source_rows

    if not ctx.settings.sources:
        raise click.ClickException("no sources configured: pass --config FILE (looked in $NEWSDEDUP_CONFIG, "
                                   "./sources.toml and /etc/newsdedup/sources.toml)")
    now = time.time()
    rows = source_rows(ctx, [source.name for source in ctx.settings.sources], now)
    for row in rows:
        configured = ctx.settings.source(row["name"])
        assert configured is not None
        lease = ctx.client.get(ctx.keys.source_lease(configured.name))
        row.update(feeds=list(configured.feeds), sitemaps=list(configured.sitemaps),
                   last_result=row["last_outcome"],
                   crawling_on=lease.decode().rsplit(":", 2)[0] if lease else None)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    lines = []
    for row in rows:
        lines.extend(source_lines(row, now))
        for url in (*row["feeds"], *row["sitemaps"]):
            lines.append(Text(f"  listing {url}", style="dim"))
        if row["crawling_on"]:
            lines.append(Text(f"  crawling now on {row['crawling_on']}", style="cyan"))
    emit(*lines)


DEMO_PREFIX = "newsdedup-demo:"
"""The demo's key prefix on a configured Redis (unless --key-prefix names one): it never mixes with real data."""
DEMO_DATA_DIR = "newsdedup-demo"
"""Where the demo keeps its embedded Redis when no Redis or data directory is given (left for a look around)."""


@click.command()
@click.option("--seconds", type=float, default=60.0, show_default=True, help="Run the service at most this long.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per duplicate found.")
@common_options(creates_store=True)
def demo(ctx: Context, seconds: float, as_json: bool) -> None:
    """Serve a small local news web, crawl it with the service, and print the stories and their copies.

    With no Redis configured its data stays in ./newsdedup-demo (or --data-dir) for `status` and `show`.
    """
    from crawler.config import DEFAULT_DATA_DIR, DEFAULT_PREFIX
    from crawler.demo.runner import build_demo_web, demo_settings, run_demo
    from crawler.logs import configure_logging
    from crawler.redis_conn import connect
    from crawler.service import Service, extraction_pool, run_in_reactor

    # The result is the demo's output; the service's INFO lines only with -v.
    verbose = logging.getLogger().level < logging.WARNING
    configure_logging(ctx.settings.service.log_format, _log_level(0) if verbose else logging.WARNING)
    settings = ctx.settings
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if settings.redis.url is None and settings.data_dir == Path(DEFAULT_DATA_DIR):
        # Its own store, never the user's: a run replaces the last demo's data (its pages get new ports).
        settings = replace(settings, data_dir=Path(DEMO_DATA_DIR))
        _clear_demo_store(settings.data_dir, err)
    elif settings.redis.url is not None and settings.redis.prefix == DEFAULT_PREFIX:
        settings = replace(settings, redis=replace(settings.redis, prefix=DEMO_PREFIX))
    pool = extraction_pool(0)
    server, demo_sources = build_demo_web()
    settings = demo_settings(settings, demo_sources)
    client = connect(settings.redis.url, settings.data_dir)
    where = _demo_where(settings)
    err.print(f"demo: {len(server.sites)} local news sites on 127.0.0.x, {len(demo_sources)} sources; "
              f"data in {where}", markup=False)
    service = Service(settings, client, executor=pool)
    with err.status("starting the service", spinner="dots") as progress:
        def report(crawled: int, decided: int, waiting: int) -> None:
            line = (f"crawled {crawled} of {len(demo_sources)} sources, {decided} articles decided, "
                    f"{waiting} waiting for a decision")
            if err.is_terminal:
                progress.update(line)
            else:
                err.print("demo: " + line, markup=False)

        try:
            code = run_in_reactor(lambda: run_demo(service, seconds, report))
        finally:
            server.stop()
    ctx._client = client
    _print_stories(ctx, as_json)
    if not as_json:
        flags = _demo_flags(settings)
        err.print(f"\nThe demo's data stays in {where}. Look around:\n"
                  f"  newsdedup status{flags}              instances, sources, totals, the stream\n"
                  f"  newsdedup dupes{flags}               the copies found, newest first\n"
                  f"  newsdedup show URL{flags}            one story: its canonical, copies and why\n"
                  f"  newsdedup web{flags}                 the same in a browser (http://127.0.0.1)",
                  markup=False)
    raise SystemExit(code)


def _clear_demo_store(data_dir: Path, err: Console) -> None:
    """Remove the embedded store an earlier demo left in its own directory."""
    from crawler.embedded_redis import DB_FILENAME

    old = [path for path in (data_dir / DB_FILENAME, *data_dir.glob("appendonly*")) if path.exists()]
    if old:
        err.print(f"demo: replacing the previous demo's data in {data_dir}", markup=False)
    for path in old:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _demo_where(settings: Settings) -> str:
    from crawler.redis_conn import redact_url

    if settings.redis.url:
        return f"{redact_url(settings.redis.url)} under key prefix {settings.redis.prefix!r}"
    return f"an embedded Redis in {settings.data_dir.resolve()}"


def _demo_flags(settings: Settings) -> str:
    """The options that point a command at the demo's data."""
    from crawler.config import DEFAULT_PREFIX
    from crawler.redis_conn import redact_url

    prefix = f" --key-prefix {settings.redis.prefix}" if settings.redis.prefix != DEFAULT_PREFIX else ""
    if settings.redis.url:
        return f" --redis-url {redact_url(settings.redis.url)}{prefix}"
    return f" --data-dir {settings.data_dir}{prefix}"


def _print_stories(ctx: Context, as_json: bool) -> None:
    """Each story that has copies: its title, the canonical kept, and every copy with its kind."""
    engine = ctx.engine
    records = list(engine.records())
    clusters: dict[str, list[Any]] = {}
    for record in records:
        clusters.setdefault(record.cluster, []).append(record)
    stream_length = ctx.client.xlen(ctx.keys.canonical_stream)
    console = Console(soft_wrap=True, highlight=False)
    stories = copies = 0
    for cluster, members in sorted(clusters.items(), key=lambda item: -len(item[1])):
        canonical_id, _, _ = engine.cluster(cluster)
        canonical = next((m for m in members if m.id == canonical_id), None) or engine.get(canonical_id)
        found = [m for m in members if m.id != canonical_id and m.kind not in (None, "thin")]
        if not found or canonical is None:
            continue
        stories += 1
        copies += len(found)
        if as_json:
            for record in found:
                click.echo(json.dumps({"story": canonical.title, "url": record.url, "kind": record.kind,
                                       "similarity": record.similarity, "canonical_url": canonical.url,
                                       "title": record.title}))
            continue
        console.print(Text(canonical.title or "(no title)", style="bold"))
        console.print(Text(f"  kept as canonical: {canonical.url}"))
        for record in found:
            console.print(Text(f"  {record.kind} copy, similarity {record.similarity or 0:.2f}: {record.url}"))
    if not as_json:
        thin = sum(1 for record in records if record.kind == "thin")
        console.print(Text(f"\n{len(records)} articles decided: {stories} stories found copied, {copies} copies; "
                           f"{len(records) - copies - thin} canonical, {thin} too short to compare; "
                           f"{stream_length} entries on the canonical stream"))


COMMANDS = [run, crawl, sources, demo]
