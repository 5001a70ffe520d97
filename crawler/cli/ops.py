"""`newsdedup status` and `newsdedup dupes`, and what the operator commands share."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from crawler.cli import Context, common_options
from crawler.config import parse_duration
from crawler.redis_conn import redact_url
from crawler.render import ago, byte_size, iso, score, span
from dedup import record as rec
from dedup import stream
from dedup.engine import Engine

STALE_HEARTBEAT = 30.0
"""An instance whose heartbeat (every 5 s) is older than this is probably gone."""
DUPLICATE_KINDS = ("exact", "near", "excerpt")


# Shared by the operator commands

def where(ctx: Context) -> str:
    """The Redis this command reads, fit to print (no password)."""
    url = ctx.settings.redis.url
    return redact_url(url) if url else f"the embedded Redis in {ctx.settings.data_dir}"


def index_exists(ctx: Context) -> bool:
    return bool(ctx.client.exists(ctx.keys.params))


def require_index(ctx: Context) -> Engine:
    """The engine, or one clear line when nothing was ever decided under this prefix."""
    if not index_exists(ctx):
        raise click.ClickException(
            f"nothing decided yet under key prefix {ctx.keys.prefix!r} on {where(ctx)}: "
            "run `newsdedup ingest FILE` or `newsdedup run` first (or check --redis-url / --key-prefix)"
        )
    return ctx.engine


def resolve(engine: Engine, ref: str, role: str = "article") -> rec.Record:
    """The stored article an id or URL names, or one clear line saying why there is none."""
    found = engine.find(ref)
    if found is not None:
        return found
    if "://" not in ref and "." not in ref and not _is_id(ref):
        raise click.ClickException(f"{role} {ref!r}: neither an article id (16 hex digits) nor a URL")
    raise click.ClickException(f"{role} {ref!r}: no such article in the index (never decided, or expired)")


def _is_id(ref: str) -> bool:
    return len(ref) == 16 and all(c in "0123456789abcdef" for c in ref.lower())


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


PIPE_WIDTH = 160
"""Tables written to a pipe or file are this wide (unless $COLUMNS says otherwise): URLs stay whole for grep."""


def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out = Console(highlight=False, width=PIPE_WIDTH)
    return out


def forward_options(ctx: click.Context) -> None:
    """Options given to a command group (`queue --json`, `override --redis-url ...`) apply to the
    subcommand invoked, through click's default_map."""
    given = {name: value for name, value in ctx.params.items() if value not in (None, False)}
    group = ctx.command
    if isinstance(group, click.Group) and given:
        ctx.default_map = {name: dict(given) for name in group.commands}


def flags_text(record: rec.Record) -> str:
    names = []
    for flag, name in ((rec.PINNED, "pinned"), (rec.SPLIT, "split"), (rec.SYNDICATED, "syndicated"),
                       (rec.CANONICAL_ELSEWHERE, "canonical-elsewhere"), (rec.BOILERPLATE, "boilerplate-discounted"),
                       (rec.LIST_ARTICLE, "list-article")):
        if record.flags & flag:
            names.append(name)
    return ",".join(names)


# status

