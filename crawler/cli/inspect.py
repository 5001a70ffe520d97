"""`newsdedup show`, `newsdedup check` and `newsdedup explain`: one cluster, one page, one pair."""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any

import click
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from crawler.cli import Context, common_options
from crawler.cli.ops import console, echo_json, emit, flags_text, require_index, resolve
from crawler.netguard import check_url, parse_networks
from crawler.render import (
    DIFF_LEGEND,
    MIN_PASSAGE_WORDS,
    ago,
    compare,
    diff_rows,
    diff_table,
    iso,
    score,
    when,
)
from dedup import record as rec
from dedup.article import Article
from dedup.engine import REASONS, Engine, Match, Peek
from dedup.overrides import Override, Overrides
from dedup.signature import estimated_jaccard, fingerprint
from dedup.urls import site_of, url_id
from dedup.validate import InvalidArticle

_HTML = re.compile(rb"<(?:!doctype|html|head|body|article|div|p|meta|title)\b", re.IGNORECASE)
_CHARSET = re.compile(r"charset=([\w.:-]+)", re.IGNORECASE)


def member_json(record: rec.Record, canonical_id: str | None) -> dict[str, Any]:
    is_canonical = record.id == canonical_id
    return {
        "id": record.id, "url": record.url, "title": record.title, "site": record.site, "source": record.source,
        "role": "canonical" if is_canonical else (record.kind or "canonical"),
        "kind": None if is_canonical else record.kind,
        "similarity": None if is_canonical else record.similarity,
        "containment": None if is_canonical else record.containment,
        "published": iso(record.published), "decided": iso(record.arrived), "words": record.n_tokens,
        "flags": [f for f in flags_text(record).split(",") if f], "duplicate_of": record.duplicate_of,
        "boilerplate_lines": record.boilerplate_lines,
    }


def boilerplate_note(record: rec.Record | None) -> str:
    """What `show` and `explain` say when the site's learned boilerplate was taken out of a text."""
    if record is None or not record.boilerplate_lines:
        return ""
    lines = record.boilerplate_lines
    return f"{lines} line{'s' if lines != 1 else ''} of its site's boilerplate discounted before comparing"


def override_line(entry: Override) -> str:
    undone = f" (undone by #{entry.undone_by})" if entry.undone_by else ""
    undoes = f" #{entry.undoes} ({entry.undoes_action})" if entry.undoes else ""
    reason = f": {entry.reason}" if entry.reason else ""
    return f"#{entry.id} {when(entry.at)} {entry.who} {entry.action}{undoes} {' + '.join(entry.urls)}{reason}{undone}"


# show

