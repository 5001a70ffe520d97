"""`newsdedup override`: split, merge, promote, undo, and the audit log."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from crawler.cli import Context, common_options
from crawler.cli.ops import console, echo_json, forward_options, require_index, resolve
from crawler.render import when
from dedup.engine import Engine
from dedup.overrides import Override, OverrideError, Overrides, default_who


def _audit_options(command: Any) -> Any:
    command = click.option("--json", "as_json", is_flag=True, help="Print the audit entry as JSON.")(command)
    command = click.option("--who", default=None, help="Who is overriding (default: $USER).")(command)
    return click.option("--reason", default="", help="Why, for the audit log.")(command)


def _report(engine: Engine, entry: Override, as_json: bool) -> None:
    ids = {value for event in entry.events for value in (event.get("id"), event.get("replaces")) if value}
    ids.update(v for v in (*entry.before.values(), *entry.after.values()) if v)
    urls = {r.id: r.url for r in engine.get_many(sorted(ids))}
    if as_json:
        payload = entry.as_json()
        payload["events"] = [{**e, "url": urls.get(e.get("id", "")), "replaces_url": urls.get(e.get("replaces", ""))}
                             for e in entry.events]
        echo_json(payload)
        return
    out = console()
    after = entry.after
    lines = {
        "split": f"split {entry.urls[0] if entry.urls else ''} out of its cluster: it is alone in cluster "
                 f"{after.get('cluster')} (its own copies may join it; no decision merges it), the others "
                 f"are cluster {after.get('rest_cluster')}",
        "merge": f"merged the cluster of {entry.urls[-1] if entry.urls else ''} into cluster {after.get('cluster')}",
        "promote": f"promoted {entry.urls[0] if entry.urls else ''}: pinned canonical of cluster "
                   f"{after.get('cluster')}",
        "undo": f"undid override #{entry.undoes} ({entry.undoes_action} of {' + '.join(entry.urls)})",
    }
    out.print(Text(f"override #{entry.id}: {lines.get(entry.action, entry.action)}"))
    canonical = after.get("rest_canonical") or after.get("canonical")
    if canonical:
        out.print(Text(f"  canonical {'of the others ' if entry.action == 'split' else ''}now: "
                       f"{urls.get(canonical, canonical)}"))
    if after.get("other_canonical"):
        out.print(Text(f"  and, separated again: {urls.get(after['other_canonical'], after['other_canonical'])} "
                       f"(cluster {after.get('other_cluster')})"))
    for event in entry.events:
        if event.get("event") == "replaced":
            out.print(Text(f"  stream: replaced {urls.get(event['replaces'], event['replaces'])} "
                           f"-> {urls.get(event['id'], event['id'])}"))
        else:
            out.print(Text(f"  stream: {event.get('event')} {urls.get(event['id'], event['id'])}"))
    if not entry.events:
        out.print("  stream: no change to the canonical")


def _apply(ctx: Context, as_json: bool, action: Any) -> None:
    engine = require_index(ctx)
    try:
        entry = action(engine, Overrides(engine))
    except OverrideError as exc:
        raise click.ClickException(str(exc)) from None
    _report(engine, entry, as_json)


def _log(ctx: Context, limit: int, as_json: bool) -> None:
    engine = require_index(ctx)
    entries = Overrides(engine).log()[-limit:]
    if as_json:
        for entry in entries:
            echo_json(entry.as_json())
        return
    if not entries:
        click.echo("no overrides yet")
        return
    table = Table("#", "when", "who", "action", "articles", "reason", "state")
    for entry in entries:
        state = f"undone by #{entry.undone_by}" if entry.undone_by else ""
        action = f"undo #{entry.undoes} ({entry.undoes_action})" if entry.action == "undo" else entry.action
        table.add_row(str(entry.id), when(entry.at), entry.who, action, Text("\n".join(entry.urls), overflow="fold"),
                      entry.reason, state)
    console().print(table)


@click.group(invoke_without_command=True)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Entries of the log to list (without a subcommand).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@common_options
def override(ctx: Context, limit: int, as_json: bool) -> None:
    """Correct duplicate decisions: split, merge, promote, undo (without a subcommand: the audit log)."""
    click_ctx = click.get_current_context()
    if click_ctx.invoked_subcommand is None:
        _log(ctx, limit, as_json)
    else:
        click_ctx.params.pop("limit", None)
        forward_options(click_ctx)


@override.command()
@click.argument("member", metavar="MEMBER")
@_audit_options
@common_options
def split(ctx: Context, member: str, reason: str, who: str | None, as_json: bool) -> None:
    """MEMBER (URL or id) is not a copy: take it out of its cluster, for good."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.split(
        resolve(engine, member, "member").id, who=who or default_who(), reason=reason))


@override.command()
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@_audit_options
@common_options
def merge(ctx: Context, a: str, b: str, reason: str, who: str | None, as_json: bool) -> None:
    """A and B (URLs or ids) are the same story: B's cluster joins A's, for good."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.merge(
        resolve(engine, a, "A").id, resolve(engine, b, "B").id, who=who or default_who(), reason=reason))


@override.command()
@click.argument("member", metavar="MEMBER")
@_audit_options
@common_options
def promote(ctx: Context, member: str, reason: str, who: str | None, as_json: bool) -> None:
    """Make MEMBER (URL or id) the canonical of its cluster, whatever arrives later."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.promote(
        resolve(engine, member, "member").id, who=who or default_who(), reason=reason))


@override.command()
@click.argument("override_id", metavar="[ID]", type=int, required=False)
@_audit_options
@common_options
def undo(ctx: Context, override_id: int | None, reason: str, who: str | None, as_json: bool) -> None:
    """Reverse override ID (default: the latest one not undone yet)."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.undo(
        override_id, who=who or default_who(), reason=reason))


@override.command(name="log")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Latest entries to list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@common_options
def log_command(ctx: Context, limit: int, as_json: bool) -> None:
    """The audit log of overrides: who, when, what and why, and what was undone."""
    _log(ctx, limit, as_json)


COMMANDS = [override]
