"""`newsdedup ingest` and `newsdedup export`."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterator

import click
import redis
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from crawler.cli import Context, common_options
from crawler.cli.ops import index_exists, parse_since, since_option, where
from crawler.ingest import RawRecord, open_records, to_article
from dedup.article import Article
from dedup.deadletter import DeadLetters, decide_each, error_text
from dedup.validate import InvalidArticle, shown, validate
from dedup.engine import Engine

_SOURCE = "ingest"
EXIT_FAILED = 3
"""Exit status of `ingest` when some records could not be decided (the others were)."""


def _extract(raw: RawRecord) -> tuple[RawRecord, Article | str]:
    """Worker: one record to an Article or the reason it was skipped."""
    if raw.problem:
        return raw, raw.problem
    try:
        return raw, to_article(raw, _SOURCE)
    except Exception as exc:  # one bad page never stops the batch
        return raw, f"extraction failed: {exc.__class__.__name__}: {exc}"


def _extracted(records: Iterator[RawRecord], workers: int) -> Iterator[tuple[RawRecord, Article | str]]:
    if workers <= 1:
        yield from map(_extract, records)
        return
    context = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap(_extract, records, chunksize=4)


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
@click.option("--quiet", is_flag=True, help="No progress bar.")
@common_options(creates_store=True)
def ingest(ctx: Context, path: str, workers: int, as_json: bool, quiet: bool) -> None:
    """Decide JSON Lines records ({"url","html"} or {"url","text"}) or WARC responses; '-' is stdin.

    Exit status 3 when some records could not be decided (each is reported with its line number
    and put on the dead-letter stream); the others are decided all the same.
    """
    if path != "-" and not os.path.exists(path):
        raise click.ClickException(f"{path}: no such file")
    err = Console(stderr=True, soft_wrap=True)
    counts: Counter[str] = Counter()
    workers = workers or (os.cpu_count() or 1)
    show_progress = not quiet and not as_json and err.is_terminal
    records = open_records(path, sys.stdin.buffer)
    dead = DeadLetters(ctx.client, ctx.keys)
    pending: list[tuple[RawRecord, Article]] = []

    def report(raw: RawRecord, what: str, url: str = "") -> None:
        where = f"line {raw.line}" if raw.line else path
        err.print(f"{where}: {what}" + (f" ({shown(url)})" if url else ""), markup=False, highlight=False)

    def fail(raw: RawRecord, article: Article, error: str, stage: str) -> None:
        """A record that cannot be decided: reported, put on the dead-letter stream, and the batch goes on."""
        counts["failed"] += 1
        dead.add(article, error, stage=stage, origin=f"ingest {path} line {raw.line}")
        report(raw, f"failed, put on the dead-letter stream: {error}", article.url if stage != "validate" else "")
        if as_json:
            click.echo(json.dumps({"line": raw.line, "url": article.url, "failed": True, "stage": stage,
                                   "error": error}))

    decided_ids: list[str] = []

    def decide_pending() -> None:
        results = decide_each(engine, [article for _, article in pending])
        for (raw, article), result in zip(pending, results, strict=True):
            if isinstance(result, Exception):
                fail(raw, article, error_text(result), "decide")
                continue
            counts["articles"] += 1
            if result.known:
                counts["known"] += 1
            else:
                decided_ids.append(result.article_id)
            if as_json:
                click.echo(json.dumps({
                    "url": result.url, "id": result.article_id, "cluster": result.cluster,
                    "canonical": result.canonical_id, "kind": result.kind,
                    "similarity": result.similarity, "known": result.known,
                }))
        pending.clear()

    try:
        engine = ctx.engine
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} records"),
                      TimeElapsedColumn(), console=err, disable=not show_progress, transient=True) as progress:
            task = progress.add_task("ingesting", total=None)
            for raw, result in _extracted(records, workers):
                progress.advance(task)
                if isinstance(result, str):
                    counts["skipped"] += 1
                    report(raw, f"skipped: {result}", raw.url)
                    continue
                try:
                    checked = validate(result)
                except InvalidArticle as exc:
                    fail(raw, result, str(exc), "validate")
                    continue
                for note in checked.dropped:
                    counts["dropped"] += 1
                    report(raw, f"note: {note}")
                pending.append((raw, checked.article))
                if len(pending) >= 256:
                    decide_pending()
            decide_pending()
        engine.emit_pending()
    except redis.ResponseError as exc:  # out of memory, a read-only replica: no record's fault, stop here
        raise click.ClickException(f"Redis refused a write: {exc} ({counts['articles']} articles decided "
                                   "before it; ingesting the file again decides the rest)") from None
    counts.update(final_roles(engine, decided_ids))
    duplicates = counts["duplicates"]
    summary = (
        f"{counts['articles']} articles decided: {counts['canonical']} canonical, {duplicates} duplicates "
        f"(exact {counts['exact']}, near {counts['near']}, excerpt {counts['excerpt']}), "
        f"{counts['thin']} with too little text, {counts['known']} already known; "
        f"{counts['skipped']} records skipped; {counts['failed']} records failed"
        + (" (on the dead-letter stream: `newsdedup dead list`)" if counts["failed"] else "")
        + (f"; {counts['dropped']} unusable fields dropped" if counts["dropped"] else "")
    )
    err.print(summary + " (as stored now: a canonical displaced by a better copy counts as its duplicate)",
              markup=False, highlight=False)
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