def _decode_map(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _instances(ctx: Context, now: float) -> list[dict[str, Any]]:
    rows = []
    for name, value in sorted(_decode_map(ctx.client.hgetall(ctx.keys.instances)).items()):
        try:
            beat = json.loads(value)
        except ValueError:
            beat = {}
        seen = float(beat.get("seen") or 0)
        started = float(beat.get("started") or 0)
        rows.append({
            "name": name, "host": beat.get("host"), "pid": beat.get("pid"), "version": beat.get("version"),
            "started": iso(started), "last_heartbeat": iso(seen),
            "heartbeat_age": round(now - seen, 1) if seen else None,
            "uptime": round(now - started) if started else None, "alive": bool(seen) and now - seen < STALE_HEARTBEAT,
            "crawling": beat.get("crawling") or [],
        })
    return rows


def _source_names(ctx: Context, cache: dict[str, list[str]]) -> list[str]:
    names = [source.name for source in ctx.settings.sources]
    if names:
        return names
    if "scanned" not in cache:  # no config: find the sources a service recorded (once per run)
        prefix = ctx.keys.source_state("")
        cache["scanned"] = sorted(
            key.decode("utf-8", "replace")[len(prefix):]
            for key in ctx.client.scan_iter(match=prefix + "*", count=5000)
        )
    return cache["scanned"]


def _sources(ctx: Context, cache: dict[str, list[str]]) -> list[dict[str, Any]]:
    rows = []
    for name in _source_names(ctx, cache):
        state = {k: v for k, v in _decode_map(ctx.client.hgetall(ctx.keys.source_state(name))).items()
                 if not k.startswith(("etag:", "modified:"))}
        finished = float(state["last_finished"]) if state.get("last_finished") else None
        try:
            counts = json.loads(state.get("last_counts") or "{}")
        except ValueError:
            counts = {}
        rows.append({"name": name, "last_crawl": iso(finished), "finished": finished,
                     "last_outcome": state.get("last_outcome"), "last_instance": state.get("last_instance"),
                     "last_counts": counts})
    return rows


def _index(ctx: Context) -> dict[str, Any]:
    params = _decode_map(ctx.client.hgetall(ctx.keys.params))
    shards = int(params.get("shards") or 0)
    pipe = ctx.client.pipeline(transaction=False)
    for shard in range(shards):
        pipe.hlen(ctx.keys.band_shard(shard))
    lengths = pipe.execute() if shards else []
    used = [shard for shard, length in enumerate(lengths) if length]
    sample = used[:: max(1, len(used) // 32)][:32]
    pipe = ctx.client.pipeline(transaction=False)
    for shard in sample:
        pipe.memory_usage(ctx.keys.band_shard(shard))
    sizes = [int(s or 0) for s in pipe.execute()] if sample else []
    estimate = int(sum(sizes) / len(sizes) * len(used)) if sizes else 0
    return {"shards": shards, "shard_keys": len(used), "buckets": int(sum(lengths)), "memory_estimate": estimate}


def status_report(ctx: Context, cache: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data."""
    now = time.time()
    cache = {} if cache is None else cache
    client, keys = ctx.client, ctx.keys
    memory = client.info("memory")
    server = client.info("server")
    counts = {k: int(v) for k, v in _decode_map(client.hgetall(keys.stats)).items()}
    duplicates = {kind: counts.get(f"dup_{kind}", 0) for kind in DUPLICATE_KINDS}
    decided = counts.get("canonicals", 0) + sum(duplicates.values())
    canonical = stream.state(client, keys.canonical_stream, now)
    return {
        "redis": {"where": where(ctx), "prefix": keys.prefix, "version": server.get("redis_version"),
                  "used_memory": memory.get("used_memory"), "peak_memory": memory.get("used_memory_peak"),
                  "maxmemory": memory.get("maxmemory"), "maxmemory_policy": memory.get("maxmemory_policy")},
        "empty": not client.exists(keys.params),
        "instances": _instances(ctx, now),
        "sources": _sources(ctx, cache),
        "totals": {
            "articles": sum(v for k, v in counts.items() if k != "clusters"),
            "clusters": counts.get("clusters", 0), "canonicals": counts.get("canonicals", 0),
            "duplicates": duplicates, "thin": counts.get("thin", 0),
            "duplicate_rate": round(sum(duplicates.values()) / decided, 4) if decided else 0.0,
            "overrides": int(client.llen(keys.overrides_log)),
        },
        "stream": {
            "key": canonical.key, "length": canonical.length,
            "first": canonical.first.as_json()["added"] if canonical.first else None,
            "last": canonical.last.as_json()["added"] if canonical.last else None,
            "groups": [{"name": g.name, "consumers": len(g.consumers), "pending": g.pending, "lag": g.lag,
                        "oldest_pending_age": g.oldest_pending_age} for g in canonical.groups],
            "events_waiting": int(client.hlen(keys.pending_events)),
        },
        "inbox": int(client.xlen(keys.inbox)) if client.exists(keys.inbox) else 0,
        "dead_letters": int(client.xlen(keys.dead_letters)),
        "index": _index(ctx) if client.exists(keys.params) else {"shards": 0, "shard_keys": 0, "buckets": 0,
                                                                  "memory_estimate": 0},
    }


def _grid(*rows: tuple[str, str]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


def render_status(report: dict[str, Any]) -> Group:
    """The status report as rich tables."""
    r, totals, strm, index = report["redis"], report["totals"], report["stream"], report["index"]
    parts: list[Any] = []
    maxmemory = f" of {byte_size(r['maxmemory'])}" if r.get("maxmemory") else ""
    parts.append(_grid(
        ("Redis", f"{r['where']} (Redis {r['version']}), prefix {r['prefix']!r}"),
        ("Memory", f"{byte_size(r['used_memory'] or 0)} used{maxmemory}, peak {byte_size(r['peak_memory'] or 0)}"),
    ))
    if report["empty"]:
        parts.append(Text("Nothing decided yet under this prefix: run `newsdedup ingest FILE` or `newsdedup run`.",
                          style="yellow"))
    if report["instances"]:
        table = Table("instance", "host", "pid", "version", "up", "heartbeat", "crawling", title="Instances",
                      title_justify="left")
        for row in report["instances"]:
            beat = f"{span(row['heartbeat_age'])} ago" if row["heartbeat_age"] is not None else "never"
            table.add_row(row["name"], str(row["host"] or "-"), str(row["pid"] or "-"), row["version"] or "-",
                          span(row["uptime"]) if row["uptime"] is not None else "-",
                          Text(beat, style="" if row["alive"] else "red"), ", ".join(row["crawling"]) or "-")
        parts.append(table)
    else:
        parts.append(Text("Instances: no running instances"))
    if report["sources"]:
        table = Table("source", "last crawl", "outcome", "on", "fetched", "extracted", title="Sources",
                      title_justify="left")
        for row in report["sources"]:
            counts = row["last_counts"]
            table.add_row(row["name"], ago(row["finished"]), row["last_outcome"] or "never crawled",
                          row["last_instance"] or "-",
                          str(counts.get("articles_fetched", "-")), str(counts.get("extracted", "-")))
        parts.append(table)
    dups = totals["duplicates"]
    table = Table("articles", "clusters", "canonical", "exact", "near", "excerpt", "thin", "dup rate",
                  "overrides", title="Decisions", title_justify="left")
    table.add_row(*(str(v) for v in (totals["articles"], totals["clusters"], totals["canonicals"], dups["exact"],
                                      dups["near"], dups["excerpt"], totals["thin"])),
                  f"{totals['duplicate_rate']:.1%}", str(totals["overrides"]))
    parts.append(table)
    lines = [("Canonical stream", f"{strm['key']}: {strm['length']} entries"
              + (f", {when_iso(strm['first'])} .. {when_iso(strm['last'])}" if strm["first"] else ""))]
    for group in strm["groups"]:
        lag = "?" if group["lag"] is None else str(group["lag"])
        oldest = f", oldest pending {span(group['oldest_pending_age'])} old" if group["oldest_pending_age"] else ""
        consumers = f"{group['consumers']} consumer{'' if group['consumers'] == 1 else 's'}"
        lines.append((f"  group {group['name']}", f"{consumers}, {group['pending']} pending, lag {lag}{oldest}"))
    if not strm["groups"]:
        lines.append(("  groups", "none (downstream readers use `newsdedup queue consume --group NAME`)"))
    if strm["events_waiting"]:
        lines.append(("  waiting", f"{strm['events_waiting']} events waiting for their text"))
    lines.append(("Inbox", f"{report['inbox']} fetched articles waiting for a decision"))
    if report["dead_letters"]:
        waiting = f"{report['dead_letters']} records that could not be decided (`newsdedup dead list`)"
        lines.append(("Dead letters", waiting))
    index_line = (f"{index['buckets']} band buckets in {index['shard_keys']} of {index['shards']} shard keys, "
                  f"~{byte_size(index['memory_estimate'])}")
    lines.append(("Index", index_line))
    parts.append(_grid(*lines))
    return Group(*parts)


def when_iso(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (with --watch: one per refresh).")
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--times", type=click.IntRange(min=1), default=None, hidden=True,
              help="Stop --watch after this many refreshes (for tests and scripts).")
@common_options
def status(ctx: Context, as_json: bool, watch: bool, interval: float, times: int | None) -> None:
    """Running instances, sources' last crawls, decision totals, the stream, the index and Redis memory."""
    cache: dict[str, list[str]] = {}
    if not watch:
        report = status_report(ctx, cache)
        if as_json:
            echo_json(report)
        else:
            console().print(render_status(report))
        return
    count = 0
    try:
        if as_json:
            while times is None or count < times:
                echo_json(status_report(ctx, cache))
                count += 1
                if times is None or count < times:
                    time.sleep(interval)
            return
        with Live(render_status(status_report(ctx, cache)), console=console(), auto_refresh=False) as live:
            count = 1
            while times is None or count < times:
                time.sleep(interval)
                live.update(render_status(status_report(ctx, cache)), refresh=True)
                count += 1
    except KeyboardInterrupt:
        return


# dupes

def duplicate_rows(engine: Engine, since: float | None, sources: tuple[str, ...], kinds: tuple[str, ...],
                   min_similarity: float | None, limit: int) -> list[dict[str, Any]]:
    """The most recent duplicate decisions that pass the filters, newest first."""
    now = time.time()
    cutoff = now - since if since else None
    wanted_kinds = set(kinds or DUPLICATE_KINDS)
    canonical_urls: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for record in engine.records(newest_first=True, batch=200):
        if cutoff is not None and record.arrived < cutoff:
            if record.arrived < cutoff - 3600:  # hour buckets are in order: nothing newer follows
                break
            continue
        if record.kind not in wanted_kinds:
            continue
        if sources and record.source not in sources and record.site not in sources:
            continue
        if min_similarity is not None and (record.similarity or 0) < min_similarity:
            continue
        target = record.duplicate_of or ""
        if target and target not in canonical_urls:
            canonical = engine.get(target)
            canonical_urls[target] = canonical.url if canonical else ""
        rows.append({
            "when": iso(record.arrived), "arrived": record.arrived, "kind": record.kind,
            "similarity": record.similarity,
            "containment": record.containment, "url": record.url, "id": record.id,
            "canonical_url": canonical_urls.get(target, ""), "canonical_id": target or None,
            "cluster": record.cluster, "source": record.source, "site": record.site, "title": record.title,
        })
        if len(rows) >= limit:
            break
    return rows


@click.command()
@click.option("--since", default=None, help="Only decisions this recent: 30m, 2h, 1d.")
@click.option("--source", "sources", multiple=True, help="Only copies from this source name or site (repeatable).")
@click.option("--kind", "kinds", type=click.Choice(DUPLICATE_KINDS), multiple=True,
              help="Only this kind of copy (repeatable).")
@click.option("--min-similarity", type=click.FloatRange(0, 1), default=None,
              help="Only copies at least this similar (estimated Jaccard, 0..1).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@common_options
def dupes(ctx: Context, since: str | None, sources: tuple[str, ...], kinds: tuple[str, ...],
          min_similarity: float | None, limit: int, as_json: bool) -> None:
    """The most recent duplicate decisions, newest first: copy, canonical, kind and scores."""
    try:
        window = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    engine = require_index(ctx)
    rows = duplicate_rows(engine, window, sources, kinds, min_similarity, limit)
    if as_json:
        for row in rows:
            echo_json(row)
        return
    if not rows:
        click.echo("no duplicate decisions match" + (f" in the last {since}" if since else ""))
        return
    table = Table("decided", "kind", "sim", "cont", "copy", "canonical", "source",
                  caption="sim: estimated Jaccard; cont: share of the smaller text found in the larger")
    for row in rows:
        table.add_row(ago(row["arrived"]),
                      row["kind"], score(row["similarity"]), score(row["containment"]),
                      Text(row["url"], overflow="fold"), Text(row["canonical_url"], overflow="fold"),
                      row["source"] or row["site"])
    console().print(table)


COMMANDS = [status, dupes]
