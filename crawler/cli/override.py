"""`newsdedup override`: split, merge, promote, undo, and the audit log."""

from __future__ import annotations

from typing import Any

import click
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
    resolve,
    since_option,
)
from crawler.render import iso, when
from dedup import record as rec
from dedup.engine import REASONS, Engine
from dedup.overrides import Override, OverrideError, Overrides, default_who


def _reason(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    if value is None or not value.strip():
        raise click.BadParameter("say why, for the audit log (e.g. --reason \"same wire story\")")
    return value.strip()


def _audit_options(command: Any) -> Any:
    command = click.option("--dry-run", is_flag=True,
                           help="Check the override and say what it would do, without changing anything.")(command)
    command = click.option("--json", "as_json", is_flag=True, help="Print the audit entry as JSON.")(command)
    command = click.option("--who", default=None, help="Who is overriding (default: $USER).")(command)
    return click.option("--reason", required=True, callback=_reason,
                        help="Why, for the audit log (required, not empty).")(command)


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
    lines: list[Any] = []
    after = entry.after
    actions = {
        "split": f"split {entry.urls[0] if entry.urls else ''} out of its cluster: it is alone in cluster "
                 f"{after.get('cluster')} (its own copies may join it; no decision merges it), the others "
                 f"are cluster {after.get('rest_cluster')}",
        "merge": f"merged the cluster of B {entry.urls[-1] if entry.urls else ''} into cluster "
                 f"{after.get('cluster')} of A {entry.urls[0] if entry.urls else ''}",
        "promote": f"promoted {entry.urls[0] if entry.urls else ''}: pinned canonical of cluster "
                   f"{after.get('cluster')}",
        "undo": f"undid override #{entry.undoes} ({entry.undoes_action} of {' + '.join(entry.urls)})",
    }
    lines.append(Text(f"override #{entry.id}: {actions.get(entry.action, entry.action)}"))
    canonical = after.get("rest_canonical") or after.get("canonical")
    if entry.action == "merge" and canonical:
        which = {entry.articles[0]: "A", entry.articles[-1]: "B"}.get(canonical) if entry.articles else None
        _, reason, _ = engine.cluster(after.get("cluster", ""))
        named = f"{which} itself" if which else "another member of the merged cluster"
        lines.append(Text(f"  canonical of the merged cluster: {named}, {urls.get(canonical, canonical)}"))
        lines.append(Text(f"  chosen because: {REASONS.get(reason, f'reason {reason}')}"))
    elif canonical:
        lines.append(Text(f"  canonical {'of the others ' if entry.action == 'split' else ''}now: "
                          f"{urls.get(canonical, canonical)}"))
    if after.get("other_canonical"):
        lines.append(Text(f"  and, separated again: {urls.get(after['other_canonical'], after['other_canonical'])} "
                          f"(cluster {after.get('other_cluster')})"))
    for event in entry.events:
        if event.get("event") == "replaced":
            lines.append(Text(f"  stream: replaced {urls.get(event['replaces'], event['replaces'])} "
                              f"-> {urls.get(event['id'], event['id'])}"))
        else:
            lines.append(Text(f"  stream: {event.get('event')} {urls.get(event['id'], event['id'])}"))
    if not entry.events:
        lines.append(Text("  stream: no change to the canonical"))
    emit(*lines)


def _apply(ctx: Context, as_json: bool, action: Any, dry_run: bool = False, plan: Any = None) -> None:
    engine = require_index(ctx)
    if dry_run:
        try:
            lines = plan(engine, Overrides(engine))
        except OverrideError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            echo_json({"dry_run": True, "would": lines})
        else:
            for line in lines:
                click.echo(line)
            click.echo("dry run: nothing changed")
        return
    try:
        entry = action(engine, Overrides(engine))
    except OverrideError as exc:
        raise click.ClickException(str(exc)) from None
    _report(engine, entry, as_json)


LOG_COLUMNS = ("id", "at", "who", "action", "articles", "urls", "reason", "undone_by")


def _log(ctx: Context, limit: int, as_json: bool, since: str | None = None, output: str = "table") -> None:
    cutoff = parse_since(since) if since else None
    engine = require_index(ctx)
    entries = [e for e in Overrides(engine).log() if cutoff is None or e.at >= cutoff][-limit:]
    if as_json or output == "json":
        for entry in entries:
            echo_json(entry.as_json())
        return
    if output == "tsv":
        echo_tsv(LOG_COLUMNS, ([e.id, iso(e.at), e.who, _action(e), " ".join(e.articles), " ".join(e.urls),
                               e.reason, e.undone_by] for e in entries))
        return
    if not entries:
        click.echo("no overrides" + (f" since {since}" if since else " yet"))
        return
    lines: list[Any] = []
    for entry in entries:
        state = f"  (undone by #{entry.undone_by})" if entry.undone_by else ""
        lines.append(Text(f"#{entry.id}  {when(entry.at)}  {entry.who}  {_action(entry)}{state}", style="bold"))
        lines.extend(Text(f"  {article_id}  {url}") for article_id, url in zip(entry.articles, entry.urls,
                                                                                strict=False))
        lines.append(Text(f"  why: {entry.reason or '-'}", style="dim"))
    emit(*lines)


def _action(entry: Override) -> str:
    return f"undo #{entry.undoes} ({entry.undoes_action})" if entry.action == "undo" else entry.action


def _clustered(engine: Engine, record: rec.Record, role: str) -> tuple[str, list[rec.Record]]:
    """(canonical id, members) of the record's cluster; thin pages are never clustered."""
    if record.kind == "thin":
        raise OverrideError(f"{role} {record.url}: too little text to compare, it is never clustered")
    canonical, _, members = engine.cluster_records(record.cluster)
    return (canonical.id if canonical else ""), members


def _plan_split(engine: Engine, member: rec.Record) -> list[str]:
    canonical_id, members = _clustered(engine, member, "member")
    if len(members) < 2:
        raise OverrideError(f"{member.url} is alone in its cluster: nothing to split")
    others = "its canonical is re-elected among them" if canonical_id == member.id else "their canonical stays"
    return [f"would split {member.url} out of cluster {member.cluster}: alone and sealed in a cluster of its own",
            f"the other {len(members) - 1} members stay together; {others}"]


def _plan_merge(engine: Engine, a: rec.Record, b: rec.Record) -> list[str]:
    _, a_members = _clustered(engine, a, "A")
    _, b_members = _clustered(engine, b, "B")
    if a.cluster == b.cluster:
        raise OverrideError(f"{a.url} and {b.url} are already in one cluster")
    pinned = [m.url for m in (*a_members, *b_members) if m.flags & rec.PINNED]
    elected = (f"pinned {pinned[0]} stays canonical" if pinned else
               "the canonical is elected among all of them by the policy (named by members, earliest date, "
               "full text)")
    merged = (f"would merge cluster {b.cluster} of B ({len(b_members)} articles) into cluster {a.cluster} of A "
              f"({len(a_members)} articles)")
    return [merged, elected]


def _plan_promote(engine: Engine, member: rec.Record) -> list[str]:
    canonical_id, _ = _clustered(engine, member, "member")
    if canonical_id == member.id:
        return [f"{member.url} is the canonical of cluster {member.cluster} already; would pin it there"]
    canonical = engine.get(canonical_id)
    return [f"would make {member.url} the pinned canonical of cluster {member.cluster}",
            f"replacing {canonical.url if canonical else canonical_id} (a `replaced` event on the stream)"]


def _plan_undo(overrides: Overrides, override_id: int | None) -> list[str]:
    entries = overrides.log()
    open_entries = [e for e in entries if e.undone_by is None and e.action != "undo"]
    if override_id:
        target = next((e for e in entries if e.id == override_id), None)
    else:
        target = open_entries[-1] if open_entries else None
    if target is None:
        raise OverrideError(f"no override #{override_id}" if override_id else "no override to undo")
    if target.undone_by is not None:
        raise OverrideError(f"override #{target.id} was undone already (by #{target.undone_by})")
    what = f"{target.action} of {' + '.join(target.urls)} by {target.who} ({target.reason or 'no reason given'})"
    return [f"would undo override #{target.id}: {what}"]


@click.group(invoke_without_command=True)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Entries of the log to list (without a subcommand).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@since_option
@common_options
def override(ctx: Context, limit: int, as_json: bool, since: str | None) -> None:
    """Correct duplicate decisions: split, merge, promote, undo (without a subcommand: the audit log)."""
    click_ctx = click.get_current_context()
    if click_ctx.invoked_subcommand is None:
        _log(ctx, limit, as_json, since)
    else:
        click_ctx.params.pop("limit", None)
        click_ctx.params.pop("since", None)
        forward_options(click_ctx)


@override.command()
@click.argument("member", metavar="MEMBER")
@_audit_options
@common_options
def split(ctx: Context, member: str, reason: str, who: str | None, as_json: bool, dry_run: bool) -> None:
    """MEMBER (URL or id) is not a copy: take it out of its cluster, for good."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.split(
        resolve(engine, member, "member").id, who=who or default_who(), reason=reason),
        dry_run, lambda engine, _: _plan_split(engine, resolve(engine, member, "member")))


@override.command()
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@_audit_options
@common_options
def merge(ctx: Context, a: str, b: str, reason: str, who: str | None, as_json: bool, dry_run: bool) -> None:
    """A and B (URLs or ids) are the same story: B's cluster joins A's, for good."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.merge(
        resolve(engine, a, "A").id, resolve(engine, b, "B").id, who=who or default_who(), reason=reason),
        dry_run, lambda engine, _: _plan_merge(engine, resolve(engine, a, "A"), resolve(engine, b, "B")))