@click.command()
@click.argument("ref", metavar="URL|ID")
@click.option("--diff", "diff_ref", metavar="MEMBER", default=None,
              help="Show this member (URL or id) against the canonical, side by side.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@common_options
def show(ctx: Context, ref: str, diff_ref: str | None, as_json: bool) -> None:
    """One cluster: its canonical, every member with scores, why the canonical won, and overrides."""
    engine = require_index(ctx)
    record = resolve(engine, ref)
    if record.kind == "thin":
        if as_json:
            echo_json({"cluster": None, "thin": True, "article": member_json(record, None)})
        else:
            note = boilerplate_note(record)
            click.echo(f"{record.url}: too little text to compare ({record.n_tokens} words"
                       f"{'; ' + note if note else ''}); recorded, never clustered")
        return
    canonical, reason, members = engine.cluster_records(record.cluster)
    canonical_id = canonical.id if canonical else None
    overrides = Overrides(engine).about({m.id for m in members})
    if diff_ref is not None:
        _show_diff(engine, record.cluster, canonical, diff_ref, as_json)
        return
    if as_json:
        echo_json({
            "cluster": record.cluster, "canonical": member_json(canonical, canonical_id) if canonical else None,
            "reason": reason, "reason_text": REASONS.get(reason, "?"),
            "members": [member_json(m, canonical_id) for m in members],
            "overrides": [o.as_json() for o in overrides],
        })
        return
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Cluster", f"{record.cluster} ({len(members)} article{'s' if len(members) != 1 else ''})")
    if canonical:
        head.add_row("Canonical", Text(f"{canonical.title or '(no title)'}\n{canonical.id}"))
    head.add_row("Why", REASONS.get(reason, f"reason {reason}"))
    parts: list[Any] = [head]
    if canonical:
        parts.append(Text(canonical.url))
    parts.append(Text("Members (* canonical, > the article asked for)", style="bold"))
    parts.append(Text("  kind       sim  cont  published   decided   id", style="dim"))
    for m in members:
        row = member_json(m, canonical_id)
        mark = "*" if m.id == canonical_id else (">" if m.id == record.id else " ")
        flags = f" [{', '.join(row['flags'])}]" if row["flags"] else ""
        parts.append(Text(f"{mark} {row['role']:<9} {score(row['similarity']):>4} {score(row['containment']):>5}  "
                          f"{when(m.published)[:10]:<10}  {ago(m.arrived):>8}  {m.id}"))
        parts.append(Text(f"  {m.title or '(no title)'}{flags}", style="bold"))
        parts.append(Text(f"  {m.url}"))
        if m.boilerplate_lines:
            parts.append(Text(f"  {boilerplate_note(m)}", style="dim"))
    if overrides:
        parts.append(Text("Overrides:"))
        parts.extend(Text("  " + override_line(entry)) for entry in overrides)
    emit(*parts)


def text_expired_note(record: rec.Record) -> str:
    """What an operator is told when an article's text is no longer stored."""
    if record.text_base:
        return (f"the text of {record.id} ({record.url}) expired: it was stored as a difference from the text of "
                f"{record.text_base}, which the canonical stream has since trimmed ([dedup] stream_maxlen / "
                "stream_retention)")
    return (f"the text of {record.id} ({record.url}) expired: it was kept only in canonical stream entry "
            f"{record.text_ref}, which the stream has since trimmed ([dedup] stream_maxlen / stream_retention)")


def _show_diff(engine: Engine, cluster: str, canonical: rec.Record | None, member_ref: str, as_json: bool) -> None:
    member = resolve(engine, member_ref, "member")
    if member.cluster != cluster:
        raise click.ClickException(f"{member.url} is not in cluster {cluster}; "
                                   "`newsdedup explain A B` compares any two articles")
    if canonical is None:
        raise click.ClickException(f"cluster {cluster} has no stored canonical")
    expired = [r for r in (canonical, member) if r.text_expired]
    if expired:
        note = "; ".join(text_expired_note(r) for r in expired)
        if as_json:
            echo_json({"cluster": cluster, "canonical": canonical.url, "member": member.url, "rows": [],
                       "text_expired": [r.id for r in expired], "note": note})
        else:
            emit(Text(f"No diff: {note}"))
        return
    rows = diff_rows(canonical.text, member.text)
    if as_json:
        echo_json({"cluster": cluster, "canonical": canonical.url, "member": member.url,
                   "kind": member.kind, "similarity": member.similarity, "containment": member.containment,
                   "rows": [{"op": r.op, "canonical": r.text_a, "member": r.text_b} for r in rows]})
        return
    role = "the canonical itself" if member.id == canonical.id else f"{member.kind} copy, " \
        f"similarity {score(member.similarity)}, containment {score(member.containment)}"
    emit(Text(f"{member.url}: {role}"), Text(f"canonical: {canonical.url}"),
         Text("Texts as the engine compared them (syndication junk already stripped).", style="italic"),
         diff_table(rows, f"canonical {canonical.id}", f"member {member.id}"), Text(DIFF_LEGEND))


# check

ALLOW_HINT = "allow its network with --allow-network CIDR, or --source NAME for a source's allow_networks"


class _Refused(Exception):
    """The crawler's SSRF guard refuses a URL `check` was about to fetch (a redirect target)."""


def _refusal(url: str, allow_networks: Sequence[str], feed_urls: Sequence[str]) -> str | None:
    """The crawler's SSRF verdict: allowed in allow_networks, or on the host of one of the source's
    feeds or sitemaps (any port), as the crawler allows an article its listing names."""
    reason = check_url(url, feed_url=None, allow_networks=allow_networks)
    if reason is None or any(check_url(url, feed_url=feed, allow_networks=allow_networks) is None
                             for feed in feed_urls):
        return None
    return reason


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the crawler's SSRF guard allows, at most max_redirects times."""

    def __init__(self, allow_networks: Sequence[str], max_redirects: int, feed_urls: Sequence[str] = ()) -> None:
        self.allow_networks = allow_networks
        self.feed_urls = feed_urls
        self.max_redirections = max_redirects

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        reason = _refusal(newurl, self.allow_networks, self.feed_urls)
        if reason is not None:
            fp.close()
            raise _Refused(f"redirected to {newurl}: {reason}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_page(url: str, timeout: float, max_bytes: int, user_agent: str, *,
               allow_networks: Sequence[str] = (), max_redirects: int = 5,
               feed_urls: Sequence[str] = ()) -> tuple[bytes, str, str]:
    """(body, final URL, content type) of one page the SSRF guard allows; one clear line on failure.

    The guard is the crawler's (crawler.netguard.check_url), applied to the URL and to every redirect.
    It resolves the host itself and urllib resolves it again to connect: like check_url in the crawler,
    a policy check, not a barrier against DNS rebinding.
    """
    reason = _refusal(url, allow_networks, feed_urls)
    if reason is not None:
        raise click.ClickException(f"{url}: refused: {reason} ({ALLOW_HINT})")
    request = urllib.request.Request(url, headers={"User-Agent": user_agent, "Accept": "text/html,text/plain,*/*"})
    opener = urllib.request.build_opener(_GuardedRedirects(allow_networks, max_redirects, feed_urls))
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise click.ClickException(f"{url}: larger than {max_bytes} bytes; save it and check the file")
            return body, response.geturl(), response.headers.get("Content-Type", "")
    except _Refused as exc:
        raise click.ClickException(f"{url}: refused: {exc} ({ALLOW_HINT})") from None
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"{url}: cannot fetch: {exc.reason}") from None
    except TimeoutError:
        raise click.ClickException(f"{url}: no answer within {timeout:g}s") from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"{url}: cannot fetch: {exc}") from None


