"""`newsdedup status` and `newsdedup dupes`, and what the operator commands share."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from crawler import control
from crawler.cli import Context, common_options
from crawler.config import parse_duration
from crawler.redis_conn import redact_url
from crawler.render import ago, byte_size, iso, score, span, when
from dedup import record as rec
from dedup import stream
from dedup.cluster import scan_keys, server_info
from dedup.engine import Engine
from dedup.index import FIELDS_PER_ARTICLE, FIELDS_PER_SHARD

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


def live_instances(ctx: Context) -> list[str]:
    """Names of the service instances whose heartbeat is fresh."""
    return [row["name"] for row in _instances(ctx, time.time()) if row["alive"]]


def require_index_or_service(ctx: Context) -> None:
    """One clear line when this Redis holds neither decisions nor a service's traces (the wrong Redis?)."""
    if index_exists(ctx) or ctx.client.exists(ctx.keys.instances):
        return
    raise click.ClickException(
        f"no newsdedup index and no service under key prefix {ctx.keys.prefix!r} on {where(ctx)}: "
        "point at the service's Redis with --redis-url or --config (or check --key-prefix)")


def parse_since(value: str, now: float | None = None) -> float:
    """A cut-off time: relative ("30m", "2h", "1d": that long ago) or absolute ISO ("2026-11-28",
    "2026-11-28T03:12", with an offset or UTC)."""
    try:
        return (time.time() if now is None else now) - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1) if " " in value.strip() else value.strip())
    except ValueError:
        raise click.BadParameter(f"not a duration (30m, 2h, 1d) or an ISO date/time (2026-11-28, "
                                 f"2026-11-28T03:12Z): {value!r}", param_hint="--since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def since_option(command: Any) -> Any:
    return click.option("--since", default=None, metavar="WHEN",
                        help="Only entries this recent: 30m, 2h, 1d, or an ISO date/time (UTC unless "
                             "given): 2026-11-28, 2026-11-28T03:12.")(command)


OUTPUTS = ("table", "wide", "tsv", "json")


def output_option(command: Any) -> Any:
    """--output table|wide|tsv|json and --json (the same as --output json)."""
    command = click.option("--json", "as_json", is_flag=True, help="JSON (the same as --output json).")(command)
    return click.option("--output", "-o", "output", type=click.Choice(OUTPUTS), default="table", show_default=True,
                        help="table: fits the terminal, ids and URLs whole on their own lines; wide: one row "
                             "per entry, nothing wrapped; tsv: tab-separated with a header; json: one object "
                             "per line.")(command)


def emit(*renderables: Any, wide: bool = False) -> None:
    """Print rich output; on a terminal, through the pager when it is longer than the screen."""
    out = console()
    if wide:
        out = Console(highlight=False, width=100_000 if not out.is_terminal else max(out.width, 400),
                      soft_wrap=True)
    if not sys.stdout.isatty():
        for item in renderables:
            out.print(item, soft_wrap=isinstance(item, Text))
        return
    with out.capture() as captured:
        for item in renderables:
            # A line of text is never cut: the terminal wraps it, and a URL in it copies whole.
            out.print(item, soft_wrap=isinstance(item, Text))
    text = captured.get()
    if text.count("\n") > out.height - 2:
        click.echo_via_pager(text)
    else:
        click.echo(text, nl=False)


def echo_tsv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Tab-separated values with a header; tabs and newlines inside a value become spaces."""
    def cell(value: Any) -> str:
        return "" if value is None else " ".join(str(value).split())

    click.echo("\t".join(header))
    for row in rows:
        click.echo("\t".join(cell(value) for value in row))


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
            for key in scan_keys(ctx.client, prefix + "*", count=5000)
        )
    return cache["scanned"]


def _sources(ctx: Context, cache: dict[str, list[str]], now: float) -> list[dict[str, Any]]:
    return source_rows(ctx, _source_names(ctx, cache), now)


def source_rows(ctx: Context, names: list[str], now: float) -> list[dict[str, Any]]:
    """Each source: schedule, next crawl, paused, the last crawl's result, recent results, failing URLs."""
    paused = control.paused(ctx.client, ctx.keys)
    requested = control.crawl_requests(ctx.client, ctx.keys)
    rows = []
    for name in names:
        state = {k: v for k, v in _decode_map(ctx.client.hgetall(ctx.keys.source_state(name))).items()
                 if not k.startswith(("etag:", "modified:"))}
        finished = float(state["last_finished"]) if state.get("last_finished") else None
        try:
            counts = json.loads(state.get("last_counts") or "{}")
        except ValueError:
            counts = {}
        configured = ctx.settings.source(name)
        next_crawl = float(state["next_crawl"]) if state.get("next_crawl") else None
        recent = control.results(ctx.client, ctx.keys, name, now, limit=10)
        failing = control.failures(ctx.client, ctx.keys, name, now)
        rows.append({"name": name, "schedule": configured.schedule if configured else None,
                     "paused": paused.get(name), "crawl_requested": requested.get(name),
                     "next_crawl": iso(next_crawl) if next_crawl and next_crawl > now - 60 else None,
                     "next_crawl_at": next_crawl,
                     "last_crawl": iso(finished), "finished": finished,
                     "last_outcome": state.get("last_outcome"), "last_instance": state.get("last_instance"),
                     "last_counts": counts,
                     "recent_results": [{**r, "finished": iso(r.get("finished")), "started": iso(r.get("started"))}
                                        for r in recent],
                     "failing_urls": [{**f, "at": iso(f.get("at"))} for f in failing]})
    return rows


LISTPACK_ENTRIES = 512
"""Redis's default hash-max-listpack-entries: a band shard past it leaves the compact encoding."""
INDEX_SAMPLE = 4096
"""Band shards `status` reads the length of, at most (spread evenly; the totals are scaled up)."""


def _index(ctx: Context) -> dict[str, Any]:
    """The band shards' fill: every shard's length up to INDEX_SAMPLE shards, else that many spread
    evenly over them and scaled up (an index sized for millions has 100,000s of shards; `status` and
    the dashboard ask every few seconds)."""
    params = _decode_map(ctx.client.hgetall(ctx.keys.params))
    shards = int(params.get("shards") or 0)
    step = max(1, -(-shards // INDEX_SAMPLE))
    sample = range(0, shards, step)
    pipe = ctx.client.pipeline(transaction=False)
    for shard in sample:
        pipe.hlen(ctx.keys.band_shard(shard))
    lengths = [int(length) for length in pipe.execute()] if shards else []
    scale = shards / len(lengths) if lengths else 0.0
    used = [shard for shard, length in zip(sample, lengths, strict=True) if length]
    sized = used[:: max(1, len(used) // 32)][:32]
    pipe = ctx.client.pipeline(transaction=False)
    for shard in sized:
        pipe.memory_usage(ctx.keys.band_shard(shard))
    sizes = [int(s or 0) for s in pipe.execute()] if sized else []
    shard_keys = round(len(used) * scale)
    return {"shards": shards, "sampled": len(lengths), "shard_keys": shard_keys,
            "buckets": round(sum(lengths) * scale),
            "memory_estimate": int(sum(sizes) / len(sizes) * shard_keys) if sizes else 0,
            "sized_for": shards * FIELDS_PER_SHARD // FIELDS_PER_ARTICLE,
            "fullest_shard": max(lengths, default=0),
            "shards_past_listpack": round(sum(1 for length in lengths if length > LISTPACK_ENTRIES) * scale)}


def status_report(ctx: Context, cache: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data."""
    now = time.time()
    cache = {} if cache is None else cache
    client, keys = ctx.client, ctx.keys
    memory = server_info(client, "memory")
    server = server_info(client, "server")
    counts = {k: int(v) for k, v in _decode_map(client.hgetall(keys.stats)).items()}
    duplicates = {kind: counts.get(f"dup_{kind}", 0) for kind in DUPLICATE_KINDS}
    decided = counts.get("canonicals", 0) + sum(duplicates.values())
    canonical = stream.state(client, keys.canonical_stream, now)
    return {
        "redis": {"where": where(ctx), "prefix": keys.prefix, "version": server.get("redis_version"),
                  "nodes": memory["nodes"],
                  "used_memory": memory.get("used_memory"), "peak_memory": memory.get("used_memory_peak"),
                  "maxmemory": memory.get("maxmemory"), "maxmemory_policy": memory.get("maxmemory_policy")},
        "empty": not client.exists(keys.params),
        "instances": _instances(ctx, now),
        "sources": _sources(ctx, cache, now),
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
                        "lag_note": None if g.lag is not None else f"more than {stream.LAG_COUNT_LIMIT}",
                        "oldest_pending_age": g.oldest_pending_age} for g in canonical.groups],
            "events_waiting": int(client.hlen(keys.pending_events)),
        },
        "inbox": int(client.xlen(keys.inbox)) if client.exists(keys.inbox) else 0,
        "dead_letters": int(client.xlen(keys.dead_letters)),
        "index": _index(ctx) if client.exists(keys.params) else {"shards": 0, "sampled": 0, "shard_keys": 0,
                                                                  "buckets": 0, "memory_estimate": 0, "sized_for": 0,
                                                                  "fullest_shard": 0, "shards_past_listpack": 0},
    }


def _grid(*rows: tuple[str, str]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


def source_lines(row: dict[str, Any], now: float) -> list[Text]:
    """A source as lines that fit 80 columns: the URLs that failed each on a line of its own."""
    head = Text(row["name"], style="bold")
    if row["schedule"]:
        head.append(f"  {row['schedule']}")
    if row["paused"]:
        pause = row["paused"]
        why = f": {pause['reason']}" if pause.get("reason") else ""
        head.append(f"  PAUSED by {pause.get('who')} {ago(pause.get('at'), now)}{why}", style="yellow")
    elif row["next_crawl_at"] and row["next_crawl_at"] > now - 60:
        wait = span(max(0, row["next_crawl_at"] - now))
        head.append(f"  next crawl {when(row['next_crawl_at'])[11:]} UTC (in {wait})")
    if row["crawl_requested"]:
        head.append("  crawl requested", style="cyan")
    lines = [head]
    counts = row["last_counts"]
    if row["last_outcome"]:
        style = "" if row["last_outcome"] == "ok" else "yellow"
        last = Text("  last crawl ")
        last.append(row["last_outcome"], style=style)
        last.append(f" {ago(row['finished'], now)} on {row['last_instance'] or '-'}: "
                    f"{counts.get('articles_fetched', 0)} fetched, {counts.get('extracted', 0)} extracted")
        lines.append(last)
    else:
        lines.append(Text("  never crawled"))
    earlier = [r for r in row["recent_results"][1:6]]
    if earlier:
        lines.append(Text("  before: " + ", ".join(f"{r.get('outcome')} {when_iso(r.get('finished'))[11:]}"
                                                  for r in earlier)))
    failing = row["failing_urls"]
    if failing:
        lines.append(Text(f"  failing URLs ({len(failing)} in the last {span(control.STATUS_WINDOW)}):",
                          style="red"))
        for failure in failing[:5]:
            times = f" x{failure['count']}" if failure.get("count", 1) > 1 else ""
            lines.append(Text(f"    {failure['url']}"))
            lines.append(Text(f"      {failure.get('reason', '')}{times}, {when_iso(failure.get('at'))}",
                              style="dim"))
        if len(failing) > 5:
            lines.append(Text(f"    ... and {len(failing) - 5} more (`newsdedup status --json`)"))
    return lines


def render_status(report: dict[str, Any]) -> Group:
    """The status report as lines and label/value grids that fit 80 columns."""
    now = time.time()
    r, totals, strm, index = report["redis"], report["totals"], report["stream"], report["index"]
    parts: list[Any] = []
    maxmemory = f" of {byte_size(r['maxmemory'])}" if r.get("maxmemory") else ""
    parts.append(_grid(
        ("Redis", f"{r['where']} (Redis {r['version']}), prefix {r['prefix']!r}"),
        ("Memory", f"{byte_size(r['used_memory'] or 0)} used{maxmemory}, peak {byte_size(r['peak_memory'] or 0)}"
                   + (f", over {r['nodes']} cluster primaries" if r.get("nodes", 1) > 1 else "")),
    ))
    if report["empty"]:
        parts.append(Text(f"Nothing decided yet under this prefix on {r['where']}: run `newsdedup ingest FILE` "
                          "or `newsdedup run`, or point at the service's Redis with --redis-url or --config.",
                          style="yellow"))
    if report["instances"]:
        parts.append(Text("Instances", style="bold"))
        for row in report["instances"]:
            beat = f"{span(row['heartbeat_age'])} ago" if row["heartbeat_age"] is not None else "never"
            line = Text(f"  {row['name']}", style="bold")
            line.append(f"  {row['host'] or '-'} pid {row['pid'] or '-'}, version {row['version'] or 'unknown'}, "
                        f"up {span(row['uptime']) if row['uptime'] is not None else '-'}, heartbeat ")
            line.append(beat, style="" if row["alive"] else "red")
            if row["crawling"]:
                line.append(f", crawling {', '.join(row['crawling'])}")
            parts.append(line)
    else:
        parts.append(Text(f"Instances: none has a heartbeat in {r['where']} under prefix {r['prefix']!r} "
                          "(is the service pointed at another Redis or prefix?)"))
    if report["sources"]:
        parts.append(Text("Sources", style="bold"))
        for row in report["sources"]:
            parts.extend(source_lines(row, now))
    dups = totals["duplicates"]
    parts.append(_grid(
        ("Decisions", (f"{totals['articles']} articles in {totals['clusters']} clusters: "
                       f"{totals['canonicals']} canonical, {sum(dups.values())} duplicates "
                       f"({totals['duplicate_rate']:.1%}), {totals['thin']} too short")),
        ("  duplicates", f"exact {dups['exact']}, near {dups['near']}, excerpt {dups['excerpt']}"),
        ("  overrides", str(totals["overrides"])),
    ))
    lines = [("Canonical stream", f"{strm['key']}: {strm['length']} entries"
              + (f", {when_iso(strm['first'])} .. {when_iso(strm['last'])}" if strm["first"] else ""))]
    for group in strm["groups"]:
        lag = group["lag_note"] if group["lag"] is None else str(group["lag"])
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
    about = "~" if index.get("sampled", 0) < index["shards"] else ""
    index_line = (f"{about}{index['buckets']:,} band buckets in {about}{index['shard_keys']:,} of "
                  f"{index['shards']:,} shard keys, ~{byte_size(index['memory_estimate'])}")
    lines.append(("Index", index_line))
    if index.get("shards_past_listpack"):
        lines.append(("  outgrown", f"{index['shards_past_listpack']} shard keys hold more than {LISTPACK_ENTRIES} "
                                    "buckets, Redis's default listpack limit: each such bucket costs about 3x the "
                                    f"memory. The index was sized for about {index['sized_for']:,} articles; "
                                    "set [dedup] expected_articles to the articles kept and start on a new key "
                                    "prefix (an index keeps its size)"))
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
            emit(render_status(report))
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

def duplicate_rows(engine: Engine, cutoff: float | None, sources: tuple[str, ...], kinds: tuple[str, ...],
                   min_similarity: float | None, limit: int) -> list[dict[str, Any]]:
    """The most recent duplicate decisions that pass the filters, newest first."""
    wanted_kinds = set(kinds or DUPLICATE_KINDS)
    canonical_urls: dict[str, str] = {}
    canonical_titles: dict[str, str] = {}
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
            canonical_titles[target] = canonical.title if canonical else ""
        rows.append({
            "when": iso(record.arrived), "arrived": record.arrived, "kind": record.kind,
            "similarity": record.similarity,
            "containment": record.containment, "url": record.url, "id": record.id,
            "canonical_url": canonical_urls.get(target, ""), "canonical_id": target or None,
            "canonical_title": canonical_titles.get(target, ""),
            "cluster": record.cluster, "source": record.source, "site": record.site, "title": record.title,
        })
        if len(rows) >= limit:
            break
    return rows


DUPES_COLUMNS = ("decided", "kind", "similarity", "containment", "id", "url", "title", "canonical_id",
                 "canonical_url", "cluster", "source")


@click.command()
@since_option
@click.option("--source", "sources", multiple=True, help="Only copies from this source name or site (repeatable).")
@click.option("--kind", "kinds", type=click.Choice(DUPLICATE_KINDS), multiple=True,
              help="Only this kind of copy (repeatable).")
@click.option("--min-similarity", type=click.FloatRange(0, 1), default=None,
              help="Only copies at least this similar (estimated Jaccard, 0..1).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@output_option
@common_options
def dupes(ctx: Context, since: str | None, sources: tuple[str, ...], kinds: tuple[str, ...],
          min_similarity: float | None, limit: int, output: str, as_json: bool) -> None:
    """The most recent duplicate decisions, newest first: copy, canonical, kind and scores."""
    cutoff = parse_since(since) if since else None
    engine = require_index(ctx)
    rows = duplicate_rows(engine, cutoff, sources, kinds, min_similarity, limit)
    if as_json or output == "json":
        for row in rows:
            echo_json(row)
        return
    if output == "tsv":
        echo_tsv(DUPES_COLUMNS, ([row["when"], *(row[c] for c in DUPES_COLUMNS[1:])] for row in rows))
        return
    if not rows:
        click.echo("no duplicate decisions match" + (f" since {since}" if since else ""))
        return
    if output == "wide":
        table = Table("decided", "kind", "sim", "cont", "id", "copy", "canonical", "source", "title")
        for row in rows:
            table.add_row(ago(row["arrived"]), row["kind"], score(row["similarity"]), score(row["containment"]),
                          row["id"], row["url"], row["canonical_url"], row["source"] or row["site"], row["title"])
        emit(table, wide=True)
        return
    lines: list[Any] = []
    for row in rows:
        head = Text(f"{ago(row['arrived'])}  {row['kind']}  sim {score(row['similarity'])}  "
                    f"cont {score(row['containment'])}  {row['source'] or row['site']}  ")
        head.append(row["title"] or row["canonical_title"] or "(no title)", style="bold")
        lines += [head, Text(f"  copy {row['id']}  {row['url']}"),
                  Text(f"  of   {row['canonical_id'] or '-'}  {row['canonical_url']}")]
    lines.append(Text("sim: estimated Jaccard; cont: share of the smaller text found in the larger", style="italic"))
    emit(*lines)


COMMANDS = [status, dupes]
