"""`newsdedup run`, `crawl`, `sources` and `demo`: the crawler service and its one-off forms."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from crawler.cli import Context, common_options
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


@click.command()
@click.option("--health-host", default=None, help="Address for /healthz and /metrics (default 127.0.0.1).")
@click.option("--health-port", type=int, default=None, help="Port for /healthz and /metrics (0: any free port).")
@click.option("--shutdown-timeout", type=float, default=None, help="Seconds to finish in-flight work on SIGTERM.")
@click.option("--workers", type=int, default=None, help="Extraction processes (0: one per core).")
@common_options
def run(ctx: Context, health_host: str | None, health_port: int | None, shutdown_timeout: float | None,
        workers: int | None) -> None:
    """Run the crawler service: crawl every source on its schedule until SIGTERM or Ctrl-C."""
    held = _hold_signals_while_starting()  # first: importing the service (Scrapy) alone takes a while
    from crawler.service import Service, configure_logging, extraction_pool, run_in_reactor

    settings = _with_flags(ctx.settings, health_host, health_port, shutdown_timeout, workers)
    if not settings.sources:
        where = settings.config_path or "the configuration (no --config given)"
        raise click.ClickException(f"{where}: no [[sources]] to crawl")
    configure_logging(settings.service.log_format, _log_level(0))
    pool = extraction_pool(settings.service.extract_workers)
    from crawler.redis_conn import connect

    # A configured Redis that is down at start is waited for (with backoff), not a reason to exit. The embedded
    # one is the service's own: it stops with the service, and one another process owns is not shared.
    client = connect(settings.redis.url, settings.data_dir, check=bool(not settings.redis.url), exclusive=True)
    code = run_in_reactor(lambda: Service(settings, client, executor=pool, held_signals=held).run())
    raise SystemExit(code)


@click.command()
@click.argument("source")
@click.option("--workers", type=int, default=None, help="Extraction processes (0: one per core).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common_options
def crawl(ctx: Context, source: str, workers: int | None, as_json: bool) -> None:
    """Crawl one source once, in the foreground, and decide everything it fetched."""
    from crawler.service import Service, configure_logging, extraction_pool, run_in_reactor

    settings = _with_flags(ctx.settings, None, None, None, workers)
    if settings.source(source) is None:
        known = ", ".join(s.name for s in settings.sources) or "none configured"
        raise click.ClickException(f"unknown source {source!r} (sources: {known})")
    configure_logging(settings.service.log_format, _log_level(0))
    pool = extraction_pool(settings.service.extract_workers)
    client = ctx.client
    service = Service(settings, client, sources=[source], once=True, health=False, executor=pool)
    code = run_in_reactor(service.run)
    decisions = service.decisions
    summary = {
        "source": source,
        "outcome": service.results.get(source, "failed"),
        "decided": len(decisions),
        "canonical": sum(1 for d in decisions if d.is_canonical and not d.known),
        "duplicates": sum(1 for d in decisions if d.kind in ("exact", "near", "excerpt") and not d.known),
        "known": sum(1 for d in decisions if d.known),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"{source}: {summary['outcome']}; {summary['decided']} articles decided: "
                   f"{summary['canonical']} canonical, {summary['duplicates']} duplicates, "
                   f"{summary['known']} already known")
    raise SystemExit(code if summary["outcome"] in ("ok", "partial") else code or 1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@common_options
def sources(ctx: Context, as_json: bool) -> None:
    """List the configured sources with their schedule and last crawl."""
    keys = ctx.keys
    rows = []
    for source in ctx.settings.sources:
        state = {k.decode(): v.decode("utf-8", "replace")
                 for k, v in ctx.client.hgetall(keys.source_state(source.name)).items()
                 if not k.startswith((b"etag:", b"modified:"))}
        lease = ctx.client.get(keys.source_lease(source.name))
        finished = float(state["last_finished"]) if state.get("last_finished") else None
        rows.append({
            "name": source.name,
            "schedule": source.schedule,
            "feeds": list(source.feeds),
            "sitemaps": list(source.sitemaps),
            "last_crawl": datetime.fromtimestamp(finished, UTC).isoformat() if finished else None,
            "last_result": state.get("last_outcome"),
            "last_counts": json.loads(state["last_counts"]) if state.get("last_counts") else {},
            "crawling_on": lease.decode().rsplit(":", 1)[0] if lease else None,
        })
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    table = Table("source", "schedule", "feeds+sitemaps", "last crawl", "result", "fetched", "extracted")
    for row in rows:
        counts = row["last_counts"]
        ago = ""
        if row["last_crawl"]:
            ago = _ago(datetime.fromisoformat(row["last_crawl"]).timestamp())
        result = row["last_result"] or "never crawled"
        if row["crawling_on"]:
            result += f" (crawling on {row['crawling_on']})"
        table.add_row(row["name"], row["schedule"], str(len(row["feeds"]) + len(row["sitemaps"])), ago, result,
                      str(counts.get("articles_fetched", "")), str(counts.get("extracted", "")))
    Console().print(table)


@click.command()
@click.option("--seconds", type=float, default=60.0, show_default=True, help="Run the service at most this long.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per duplicate found.")
@common_options
def demo(ctx: Context, seconds: float, as_json: bool) -> None:
    """Serve a small local news web, crawl it with the service, and print the duplicates found."""
    import tempfile
    from pathlib import Path

    from crawler.config import DEFAULT_DATA_DIR
    from crawler.demo.runner import build_demo_web, demo_settings, run_demo
    from crawler.redis_conn import connect
    from crawler.service import Service, configure_logging, extraction_pool, run_in_reactor

    configure_logging(ctx.settings.service.log_format, logging.WARNING if as_json else _log_level(0))
    pool = extraction_pool(0)
    server, demo_sources = build_demo_web()
    settings = demo_settings(ctx.settings, demo_sources)
    temporary = None
    if settings.redis.url is None and settings.data_dir == Path(DEFAULT_DATA_DIR):
        temporary = tempfile.TemporaryDirectory(prefix="newsdedup-demo-")
        settings = replace(settings, data_dir=Path(temporary.name))
    client = connect(settings.redis.url, settings.data_dir)
    err = Console(stderr=True)
    where = settings.redis.url or f"embedded Redis in {settings.data_dir}"
    err.print(f"demo: {len(server.sites)} local sites, {len(demo_sources)} sources; Redis: {where}", markup=False)
    service = Service(settings, client, executor=pool)
    try:
        code = run_in_reactor(lambda: run_demo(service, seconds))
    finally:
        server.stop()
    ctx._client = client
    _print_duplicates(ctx, as_json)
    if temporary is not None:
        if hasattr(client, "shutdown"):
            client.shutdown()
        temporary.cleanup()
    raise SystemExit(code)


def _print_duplicates(ctx: Context, as_json: bool) -> None:
    engine = ctx.engine
    records = list(engine.records())
    by_id = {record.id: record for record in records}
    stream = ctx.client.xlen(ctx.keys.canonical_stream)
    console = Console(soft_wrap=True)
    found = 0
    for record in records:
        canonical_id, _, _ = engine.cluster(record.cluster)
        if record.id == canonical_id or record.kind in (None, "thin"):
            continue
        canonical = by_id.get(canonical_id) or engine.get(canonical_id)
        found += 1
        row = {"url": record.url, "kind": record.kind, "similarity": record.similarity,
               "canonical_url": canonical.url if canonical else canonical_id, "title": record.title}
        if as_json:
            click.echo(json.dumps(row))
        else:
            console.print(f"[bold]{record.title[:70]}[/bold]", highlight=False)
            console.print(f"  copy ({record.kind}, similarity {record.similarity or 0:.2f}): {record.url}",
                          markup=False, highlight=False)
            console.print(f"  original, kept as canonical: {row['canonical_url']}", markup=False, highlight=False)
    if not as_json:
        console.print(f"\n{len(records)} articles decided: {len(records) - found} canonical, {found} duplicates; "
                      f"{stream} entries on the canonical stream", markup=False, highlight=False)


def _ago(stamp: float) -> str:
    seconds = max(0, int(time.time() - stamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


COMMANDS = [run, crawl, sources, demo]