def read_page(target: str, page_url: str | None, ctx: Context, allow_networks: Sequence[str] = (),
              feed_urls: Sequence[str] = ()) -> tuple[bytes, str, str | None, str]:
    """(body, URL, final URL, content type) of a URL, a file, or stdin ('-')."""
    if target.startswith(("http://", "https://")):
        crawl = ctx.settings.crawl
        body, final_url, content_type = fetch_page(target, crawl.timeout, crawl.max_response_size,
                                                   crawl.user_agent or ctx.settings.service.user_agent,
                                                   allow_networks=allow_networks, max_redirects=crawl.max_redirects,
                                                   feed_urls=feed_urls)
        return body, target, final_url if final_url != target else None, content_type
    if target == "-":
        return sys.stdin.buffer.read(), page_url or "file:///dev/stdin", None, ""
    if "://" in target:
        raise click.ClickException(f"{target}: only http:// and https:// URLs can be fetched")
    try:
        with open(target, "rb") as handle:
            body = handle.read()
    except FileNotFoundError:
        raise click.ClickException(f"{target}: no such file (and not an http(s) URL)") from None
    except OSError as exc:
        raise click.ClickException(f"{target}: cannot read: {exc.strerror}") from None
    return body, page_url or "file://" + os.path.abspath(target), None, ""


