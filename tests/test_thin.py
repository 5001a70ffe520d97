"""dedup.thin: a dated list article reaches the stream; fronts, error and paywall pages do not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from dedup import record as rec
from dedup.article import Article
from dedup.engine import Engine
from dedup.keys import Keys
from dedup.thin import article_like_url, is_list_article

WHEN = datetime(2024, 2, 5, 3, 0, tzinfo=UTC)
WINNERS = "\n".join([
    "Album of the year: Taylor Swift, Midnights",
    "Record of the year: Miley Cyrus, Flowers",
    "Song of the year: Billie Eilish, What Was I Made For?",
    "Best new artist: Victoria Monet",
    "Best pop solo performance: Miley Cyrus, Flowers",
    "Best rap album: Killer Mike, Michael",
    "Best country album: Lainey Wilson, Bell Bottom Country",
    "Best musica urbana album: Karol G, Manana Sera Bonito",
    "Best R&B song: SZA, Snooze",
])
FRONT = "\n".join(
    f"Council votes to close the {name} library branch after a long budget fight | 2 hours ago"
    for name in ("north", "south", "east", "west", "harbour", "old town", "riverside", "airport")
)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.latimes.com/entertainment-arts/music/story/2024-02-04/grammys-2024-winners-list", True),
    ("https://news.example/articles/123456", True),
    ("https://news.example/2024/02/05/winners/", True),
    ("https://news.example/world/", False),
    ("https://news.example/tag/grammy-awards-winners", False),
    ("https://news.example/music/grammy-winners-list?page=2", False),
    ("https://news.example/", False),
])
def test_article_like_url(url: str, expected: bool) -> None:
    assert article_like_url(url) is expected


def test_a_dated_list_article_is_recognised_and_other_thin_pages_are_not() -> None:
    url = "https://news.example/music/grammys-2024-the-winners-list"
    assert is_list_article(url, "Grammys 2024: The winners list", WINNERS, WHEN)
    assert not is_list_article(url, "Grammys 2024: The winners list", WINNERS, None)
    assert not is_list_article(url, "", WINNERS, WHEN)
    assert not is_list_article("https://news.example/music/", "Music", WINNERS, WHEN)
    # A front lists headlines (long lines), even at an article-like address.
    assert not is_list_article(url, "Local news", FRONT, WHEN)
    error = "404 - Page Not Found\nSorry, the page you are looking for doesn't exist or has been moved."
    assert not is_list_article(url, "Page not found", error, WHEN)
    paywall = "Subscribe to continue reading.\nAlready a subscriber? Log in."
    assert not is_list_article(url, "Grammys 2024: The winners list", paywall, WHEN)


def test_the_list_article_reaches_the_stream_and_thin_pages_do_not(redis_client: redis.Redis,
                                                                   key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    listing = engine.add(Article(url="https://news.example/music/grammys-2024-the-winners-list",
                                 title="Grammys 2024: The winners list", text=WINNERS, published=WHEN))
    assert listing.is_canonical and listing.kind is None
    stored = engine.get(listing.article_id)
    assert stored.flags & rec.LIST_ARTICLE and not stored.flags & rec.THIN
    front = engine.add(Article(url="https://news.example/local/", title="Local news", text=FRONT, published=WHEN))
    error = engine.add(Article(url="https://news.example/music/some-gone-story-here", title="Page not found",
                               text="404 - Page Not Found\nSorry, the page you are looking for doesn't exist.",
                               published=WHEN))
    assert front.kind == "thin" and error.kind == "thin"
    events = engine.client.xrange(engine.keys.canonical_stream)
    assert [fields[b"url"].decode() for _, fields in events] == [
        "https://news.example/music/grammys-2024-the-winners-list"]
    # A copy of the list on another site joins it rather than reaching consumers twice.
    copy = engine.add(Article(url="https://aggregator.example/grammys-winners-full-list-2024",
                              title="All the Grammy winners", text=WINNERS, published=WHEN))
    assert copy.cluster == listing.cluster and not copy.is_canonical