@override.command()
@click.argument("member", metavar="MEMBER")
@_audit_options
@common_options
def promote(ctx: Context, member: str, reason: str, who: str | None, as_json: bool, dry_run: bool) -> None:
    """Make MEMBER (URL or id) the canonical of its cluster, whatever arrives later."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.promote(
        resolve(engine, member, "member").id, who=who or default_who(), reason=reason),
        dry_run, lambda engine, _: _plan_promote(engine, resolve(engine, member, "member")))


@override.command()
@click.argument("override_id", metavar="[ID]", type=int, required=False)
@_audit_options
@common_options
def undo(ctx: Context, override_id: int | None, reason: str, who: str | None, as_json: bool,
         dry_run: bool) -> None:
    """Reverse override ID (default: the latest one not undone yet)."""
    _apply(ctx, as_json, lambda engine, overrides: overrides.undo(
        override_id, who=who or default_who(), reason=reason),
        dry_run, lambda _, overrides: _plan_undo(overrides, override_id))


@override.command(name="log")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Latest entries to list.")
@since_option
@output_option
@common_options
def log_command(ctx: Context, limit: int, since: str | None, output: str, as_json: bool) -> None:
    """The audit log of overrides: who, when, what and why, and what was undone."""
    _log(ctx, limit, as_json, since, output)


COMMANDS = [override]