def page_article(body: bytes, url: str, final_url: str | None, content_type: str, source: str) -> Article:
    """The article in a page: HTML is extracted as the crawler does, anything else is plain text."""
    charset_match = _CHARSET.search(content_type)
    charset = charset_match.group(1) if charset_match else None
    if "html" in content_type.lower() or (not content_type.startswith("text/plain") and _HTML.search(body[:4096])):
        from crawler.extract import extract_article

        article = extract_article(body, url, final_url=final_url, headers_encoding=charset, source=source)
        if article is None:
            raise click.ClickException(f"{url}: no article text could be extracted from the page")
        return article
    try:
        text = body.decode(charset or "utf-8", "replace")
    except LookupError:
        text = body.decode("utf-8", "replace")
    if not text.strip():
        raise click.ClickException(f"{url}: the page is empty")
    return Article(url=url, text=text, final_url=final_url, source=source)


def _verdict(peek: Peek, canonical_url: str) -> str:
    """The would-be decision in one sentence."""
    if peek.status == "thin":
        return "thin: too little text to compare; it would be recorded, never clustered"
    if peek.status == "new":
        return "new: no stored article is a copy of it; it would found a cluster and be its canonical"
    why = REASONS.get(peek.reason, "?")
    if peek.kind is None:
        return f"duplicate found, and this page would become the canonical of cluster {peek.cluster} ({why})"
    return (f"{peek.kind} copy (similarity {score(peek.similarity)}, containment {score(peek.containment)}) "
            f"of {canonical_url}, canonical of cluster {peek.cluster} ({why})")


def _match_json(match: Match, known: dict[str, rec.Record]) -> dict[str, Any]:
    stored = known.get(match.id)
    return {"id": match.id, "url": stored.url if stored else None, "kind": match.kind, "score": match.score,
            "jaccard": match.jaccard, "containment": match.containment, "same_site": match.same_site,
            "cluster": match.cluster, "split": match.split}


