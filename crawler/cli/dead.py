"""`newsdedup dead`: records that could not be decided. List them, decide them again after a fix, drop them."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from crawler.cli import Context, common_options
from crawler.cli.ops import console, forward_options
from crawler.render import ago
from dedup.deadletter import DeadLetter, DeadLetters

EXIT_FAILED = 3
"""Exit status of `dead retry` when some records failed again (as `ingest` when some records fail)."""


def _echo_json(value: Any) -> None:
    # ASCII escapes: a dead letter may hold what made it fail, e.g. a lone surrogate, which no
    # terminal encoding can print.
    click.echo(json.dumps(value))


def _letters(dead: DeadLetters, ids: tuple[str, ...], every: bool) -> list[DeadLetter]:
    """The dead letters named, or all of them with --all; one clear line for a mistake."""
    if every == bool(ids):
        raise click.UsageError("name dead letters by id (see `newsdedup dead list`), or give --all")
    if every:
        return dead.read()
    found = dead.get(ids)
    missing = sorted(set(ids) - {letter.id for letter in found})
    if missing:
        raise click.ClickException(f"no dead letter {', '.join(missing)} (see `newsdedup dead list`)")
    return found


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@common_options
def dead(ctx: Context, as_json: bool) -> None:
    """Records that could not be decided (the dead-letter stream); without a subcommand, `dead list`."""
    click_ctx = click.get_current_context()
    if click_ctx.invoked_subcommand is None:
        _list(ctx, 20, as_json)
    else:
        forward_options(click_ctx)


def _list(ctx: Context, limit: int, as_json: bool) -> None:
    letters = DeadLetters(ctx.client, ctx.keys)
    shown = letters.read(limit, newest_first=True)
    if as_json:
        for letter in shown:
            _echo_json(letter.as_json())
        return
    total = letters.count()
    out = console()
    if not total:
        out.print("No dead letters: every record was decided.")
        return
    table = Table("id", "added", "stage", "tries", "origin", title=f"Dead letters: {total} records not decided"
                  + (f" (newest {len(shown)})" if len(shown) < total else ""), title_justify="left")
    table.add_column("url and error", overflow="fold", ratio=1, min_width=40)
    for letter in shown:
        table.add_row(letter.id, ago(letter.at), letter.stage, str(letter.attempts), Text(letter.origin),
                      Text(f"{letter.url or '-'}\n{letter.error}"))
    out.print(table)
    out.print("`newsdedup dead retry ID...|--all` decides them again (after a fix); `newsdedup dead drop` removes them.")


@dead.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter, record included.")
@common_options
def list_(ctx: Context, limit: int, as_json: bool) -> None:
    """The newest dead letters: when, at which stage, from where, the URL and the error."""
    _list(ctx, limit, as_json)


@dead.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "every", is_flag=True, help="Every dead letter.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter retried.")
@common_options
def retry(ctx: Context, ids: tuple[str, ...], every: bool, as_json: bool) -> None:
    """Decide dead letters again (after a fix): decided ones leave the stream, failures stay with the new error.

    Exit status 3 when some failed again.
    """
    letters = DeadLetters(ctx.client, ctx.keys)
    chosen = _letters(letters, ids, every)
    outcomes = letters.retry(ctx.engine, chosen) if chosen else []
    failed = 0
    for letter, outcome in outcomes:
        if isinstance(outcome, str):
            failed += 1
            row = {"id": letter.id, "url": letter.url, "decided": False, "error": outcome}
            text = f"{letter.id} {letter.url or '-'}: failed again: {outcome}"
        else:
            kind = "known" if outcome.known else outcome.kind or "canonical"
            row = {"id": letter.id, "url": letter.url, "decided": True, "kind": kind, "cluster": outcome.cluster,
                   "canonical": outcome.canonical_id}
            text = f"{letter.id} {letter.url}: decided: {kind}"
        if as_json:
            _echo_json(row)
        else:
            click.echo(text.encode("utf-8", "backslashreplace").decode("utf-8"))
    if not as_json:
        click.echo(f"{len(outcomes) - failed} decided, {failed} failed again", err=True)
    if failed:
        sys.exit(EXIT_FAILED)


@dead.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "every", is_flag=True, help="Every dead letter.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: how many were dropped.")
@common_options
def drop(ctx: Context, ids: tuple[str, ...], every: bool, as_json: bool) -> None:
    """Remove dead letters for good (the records are not decided)."""
    letters = DeadLetters(ctx.client, ctx.keys)
    chosen = _letters(letters, ids, every)
    dropped = letters.drop(letter.id for letter in chosen)
    if as_json:
        _echo_json({"dropped": dropped, "ids": [letter.id for letter in chosen]})
    else:
        click.echo(f"{dropped} dead letter{'' if dropped == 1 else 's'} dropped")


COMMANDS = [dead]
