"""The page that started the project: a content-farm repost of a Straits Times story."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
import redis

from crawler.extract import extract_article
from dedup.engine import Engine
from dedup.keys import Keys

SEED = Path(__file__).parent / "data" / "seed" / "repost-read-full-article.txt"
ORIGINAL_URL = (
    "https://www.straitstimes.com/world/united-states/"
    "us-says-aiming-for-second-trump-kim-summit-early-next-year-as-kim-lashes-out-at"
)
REPOST_URL = "https://dailynewsfeed.example/2024/04/14/us-says-aiming-for-second-trump-kim-summit/"
TITLE = "US says aiming for second Trump-Kim summit early next year as Kim lashes out at sanctions"


def _body_paragraphs() -> list[str]:
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    start = lines.index(TITLE) + 1
    end = lines.index("Related Stories:")
    return lines[start:end]


def original_page() -> str:
    """The story as the Straits Times would have published it, dated 2018-10-31."""
    paras = "\n".join(f"<p>{html.escape(p)}</p>" for p in _body_paragraphs())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(TITLE)} | The Straits Times</title>
<link rel="canonical" href="{ORIGINAL_URL}">
<meta property="og:url" content="{ORIGINAL_URL}">
<meta property="og:title" content="{html.escape(TITLE)}">
<meta property="article:published_time" content="2018-10-31T21:35:00+08:00">
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/asia">Asia</a> <a href="/singapore">Singapore</a></nav>
<main><article><h1>{html.escape(TITLE)}</h1>
<div class="byline">Published Oct 31, 2018, 9:35 pm SGT</div>
<div class="article-body">{paras}</div></article></main>
<footer><p>Copyright 2018 The Straits Times. SPH Digital News.</p><a href="/terms">Terms</a></footer>
</body></html>"""


def repost_page() -> str:
    """The seed text as the content farm served it: re-dated, wrapped, linking back."""
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    body = "\n".join(
        f'<p><a href="{ORIGINAL_URL}">{html.escape(line)}</a></p>' if line == "Source: Read Full Article"
        else f"<p>{html.escape(line)}</p>"
        for line in lines
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(TITLE)} - Daily News Feed</title>
</head><body><div class="header"><a href="/">Daily News Feed</a></div>
<div class="post"><div class="entry-content">{body}</div></div>
<aside><h3>Recent Posts</h3><ul><li><a href="/p/1">Stocks rally on earnings</a></li>
<li><a href="/p/2">Weather turns cold</a></li></ul></aside></body></html>"""


@pytest.mark.parametrize("order", ["repost first", "original first"])
def test_seed_repost_joins_its_original_which_is_canonical(
    redis_client: redis.Redis, key_prefix: str, order: str
) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    original = extract_article(original_page().encode(), ORIGINAL_URL)
    repost = extract_article(repost_page().encode(), REPOST_URL)
    assert original is not None and repost is not None
    assert original.published is not None and original.published.year == 2018
    pages = [repost, original] if order == "repost first" else [original, repost]
    decisions = {d.url: d for d in (engine.add(page) for page in pages)}
    assert decisions[REPOST_URL].cluster == decisions[ORIGINAL_URL].cluster
    canonical_id, _, members = engine.cluster(decisions[REPOST_URL].cluster)
    assert canonical_id == decisions[ORIGINAL_URL].article_id
    assert len(members) == 2
    stored = engine.get_by_url(REPOST_URL)
    assert stored is not None and stored.kind in ("near", "exact")
    last_event = redis_client.xrevrange(engine.keys.canonical_stream, count=1)[0][1]
    assert last_event[b"url"].decode() == ORIGINAL_URL
