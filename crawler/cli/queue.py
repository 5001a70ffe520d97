"""`newsdedup queue`: the canonical stream, its consumer groups, and a consumer for pipes."""

from __future__ import annotations

import socket
import sys
import time
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from crawler.cli import Context, common_options
from crawler.cli.ops import (
    echo_json,
    echo_tsv,
    emit,
    forward_options,
    output_option,
    parse_since,
    require_index,
    since_option,
)
from crawler.render import ago, iso, span, when
from dedup import stream


def _info(ctx: Context, as_json: bool) -> None:
    require_index(ctx)
    state = stream.state(ctx.client, ctx.keys.canonical_stream)
    if as_json:
        echo_json({
            "key": state.key, "exists": state.exists, "length": state.length,
            "first": state.first.as_json() | {"text": None} if state.first else None,
            "last": state.last.as_json() | {"text": None} if state.last else None,
            "groups": [{"name": g.name, "pending": g.pending, "lag": g.lag, "last_delivered": g.last_delivered,
                        "lag_note": None if g.lag is not None else f"more than {stream.LAG_COUNT_LIMIT}",
                        "oldest_pending": g.oldest_pending, "oldest_pending_age": g.oldest_pending_age,
                        "oldest_pending_idle": g.oldest_pending_idle,
                        "consumers": [{"name": c.name, "pending": c.pending, "idle": c.idle} for c in g.consumers]}
                       for g in state.groups],
        })
        return
    if not state.exists:
        click.echo(f"{state.key}: no entries yet")
        return
    parts: list[Any] = [Text(f"Stream  {state.key}: {state.length} entries", style="bold")]
    for label, entry in (("First", state.first), ("Last", state.last)):
        if entry:
            parts.append(Text(f"{label:<6}  {entry.id} ({ago(entry.at)}) {entry.fields.get('event', '')} "
                              f"{entry.fields.get('id', '')}"))
            parts.append(Text(f"        {entry.fields.get('url', '')}"))
    if not state.groups:
        parts.append(Text("No consumer groups: `newsdedup queue consume --group NAME` creates one, reading "
                          "from the start."))
        emit(*parts)
        return
    table = Table("group", "consumer", "pending", "idle", "lag", "oldest pending", title="Consumer groups",
                  title_justify="left")
    for group in state.groups:
        oldest = (f"{group.oldest_pending} ({span(group.oldest_pending_age or 0)} old, "
                  f"delivered {span(group.oldest_pending_idle or 0)} ago)" if group.oldest_pending else "-")
        table.add_row(group.name, f"({len(group.consumers)})", str(group.pending), "",
                      f">{stream.LAG_COUNT_LIMIT}" if group.lag is None else str(group.lag), oldest)
        for consumer in group.consumers:
            table.add_row("", consumer.name, str(consumer.pending), span(consumer.idle), "", "")
    emit(*parts, table)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@common_options
def queue(ctx: Context, as_json: bool) -> None:
    """The canonical stream: length, first and last entry, consumer groups and what they hold."""
    click_ctx = click.get_current_context()
    if click_ctx.invoked_subcommand is None:
        _info(ctx, as_json)
    else:
        forward_options(click_ctx)


@queue.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@common_options
def info(ctx: Context, as_json: bool) -> None:
    """Length, first and last entry, consumer groups with pending entries and lag."""
    _info(ctx, as_json)


@queue.command()
@click.argument("count", type=click.IntRange(min=1), default=10, required=False)
@click.option("--oldest", is_flag=True, help="The oldest entries instead of the newest.")
@since_option
@output_option
@common_options
def peek(ctx: Context, count: int, oldest: bool, since: str | None, output: str, as_json: bool) -> None:
    """Show the newest COUNT entries (default 10) without consuming them."""
    cutoff = parse_since(since) if since else None
    require_index(ctx)
    key = ctx.keys.canonical_stream
    entries = (stream.oldest(ctx.client, key, count, cutoff) if oldest
               else stream.latest(ctx.client, key, count, cutoff))
    if as_json or output == "json":
        for entry in entries:
            echo_json(entry.as_json())
        return
    columns = ("entry", "added", "event", "id", "url", "title", "replaces", "words")

    def values(entry: stream.Entry) -> list[Any]:
        fields = entry.fields
        return [entry.id, iso(entry.at), fields.get("event", ""), fields.get("id", ""), fields.get("url", ""),
                fields.get("title", ""), fields.get("replaces", ""), len(fields.get("text", "").split())]

    if output == "tsv":
        echo_tsv(columns, (values(entry) for entry in entries))
        return
    if not entries:
        click.echo(f"{key}: no entries" + (f" since {since}" if since else " yet"))
        return
    if output == "wide":
        table = Table(*columns)
        for entry in entries:
            table.add_row(*(str(v) for v in values(entry)))
        emit(table, wide=True)
        return
    lines: list[Any] = []
    for entry in entries:
        fields = entry.fields
        replaces = f"  replaces {fields['replaces']}" if fields.get("replaces") else ""
        lines.append(Text(f"{entry.id}  {when(entry.at)}  {fields.get('event', '')}  {fields.get('id', '')}"
                          f"{replaces}  {len(fields.get('text', '').split())} words", style="bold"))
        lines.append(Text(f"  {fields.get('title') or '(no title)'}"))
        lines.append(Text(f"  {fields.get('url', '')}"))
    emit(*lines)


@queue.command()
@click.option("--group", required=True, help="Consumer group (created, reading from the start, if missing).")
@click.option("--consumer", default=None, help="Consumer name in the group (default: host name).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many entries.")
@click.option("--block", "block_ms", type=click.IntRange(min=0), default=None,
              help="Wait up to this many milliseconds for new entries when none are left.")
@common_options
def consume(ctx: Context, group: str, consumer: str | None, count: int | None, block_ms: int | None) -> None:
    """Print entries for a consumer group as JSON lines, acknowledging each once printed."""
    require_index(ctx)
    key = ctx.keys.canonical_stream
    name = consumer or socket.gethostname()
    done = 0
    started = time.monotonic()
    for entry in stream.consume(ctx.client, key, group, name, limit=count, block_ms=block_ms):
        try:
            echo_json(entry.as_json())
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away: this entry stays pending for us
            sys.stderr.close()
            return
        stream.ack(ctx.client, key, group, [entry.id])
        done += 1
    if sys.stderr.isatty():
        click.echo(f"{done} entries consumed by {group}/{name} in {time.monotonic() - started:.1f}s", err=True)


COMMANDS = [queue]
