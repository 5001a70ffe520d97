"""`newsdedup crawl-now`, `pause` and `resume`: control of the running service, through Redis."""

from __future__ import annotations

import time

import click

from crawler import control
from crawler.cli import Context, common_options
from crawler.cli.ops import echo_json, live_instances, require_index_or_service
from crawler.render import iso
from dedup.overrides import default_who


def _known_source(ctx: Context, source: str) -> None:
    """A source in the configuration, or one a service has crawled (recorded in Redis)."""
    if ctx.settings.source(source) is not None or ctx.client.exists(ctx.keys.source_state(source)):
        return
    configured = ", ".join(s.name for s in ctx.settings.sources)
    hint = f"configured: {configured}" if configured else "none configured here and none crawled yet"
    raise click.ClickException(f"unknown source {source!r} ({hint})")


def _instances_note(ctx: Context) -> str:
    alive = live_instances(ctx)
    if not alive:
        return "no running instance right now: it takes effect when one starts"
    return f"{len(alive)} running instance{'s' if len(alive) != 1 else ''}: {', '.join(alive)}"


@click.command(name="crawl-now")
@click.argument("source")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=0.0,
              help="Wait up to this many seconds for the crawl to finish and print its result.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@common_options
def crawl_now(ctx: Context, source: str, wait_seconds: float, as_json: bool) -> None:
    """Ask the running service to crawl SOURCE now (one instance takes it, within a few seconds)."""
    require_index_or_service(ctx)
    _known_source(ctx, source)
    pause = control.paused(ctx.client, ctx.keys).get(source)
    if pause is not None:
        raise click.ClickException(f"{source} is paused (by {pause.get('who')}, {iso(pause.get('at'))}): "
                                   f"`newsdedup resume {source}` first")
    requested_at = time.time()
    new = control.request_crawl(ctx.client, ctx.keys, source, default_who())
    outcome = None
    if wait_seconds:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and outcome is None:
            time.sleep(0.5)
            latest = control.results(ctx.client, ctx.keys, source, limit=1)
            if latest and float(latest[0].get("started") or 0) >= requested_at - 1:
                outcome = latest[0]
    note = _instances_note(ctx)
    if as_json:
        echo_json({"source": source, "requested": new, "already_requested": not new, "instances": note,
                   "result": outcome})
    else:
        click.echo(f"{source}: crawl requested" + ("" if new else " (a request was already waiting)") + f"; {note}")
        if outcome is not None:
            click.echo(f"{source}: crawl {outcome.get('outcome')} on {outcome.get('instance')}, "
                       f"{outcome.get('failures', 0)} failing URLs")
        elif wait_seconds:
            click.echo(f"{source}: no crawl finished within {wait_seconds:g}s; see `newsdedup status`")
    if wait_seconds and outcome is None:
        raise SystemExit(1)


@click.command()
@click.argument("source")
@click.option("--reason", default="", help="Why, shown by `newsdedup status`.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@common_options
def pause(ctx: Context, source: str, reason: str, as_json: bool) -> None:
    """Stop crawling SOURCE on every instance, until `newsdedup resume SOURCE` (kept across restarts)."""
    require_index_or_service(ctx)
    _known_source(ctx, source)
    new = control.pause(ctx.client, ctx.keys, source, default_who(), reason)
    if as_json:
        echo_json({"source": source, "paused": True, "already_paused": not new})
        return
    click.echo(f"{source}: {'paused' if new else 'already paused'}; scheduled crawls are skipped until "
               f"`newsdedup resume {source}` ({_instances_note(ctx)})")


@click.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@common_options
def resume(ctx: Context, source: str, as_json: bool) -> None:
    """Crawl SOURCE on its schedule again."""
    require_index_or_service(ctx)
    _known_source(ctx, source)
    was_paused = control.resume(ctx.client, ctx.keys, source)
    if as_json:
        echo_json({"source": source, "paused": False, "was_paused": was_paused})
        return
    click.echo(f"{source}: " + ("resumed: crawled at its next tick" if was_paused else "was not paused"))


COMMANDS = [crawl_now, pause, resume]
