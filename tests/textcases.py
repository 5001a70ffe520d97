"""Real article text (MIT, tests/data/texts) republished in the ways the engine must recognise."""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path

TEXTS = Path(__file__).parent / "data" / "texts" / "articles.json"


@lru_cache(maxsize=1)
def articles() -> list[tuple[str, str]]:
    """(url, body) of the real articles."""
    data = json.loads(TEXTS.read_text(encoding="utf-8"))
    return [(entry["url"], entry["articleBody"]) for entry in data.values()]


def paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.split("\n") if p.strip()]


def wrapped_copy(body: str) -> str:
    """A content-farm copy: scrape date on top, related links and a source line below."""
    return (
        "Sunday, 14 Apr 2024\n\n" + body
        + "\n\nRelated Stories:\n\nMore world news and analyses here\n\nSource: Read Full Article\n\nRelated Posts"
    )


def excerpt(body: str, share: float = 0.35) -> str:
    """The first part of the article, ending in a link back."""
    paras = paragraphs(body)
    words = sum(len(p.split()) for p in paras)
    kept: list[str] = []
    for p in paras:
        kept.append(p)
        if sum(len(k.split()) for k in kept) >= share * words:
            break
    return "\n".join(kept) + "\nContinue reading at the original site... Read Full Article"


def edited(body: str, seed: int = 1) -> str:
    """Re-typeset and lightly edited: curly quotes folded, a paragraph dropped, a few words changed,
    an ADVERTISEMENT and an "Also read" line inserted."""
    rng = random.Random(seed)
    paras = paragraphs(body)
    if len(paras) > 4:
        paras.pop(rng.randrange(1, len(paras)))
    out = []
    for index, para in enumerate(paras):
        words = para.split()
        if len(words) > 12 and rng.random() < 0.4:
            words[rng.randrange(len(words))] = "reportedly"
        out.append(" ".join(words).replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'"))
        if index == 1:
            out.append("ADVERTISEMENT")
        if index == 2:
            out.append("Also read: Ten things you missed this week")
    return "\n\n".join(out).upper() if seed % 2 else "\n\n".join(out)


def quoting(body: str, other: str) -> str:
    """Another article of its own that quotes one paragraph of `body`."""
    quoted = max(paragraphs(body), key=len)
    own = paragraphs(other)
    return "\n".join(own[:3] + [f'As one report put it: "{quoted}"'] + own[3:])
