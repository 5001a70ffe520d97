"""Real-world check on L3S-GN1: 621 news pages from 408 sites (2008), a few real republished copies.

    python benchmarks/l3s_check.py [--redis-url redis://127.0.0.1:6379/0]

Ingests every page through `newsdedup ingest` under a fresh key prefix, exports, and prints each
cluster with more than one member (URLs and titles) for a person to check, then compares them with
the copies found by hand (EXPECTED_CLUSTERS): found / partly found / missing, and extra merges.
The pages are read from ../shared/data (research-only licence): never copy them into the project.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import delete_prefix, run_cli

# NEWSDEDUP_SHARED_DATA names ../shared/data for a checkout elsewhere (a worktree).
L3S_DIR = Path(os.environ.get("NEWSDEDUP_SHARED_DATA") or ROOT.parent / "shared" / "data") / "l3s-gn1"

# Found by hand: word 5-shingle overlap between extracted texts, then reading the pages.
EXPECTED_CLUSTERS: dict[str, tuple[str, ...]] = {
    "Logitech Harmony One press release (Business Wire) on three sites": (
        "http://www.reuters.com/article/pressRelease/idUS10215+06-Jan-2008+BW20080106",
        "http://www.tmcnet.com/usubmit/-one-watch-logitech-harmony-one-introduces-significant-evolution-/2008/01/05/3196366.htm",
        "http://www.finanznachrichten.de/nachrichten-2008-01/artikel-9806775.asp",
    ),
    "Thai market bombing on sister sites (localnewsleader)": (
        "http://www.localnewsleader.com/elytimes/stories3/index.php?action=fullnews&id=236094",
        "http://www.localnewsleader.com/brocktown/stories3/index.php?action=fullnews&id=236068",
    ),
    "Kemble quits as Kiwi coach on sister sites (yourguide.com.au)": (
        "http://rousehill.yourguide.com.au/news/world/sport/undersiege-kemble-quits-as-kiwi-coach/1165475.html",
        "http://canberra.yourguide.com.au/news/world/sport/undersiege-kemble-quits-as-kiwi-coach/1165475.html",
    ),
    "More Britons in blood scandal on sister sites (icnetwork)": (
        "http://icscotland.icnetwork.co.uk/news/uk/today/tm_headline=more-britons-in-blood-scandal&method=full&objectid=20335673&siteid=50141-name_page.html",
        "http://icstaines.icnetwork.co.uk/news/tm_headline=more-britons-in-blood-scandal&method=full&objectid=20335659&siteid=106484-name_page.html",
    ),
    "Jewell close to striker move on sister sites (icnetwork)": (
        "http://icscotland.icnetwork.co.uk/sport/nsport/tm_headline=jewell-close-to-striker-move&method=full&objectid=20303384&siteid=50141-name_page.html",
        "http://icbirmingham.icnetwork.co.uk/0200sport/0100news/tm_headline=jewell-close-to-striker-move&method=full&objectid=20303370&siteid=50002-name_page.html",
    ),
    "Tom Cruise biographer (CP/AP wire) on two sites": (
        "http://canadianpress.google.com/article/ALeqM5gi2ILpMTEyM_2o4rOKSi9vj1lnxQ",
        "http://www.komotv.com/news/entertainment/13896072.html",
    ),
    "Jim McGovern at the Sony Open (AP golf wire), full and cut": (
        "http://www.dailymail.com/APHeadline/200801100373",
        "http://www.mlive.com/sportsflash/index.ssf?/base/sports-3/119996364228650.xml&storylist=golf",
    ),
    "Pepsi / Amazon MP3 / Timberlake Super Bowl ad (AP wire)": (
        "http://abcnews.go.com/Technology/wireStory?id=4133814",
        "http://www.wjla.com/news/stories/0108/488043.html",
    ),
    "Bulls pursue talks with Eddie Jones (South African wire)": (
        "http://www.news24.com/News24/Sport/Rugby/0,,2-9-838_2244196,00.html",
        "http://www.thepost.co.za/?fSectionId=&fArticleId=nw20071228110755282C855390",
    ),
    "T.J. Ford cleared to resume workouts (AP wire), short and long": (
        "http://sportsillustrated.cnn.com/2008/basketball/nba/wires/01/09/2030.ap.bkn.raptors.ford.0304/",
        "http://cbs11tv.com/localsportswire/22.0.html?type=national&serviceLevel=s&category=s&filename=BKN--Raptors-Ford.xml",
    ),
}
# Borderline: partly shared agency text or shared quotes. Reported, not scored.
BORDERLINE_PAIRS: dict[str, tuple[str, str]] = {
    "Magellan CES press release: infobolsa has only its second half, page '(2º)' (not a lead)": (
        "http://www.streetinsider.com/Press+Releases/Magellan(R)+Comes+Out+in+Force+at+CES+2008/3246143.html",
        "http://www.infobolsa.es/v2002/Noticias/noticias_titulares2.asp?Fuente=IBNW&FechaNot=20080107&Clasif=C&Numnot=106463",
    ),
    "blog post quoting two AP paragraphs on T.J. Ford (99 words)": (
        "http://www.protrade.com/content/DisplayArticle.html?sp=Sf24e2345-bf2e-11dc-ba00-574828460f5a",
        "http://cbs11tv.com/localsportswire/22.0.html?type=national&serviceLevel=s&category=s&filename=BKN--Raptors-Ford.xml",
    ),
    "Sri Lanka clashes 'By Agencies' vs AFP (half shared)": (
        "http://mwcnews.net/content/view/19056/0/",
        "http://afp.google.com/article/ALeqM5jhgblLPcS2A8kylRFNZdB5-6ad2A",
    ),
    "Georgia opposition: PerthNow vs Thomson Financial (shared agency passages)": (
        "http://www.news.com.au/perthnow/story/0,21598,23026523-5005361,00.html",
        "http://www.hemscott.com/news/latest-news/item.do?newsId=57266946934941",
    ),
    "Mischa Barton: Irish Independent rewrite with Reuters paragraphs": (
        "http://www.independent.ie/entertainment/news-gossip/actress-mischarsquos-unwanted-photo-op-1254384.html",
        "http://www.reuters.com/article/entertainmentNews/idUSN2741021120071228",
    ),
    "Berbatov: two outlets' own stories sharing Ramos quotes (should stay apart)": (
        "http://www.gazettelive.co.uk/north-east-sport/latest-sport-news/2007/12/30/ramos-makes-berbatov-plea-84229-20297396/",
        "http://www.worldsoccer.com/news/ramos_refuses_to_rule_out_berbatov_sale_news_171352.html",
    ),
}

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
# Browsers read these labels as windows-1252 (WHATWG encoding standard); so do we.
_AS_CP1252 = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii"}


def decode_page(raw: bytes) -> str:
    """Page bytes to text: the declared charset, else UTF-8, else windows-1252."""
    match = _CHARSET.search(raw[:8192])
    candidates: list[str] = []
    if match:
        declared = match.group(1).decode("ascii", "ignore").lower()
        candidates.append("cp1252" if declared in _AS_CP1252 else declared)
    candidates += ["utf-8", "cp1252"]
    for encoding in candidates:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode(candidates[0] if candidates[0] != "utf-8" else "cp1252", "replace")


def page_title(page: str) -> str:
    """The <title> of a page, on one line."""
    match = re.search(r"<title[^>]*>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(match.group(1))).strip()[:120] if match else ""


def load_pages(directory: Path = L3S_DIR) -> dict[str, str]:
    """url -> decoded page, for every page in url-mapping.txt."""
    pages = {}
    for line in (directory / "url-mapping.txt").read_text("utf-8").splitlines():
        if not line.strip():
            continue
        urn, url = line.split("\t", 1)
        uuid_part = urn.strip().strip("<>").rsplit(":", 1)[-1]
        path = directory / "original" / f"{uuid_part}.html"
        if path.exists():
            pages[url.strip()] = decode_page(path.read_bytes())
    return pages


def compare(clusters: list[list[str]]) -> dict[str, Any]:
    """Expected groups found, partly found or missing; merges that match nothing expected."""
    where = {url: i for i, members in enumerate(clusters) for url in members}
    found, partial, missing = [], [], []
    for name, urls in EXPECTED_CLUSTERS.items():
        ids = {where.get(u) for u in urls}
        if len(ids) == 1 and None not in ids:
            found.append(name)
        elif any(
            len(clusters[i]) > 1 and sum(u in clusters[i] for u in urls) > 1
            for i in ids
            if i is not None
        ):
            partial.append(name)
        else:
            missing.append(name)
    expected_urls = {u for urls in EXPECTED_CLUSTERS.values() for u in urls}
    borderline = {u for pair in BORDERLINE_PAIRS.values() for u in pair}
    extra = [
        members
        for members in clusters
        if len(members) > 1 and any(u not in expected_urls and u not in borderline for u in members)
    ]
    mixed = [
        members
        for members in clusters
        if len({name for name, urls in EXPECTED_CLUSTERS.items() for u in members if u in urls}) > 1
    ]
    borderline_merged = {
        name: where.get(a) is not None and where.get(a) == where.get(b)
        for name, (a, b) in BORDERLINE_PAIRS.items()
    }
    return {
        "found": found,
        "partial": partial,
        "missing": missing,
        "extra": extra,
        "mixed": mixed,
        "borderline_merged": borderline_merged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--key-prefix", default=None, help="default: a fresh unique prefix")
    parser.add_argument("--keep", action="store_true", help="keep the Redis keys afterwards")
    args = parser.parse_args(argv)

    pages = load_pages()
    prefix = args.key_prefix or f"newsdedup-l3s-{uuid.uuid4().hex[:10]}:"
    with tempfile.TemporaryDirectory(prefix="newsdedup-l3s-") as tmp:
        records = Path(tmp) / "l3s.jsonl"
        with records.open("w", encoding="utf-8") as out:
            for url, page in pages.items():
                out.write(json.dumps({"url": url, "html": page}) + "\n")
        try:
            run = run_cli(records, args.redis_url, prefix)
        finally:
            if not args.keep:
                delete_prefix(args.redis_url, prefix)
    rows, seconds = run.rows, run.ingest_seconds
    by_cluster: dict[str, list[str]] = defaultdict(list)
    row_by_url = {str(r["url"]): r for r in rows}
    for row in rows:
        by_cluster[str(row["cluster"])].append(str(row["url"]))
    clusters = sorted(by_cluster.values(), key=len, reverse=True)
    print(
        f"ingested {len(pages)} pages in {seconds:.1f}s; exported {len(rows)}; "
        f"{sum(len(c) > 1 for c in clusters)} clusters with more than one member"
    )
    print("ingest log:\n  " + "\n  ".join(run.ingest_log.strip().splitlines()[-30:]) + "\n")
    for members in clusters:
        if len(members) < 2:
            break
        print(f"cluster of {len(members)}:")
        for url in members:
            row = row_by_url[url]
            mark = "*" if row.get("is_canonical") else " "
            print(
                f"  {mark} {page_title(pages.get(url, ''))[:70]!r}  kind={row.get('kind')} "
                f"sim={row.get('similarity')}\n      {url}"
            )
    result = compare(clusters)
    print("\nexpected copies:")
    for status in ("found", "partial", "missing"):
        for name in result[status]:
            print(f"  {status.upper():8} {name}")
    print("\nborderline pairs (not scored):")
    for name, merged in result["borderline_merged"].items():
        print(f"  {'merged' if merged else 'apart ':7} {name}")
    print(f"\nextra merges (nothing expected): {len(result['extra'])}")
    for members in result["extra"]:
        print("  " + " + ".join(f"{page_title(pages.get(u, ''))[:40]!r}" for u in members))
    summary = {
        "pages": len(pages),
        "exported": len(rows),
        "expected": len(EXPECTED_CLUSTERS),
        "found": len(result["found"]),
        "partial": len(result["partial"]),
        "missing": len(result["missing"]),
        "extra": len(result["extra"]),
        "mixed": len(result["mixed"]),
    }
    print(json.dumps(summary))
    return 0 if not result["missing"] and not result["extra"] and not result["mixed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
