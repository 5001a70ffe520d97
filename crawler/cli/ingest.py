"""`newsdedup ingest` and `newsdedup export`."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter

import click
import redis
from rich.console import Console

from crawler.backfill import Ingest, ProgressMeter
from crawler.cli import Context, common_options
from crawler.cli.ops import index_exists, parse_since, since_option, where
from crawler.ingest import RawRecord, Source
from dedup.deadletter import DeadLetters
from dedup.engine import Engine
from dedup.validate import shown

EXIT_FAILED = 3
"""Exit status of `ingest` when some records could not be decided (the others were)."""


def final_roles(engine: Engine, article_ids: list[str]) -> Counter[str]:
    """What the articles are in the store now (as `export` and `status` see them): canonical, thin, or
    the kind of copy; an early canonical that a better copy displaced is a duplicate, not a canonical."""
    roles: Counter[str] = Counter()
    canonicals: dict[str, str] = {}
    for start in range(0, len(article_ids), 500):
        for record in engine.get_many(article_ids[start : start + 500]):
            if record.kind == "thin":
                roles["thin"] += 1
                continue
            if record.cluster not in canonicals:
                canonicals[record.cluster] = engine.cluster(record.cluster)[0]
            if canonicals[record.cluster] == record.id:
                roles["canonical"] += 1
            else:
                roles["duplicates"] += 1
                if record.kind in ("exact", "near", "excerpt"):
                    roles[record.kind] += 1
    return roles


@click.command()
@click.argument("path", type=click.Path(allow_dash=True))
@click.option("--workers", type=int, default=0, show_default=True,
              help="Extraction processes for HTML records (0: one per core).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per decision.")
@click.option("--progress/--no-progress", "progress", default=None,
              help="A progress line on stderr every few seconds (default: only on a terminal).")
@click.option("--quiet", is_flag=True, help="No progress lines (as --no-progress).")
@click.option("--recheck", is_flag=True,
              help="Extract and fingerprint records already in the store too (default: passed over).")
@common_options(creates_store=True)
def ingest(ctx: Context, path: str, workers: int, as_json: bool, progress: bool | None, quiet: bool,
           recheck: bool) -> None:
    """Decide JSON Lines records ({"url","html"} or {"url","text"}) or WARC responses; '-' is stdin.

    Records whose article is in the store already (an earlier, interrupted run decided them) are
    passed over before extraction, so running the same input again continues where it stopped.
    Ctrl-C or SIGTERM stops after the records in flight, with a summary.

    Exit status 3 when some records could not be decided (each is reported with its line number
    and put on the dead-letter stream); the others are decided all the same.
    """
    if path != "-" and not os.path.exists(path):
        raise click.ClickException(f"{path}: no such file")
    err = Console(stderr=True, soft_wrap=True)
    counts: Counter[str] = Counter()
    show_progress = (err.is_terminal if progress is None else progress) and not quiet
    source = Source(path, sys.stdin.buffer)

    def say(text: str) -> None:
        err.print(text, markup=False, highlight=False)

    def report(raw: RawRecord, what: str, url: str = "") -> None:
        where = f"line {raw.line}" if raw.line else path
        say(f"{where}: {what}" + (f" ({shown(url)})" if url else ""))

    stopped: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        if stopped:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stopped.append(signum)
        say("stopping after the records in flight (Ctrl-C again to stop at once)")
        run.stop.set()

    try:
        engine = ctx.engine
        run = Ingest(engine, DeadLetters(ctx.client, ctx.keys), f"ingest {path}",
                     workers=workers or (os.cpu_count() or 1), skip_known=not recheck)
        meter = ProgressMeter(say, position=source.bytes_read, total=source.total_bytes)
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for outcome in run.run(source.records()):
                raw = outcome.raw
                for note in outcome.notes:
                    counts["dropped"] += 1
                    report(raw, f"note: {note}")
                if outcome.skipped:
                    counts["skipped"] += 1
                    report(raw, f"skipped: {outcome.skipped}", raw.url)
                elif outcome.failed:
                    counts["failed"] += 1
                    article = outcome.article
                    url = article.url if article and outcome.stage != "validate" else ""
                    report(raw, f"failed, put on the dead-letter stream: {outcome.failed}", url)
                    if as_json:
                        click.echo(json.dumps({"line": raw.line, "url": article.url if article else raw.url,
                                               "failed": True, "stage": outcome.stage, "error": outcome.failed}))
                elif outcome.known_id:
                    counts["articles"] += 1
                    counts["known"] += 1
                    if as_json:
                        click.echo(json.dumps({"url": raw.url, "id": outcome.known_id, "known": True}))
                elif outcome.decision:
                    result = outcome.decision
                    counts["articles"] += 1
                    if result.known:
                        counts["known"] += 1
                    if as_json:
                        click.echo(json.dumps({
                            "url": result.url, "id": result.article_id, "cluster": result.cluster,
                            "canonical": result.canonical_id, "kind": result.kind,
                            "similarity": result.similarity, "known": result.known,
                        }))
                if show_progress:
                    meter.update(run.read, counts["articles"], counts["skipped"] + counts["failed"])
            engine.emit_pending()
            if show_progress:
                meter.update(run.read, counts["articles"], counts["skipped"] + counts["failed"], force=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            source.close()
            try:
                run.tally.close()
            except redis.RedisError:
                pass  # the run's role hashes expire on their own
    except redis.ResponseError as exc:  # out of memory, a read-only replica: no record's fault, stop here
        raise click.ClickException(f"Redis refused a write: {exc} ({counts['articles']} articles decided "
                                   "before it; ingesting the file again decides the rest)") from None
    counts.update(run.tally.summary())
    duplicates = counts["duplicates"]
    summary = (
        f"{counts['articles']} articles decided: {counts['canonical']} canonical, {duplicates} duplicates "
        f"(exact {counts['exact']}, near {counts['near']}, excerpt {counts['excerpt']}), "
        f"{counts['thin']} with too little text, {counts['known']} already known; "
        f"{counts['skipped']} records skipped; {counts['failed']} records failed"
        + (" (on the dead-letter stream: `newsdedup dead list`)" if counts["failed"] else "")
        + (f"; {counts['dropped']} unusable fields dropped" if counts["dropped"] else "")
    )
    say(summary + " (as stored now: a canonical displaced by a better copy counts as its duplicate)")
    if stopped:
        say(f"interrupted after {run.read:,} records: run the same command again to continue "
            "(records already decided are passed over before extraction)")
        sys.exit(128 + stopped[0])
    if counts["failed"]:
        sys.exit(EXIT_FAILED)


@click.command()
@click.option("--duplicates-only", is_flag=True, help="Only articles that are copies of another.")
@since_option
@click.option("--json", "as_json", is_flag=True, help="JSON lines (the default and only format of export).")
@common_options
def export(ctx: Context, duplicates_only: bool, since: str | None, as_json: bool) -> None:
    """Print one JSON line per stored article: its cluster, canonical and how it was matched."""
    cutoff = parse_since(since) if since else None
    if not index_exists(ctx):  # nothing to export is no error; where it looked is worth a line
        click.echo(f"nothing decided yet under key prefix {ctx.keys.prefix!r} on {where(ctx)}", err=True)
        return
    engine = ctx.engine
    canonical_urls: dict[str, tuple[str, str]] = {}
    for record in engine.records():
        if cutoff is not None and record.arrived < cutoff:
            continue
        if record.cluster not in canonical_urls:
            canonical_id, _, _ = engine.cluster(record.cluster)
            canonical = record if canonical_id == record.id else engine.get(canonical_id)
            canonical_urls[record.cluster] = (canonical_id, canonical.url if canonical else "")
        canonical_id, canonical_url = canonical_urls[record.cluster]
        is_canonical = record.id == canonical_id or record.kind == "thin"
        if duplicates_only and is_canonical:
            continue
        click.echo(json.dumps({
            "url": record.url,
            "id": record.id,
            "cluster": record.cluster,
            "canonical_url": record.url if is_canonical else canonical_url,
            "is_canonical": is_canonical,
            "duplicate_of": None if is_canonical else canonical_url,
            "similarity": None if is_canonical else record.similarity,
            "containment": None if is_canonical else record.containment,
            "kind": None if is_canonical else record.kind,
            "thin": record.kind == "thin",
            "title": record.title,
            "published": record.published_at.isoformat() if record.published_at else None,
            "site": record.site,
        }, ensure_ascii=False))


COMMANDS = [ingest, export]