def _cidrs(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        parse_networks(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _allow_networks(ctx: Context, source: str | None,
                    flags: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The networks `check` may fetch from although internal (the flags' and the named source's), and
    the source's feeds and sitemaps, whose hosts its articles may be on (the crawler's rule)."""
    if source is None:
        return flags, ()
    configured = ctx.settings.source(source)
    if configured is None:
        names = ", ".join(s.name for s in ctx.settings.sources) or "none configured"
        raise click.ClickException(f"--source: no source {source!r} in the configuration (sources: {names})")
    # Its allow_networks were checked when the configuration was loaded.
    return (*configured.allow_networks, *flags), (*configured.feeds, *configured.sitemaps)


@click.command()
@click.argument("target", metavar="URL|FILE|-")
@click.option("--url", "page_url", default=None,
              help="The page's URL when reading a file or stdin (sets its id and site).")
@click.option("--allow-network", "allow_network", multiple=True, metavar="CIDR", callback=_cidrs,
              help="Fetch from this loopback/private network too, as a source's allow_networks does (repeatable).")
@click.option("--source", default=None, metavar="NAME",
              help="Apply this configured source's allow_networks to the URL and its redirects.")
@click.option("--limit", type=click.IntRange(min=1), default=5, show_default=True, help="Nearest candidates to list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@common_options
def check(ctx: Context, target: str, page_url: str | None, allow_network: tuple[str, ...], source: str | None,
          limit: int, as_json: bool) -> None:
    """What the engine would decide for one page, and its nearest matches, without changing anything.

    A URL is fetched under the crawler's SSRF guard: loopback, private, link-local and metadata
    addresses (the URL's and every redirect's) are refused unless allowed.
    """
    allow_networks, feed_urls = _allow_networks(ctx, source, allow_network)
    engine = require_index(ctx)
    body, url, final_url, content_type = read_page(target, page_url, ctx, allow_networks, feed_urls)
    article = page_article(body, url, final_url, content_type, source="check")
    try:
        peek = engine.peek(article, limit)
    except InvalidArticle as exc:  # e.g. --url naming port 99999
        raise click.ClickException(f"the page cannot be decided: {exc}") from None
    known = {r.id: r for r in engine.get_many(list({peek.canonical_id, *(m.id for m in peek.matches)}))}
    canonical = known.get(peek.canonical_id)
    fp = fingerprint(article.text, article.title)
    published = article.published.timestamp() if article.published else None
    page = {"url": url, "final_url": final_url, "id": peek.article_id, "title": article.title,
            "site": article.site or site_of(final_url or url), "published": iso(published), "words": fp.n_tokens,
            "canonical_link": article.canonical_link, "source_link": article.source_link}
    verdict = _verdict(peek, canonical.url if canonical else peek.canonical_id)
    matches = [_match_json(m, known) for m in peek.matches]
    if as_json:
        decision = {
            "status": peek.status, "kind": peek.kind, "cluster": peek.cluster, "canonical_id": peek.canonical_id,
            "canonical_url": canonical.url if canonical else (url if peek.canonical_id == peek.article_id else None),
            "similarity": peek.similarity, "containment": peek.containment, "reason": peek.reason,
            "reason_text": REASONS.get(peek.reason), "replaces": list(peek.replaces), "verdict": verdict,
        }
        stored = {"kind": peek.stored_kind, "cluster": peek.stored_cluster} if peek.known else None
        echo_json({"page": page, "decision": decision, "known": peek.known, "stored": stored,
                   "candidates": peek.candidates, "matches": matches})
        return
    out = console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Page", Text(f"{article.title or '(no title)'}\n{url}"))
    head.add_row("Text", f"{fp.n_tokens} words from {page['site'] or '-'}, published {when(published)}")
    for label, link in (("rel=canonical", article.canonical_link), ("Source link", article.source_link)):
        if link:
            head.add_row(label, Text(link))
    if peek.known:
        head.add_row("Stored", f"already decided: {peek.stored_kind} in cluster {peek.stored_cluster}")
    out.print(head)
    out.print(Panel(Text(verdict), title="The engine would decide", title_align="left"))
    if matches:
        table = Table("verdict", "jaccard", "cont", "same site", "url",
                      title=f"Nearest of {peek.candidates} candidates from the index", title_justify="left")
        for m in matches:
            verdict_cell = m["kind"] or Text("not a copy", style="dim")
            if m["split"]:
                verdict_cell = Text(f"{m['kind'] or 'not a copy'} (split)")
            table.add_row(verdict_cell, score(m["jaccard"]), score(m["containment"]),
                          "yes" if m["same_site"] else "", Text(m["url"] or m["id"], overflow="fold"))
        out.print(table)
    elif peek.status != "thin":
        out.print("No candidates in the index share enough of its text.")


# explain

@dataclass(frozen=True)
class Side:
    """One side of `explain`: a stored article or a file, as the engine sees its text."""

    label: str
    id: str
    clean_text: str
    signature: bytes
    n_shingles: int
    record: rec.Record | None


def _side(ctx: Context, ref: str, engine_box: list[Engine]) -> Side:
    if ref == "-" or os.path.isfile(ref):
        body, url, _, _ = read_page(ref, None, ctx)
        article = page_article(body, url, None, "", source="explain")
        fp = fingerprint(article.text, article.title)
        return Side(ref, url_id(url), fp.clean_text, fp.signature, fp.n_shingles, None)
    if not engine_box:
        engine_box.append(require_index(ctx))
    found = resolve(engine_box[0], ref)
    if found.text_expired:
        raise click.ClickException(f"cannot compare texts: {text_expired_note(found)}")
    return Side(found.url, found.id, found.text, found.signature, found.n_shingles, found)


def _opening(text: str, full: bool, limit: int = 600) -> str:
    if full or len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return f"{cut} ... ({len(text.split())} words)"


@click.command()
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--full", is_flag=True, help="Print the whole normalised texts, not their openings.")
@click.option("--passages", type=click.IntRange(min=0), default=5, show_default=True,
              help="Longest shared passages to print.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (with the whole texts).")
@common_options
def explain(ctx: Context, a: str, b: str, full: bool, passages: int, as_json: bool) -> None:
    """Compare two articles (stored URLs or ids, or files): similarity, containment, shared passages."""
    engines: list[Engine] = []
    side_a, side_b = _side(ctx, a, engines), _side(ctx, b, engines)
    estimated = estimated_jaccard(side_a.signature, side_b.signature)
    shared_estimate = estimated * (side_a.n_shingles + side_b.n_shingles) / (1 + estimated)
    smaller = max(1, min(side_a.n_shingles, side_b.n_shingles))
    exact = compare(side_a.clean_text, side_b.clean_text)
    same_cluster = None
    if side_a.record and side_b.record:
        same_cluster = side_a.record.cluster == side_b.record.cluster
    result = {
        "a": {"label": side_a.label, "id": side_a.id, "shingles": exact.shingles_a, "text": side_a.clean_text},
        "b": {"label": side_b.label, "id": side_b.id, "shingles": exact.shingles_b, "text": side_b.clean_text},
        "estimated_jaccard": round(estimated, 4),
        "estimated_containment": round(min(1.0, shared_estimate / smaller), 4),
        "jaccard": round(exact.jaccard, 4), "shared_shingles": exact.shared_shingles,
        "containment_a_in_b": round(exact.containment_a, 4), "containment_b_in_a": round(exact.containment_b, 4),
        "passages_cover_a": round(exact.covered_a, 4), "passages_cover_b": round(exact.covered_b, 4),
        "same_cluster": same_cluster,
        "boilerplate_lines_a": side_a.record.boilerplate_lines if side_a.record else 0,
        "boilerplate_lines_b": side_b.record.boilerplate_lines if side_b.record else 0,
        "passages": [{"words": p.words, "a": p.text_a, "b": p.text_b} for p in exact.passages],
    }
    if as_json:
        echo_json(result)
        return
    out = console()
    metrics = Table("", "value", title="A vs B", title_justify="left")
    metrics.add_row("A", Text(side_a.label, overflow="fold"))
    metrics.add_row("B", Text(side_b.label, overflow="fold"))
    metrics.add_row("Jaccard, estimated from signatures", score(estimated))
    metrics.add_row("Jaccard, exact (word 4-shingles)", f"{score(exact.jaccard)} ({exact.shared_shingles} shared of "
                    f"{exact.shingles_a} + {exact.shingles_b})")
    metrics.add_row("Containment of A in B", score(exact.containment_a))
    metrics.add_row("Containment of B in A", score(exact.containment_b))
    metrics.add_row("Containment, engine's estimate (smaller text)", score(result["estimated_containment"]))
    metrics.add_row("Shared passages cover", f"{exact.covered_a:.0%} of A, {exact.covered_b:.0%} of B")
    if same_cluster is not None:
        metrics.add_row("Clusters", "the same" if same_cluster else "different")
    for label, side in (("A", side_a), ("B", side_b)):
        if boilerplate_note(side.record):
            metrics.add_row(f"Site boilerplate of {label}", boilerplate_note(side.record))
    out.print(metrics)
    for label, side in (("A", side_a), ("B", side_b)):
        out.print(Panel(Text(_opening(side.clean_text, full)), title=f"{label}, normalised", title_align="left"))
    if exact.passages and passages:
        table = Table("words", "shared passage (as in A)", title="Longest shared passages", title_justify="left")
        for p in exact.passages[:passages]:
            table.add_row(str(p.words), Text(p.text_a if full or len(p.text_a) < 400 else p.text_a[:400] + " ..."))
        out.print(table)
    else:
        out.print(f"No shared passages of {MIN_PASSAGE_WORDS} words or more.")


COMMANDS = [show, check, explain]
