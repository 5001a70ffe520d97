"""dedup.thin: a dated list article reaches the stream; fronts, error and paywall pages do not; a thin page
that repeats an article on another site is decided as its copy (dedup.decider, policy.verify_thin)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from crawler.cli.ops import flags_text
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


# Thin pages compared with articles (issue 11): a list article's copies on pages that are thin by
# their own look (an undated aggregator page at a WordPress ?p= address) are its copies all the same.

STANDINGS = "\n".join(
    f"{pos} {name} {points} {wins} 0 {pos % 7} {pos % 11}"
    for pos, (name, points, wins) in enumerate([
        ("Kyle Busch", 5040, 5), ("Martin Truex Jr.", 5035, 7), ("Kevin Harvick", 5033, 4),
        ("Denny Hamlin", 5027, 6), ("Joey Logano", 2380, 2), ("Ryan Blaney", 2339, 1),
        ("Kyle Larson", 2339, 1), ("Brad Keselowski", 2318, 3), ("Clint Bowyer", 2290, 0),
        ("Chase Elliott", 2275, 3), ("William Byron", 2274, 0), ("Alex Bowman", 2257, 1),
    ], start=1)
)
LIST_URL = "https://racing.example/2019/11/18/cup-series-final-standings/"
LIST_TITLE = "Cup Series: the final standings"


def _list_original(published: datetime | None = WHEN) -> Article:
    return Article(url=LIST_URL, title=LIST_TITLE, text=STANDINGS, published=published)


def _undated_copy(host: str) -> Article:
    """The list on an aggregator: a ?p= address and no date, so not recognisably a list article."""
    return Article(url=f"https://{host}/?p=905629", title=LIST_TITLE, text=STANDINGS)


def _band_values(client: redis.Redis, keys: Keys) -> list[bytes]:
    pattern = keys.band_shard(0)[: -len("0")] + "*"
    values: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        values.extend(client.hgetall(key).values())
    return values


@pytest.mark.parametrize("original_first", [True, False])
def test_a_thin_copy_of_a_list_article_joins_it_in_either_order(redis_client: redis.Redis, key_prefix: str,
                                                                original_first: bool) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    copy = _undated_copy("aggregator.example")
    first, second = (_list_original(), copy) if original_first else (copy, _list_original())
    decided_first = engine.add(first)
    decided_second = engine.add(second)
    assert decided_second.cluster == decided_first.cluster
    original = engine.get(_list_original().id)
    stored_copy = engine.get(copy.id)
    assert original is not None and stored_copy is not None
    assert stored_copy.kind == "exact" and not stored_copy.flags & rec.THIN and stored_copy.flags & rec.THIN_COPY
    assert "thin-copy" in flags_text(stored_copy).split(",")  # what `show` lists among its flags
    canonical_id, _, members = engine.cluster(decided_second.cluster)
    assert canonical_id == original.id and sorted(members) == sorted([original.id, stored_copy.id])
    if not original_first:
        assert decided_second.adopted == (stored_copy.id,)
    # The story reached consumers once, as the original; the thin page was never queued.
    events = engine.client.xrange(engine.keys.canonical_stream)
    assert [(f[b"event"], f[b"url"].decode()) for _, f in events] == [(b"new", LIST_URL)]
    stats = engine.stats()
    assert (stats.get("thin", 0), stats["clusters"], stats["canonicals"], stats["dup_exact"]) == (0, 1, 1, 1)


def test_a_thin_copy_arriving_first_is_queued_when_it_is_the_canonical(redis_client: redis.Redis,
                                                                      key_prefix: str) -> None:
    # The original is the thin page here (its address says nothing); its copy is a list article.
    engine = Engine(redis_client, Keys(key_prefix))
    thin_original = Article(url="https://racing.example/standings", title=LIST_TITLE, text=STANDINGS,
                            published=WHEN)
    assert engine.add(thin_original).kind == "thin"
    copy = Article(url="https://aggregator.example/2024/02/06/cup-series-final-standings-list/",
                   title=LIST_TITLE, text=STANDINGS, published=datetime(2024, 2, 6, 9, 0, tzinfo=UTC))
    decided = engine.add(copy)
    assert decided.kind == "exact" and decided.canonical_id == thin_original.id
    events = engine.client.xrange(engine.keys.canonical_stream)
    assert [(f[b"event"], f[b"url"].decode()) for _, f in events] == [(b"new", thin_original.url)]


def test_thin_pages_are_never_merged_with_each_other(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    first = engine.add(_undated_copy("aggregator.example"))
    second = engine.add(_undated_copy("other-aggregator.example"))
    assert first.kind == second.kind == "thin" and first.cluster != second.cluster


def test_a_thin_page_is_not_merged_with_a_near_copy_on_its_own_site(redis_client: redis.Redis,
                                                                    key_prefix: str) -> None:
    # A site's pages repeat its own lines: only the same text would make them one article.
    engine = Engine(redis_client, Keys(key_prefix))
    thin = engine.add(_undated_copy("aggregator.example"))
    same_site = Article(url="https://aggregator.example/2024/02/05/cup-series-final-standings/",
                        title=LIST_TITLE, text="Pos. Driver Points Wins Poles Top 5 Top 10\n" + STANDINGS,
                        published=WHEN)
    decided = engine.add(same_site)
    assert decided.is_canonical and decided.adopted == ()
    assert engine.get(thin.article_id).kind == "thin"


def test_a_thin_page_sharing_a_few_lines_with_an_article_stays_thin(redis_client: redis.Redis,
                                                                    key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    listing = engine.add(Article(url="https://news.example/music/grammys-2024-the-winners-list",
                                 title="Grammys 2024: The winners list", text=WINNERS, published=WHEN))
    # Another site's undated page: three of the winners among lines of its own.
    mixed = "\n".join([*WINNERS.split("\n")[:3], *(f"Chart position {n}: a song by an artist from town {n}"
                                                    for n in range(6))])
    page = engine.add(Article(url="https://charts.example/?p=77123", title="This week in music", text=mixed))
    assert page.kind == "thin" and page.cluster != listing.cluster


def test_forgetting_a_thin_page_takes_it_out_of_the_index(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = Engine(redis_client, Keys(key_prefix))
    copy = engine.add(_undated_copy("aggregator.example"))
    assert copy.kind == "thin"
    raw_id = bytes.fromhex(copy.article_id)
    assert any(raw_id in value for value in _band_values(redis_client, engine.keys))
    assert engine.forget([copy.article_id]) == 1
    assert not any(raw_id in value for value in _band_values(redis_client, engine.keys))
    assert engine.stats().get("thin", 0) == 0


def test_a_thin_page_joins_the_same_text_on_its_own_site(redis_client: redis.Redis, key_prefix: str) -> None:
    # The content-hash slot is read first and holds only the site's own list article: the same text
    # is the same article on any site.
    engine = Engine(redis_client, Keys(key_prefix))
    listing = engine.add(Article(url="https://aggregator.example/2024/02/05/cup-series-final-standings/",
                                 title=LIST_TITLE, text=STANDINGS, published=WHEN))
    copy = engine.add(_undated_copy("aggregator.example"))
    assert copy.kind == "exact" and copy.cluster == listing.cluster


def test_a_thin_page_repeating_a_thin_page_found_to_repeat_an_article_joins_too(redis_client: redis.Redis,
                                                                               key_prefix: str) -> None:
    # Three sites carry the standings, each page with lines of its own: the list article (its own 16
    # partner links), an undated page with the bare list, an undated page with 16 sponsored clips.
    # The bare list lies wholly inside both; the other two share too little to be copies directly.
    engine = Engine(redis_client, Keys(key_prefix))
    partner = "\n".join(f"Partner link {k} for fans up north" for k in range(16))
    clips = "\n".join(f"Sponsored clip {k} on tyres and fuel" for k in range(16))
    padded = engine.add(Article(url="https://clips.example/?p=31337", title=LIST_TITLE,
                                text=STANDINGS + "\n" + clips))
    listing = engine.add(Article(url=LIST_URL, title=LIST_TITLE, text=STANDINGS + "\n" + partner, published=WHEN))
    assert padded.kind == "thin" and listing.is_canonical and listing.adopted == ()
    # The bare list repeats the article, so it is one; the padded page repeats it in turn.
    bare = engine.add(_undated_copy("aggregator.example"))
    assert bare.cluster == listing.cluster and bare.kind is not None
    assert bare.adopted == (padded.article_id,)
    stored = engine.get(padded.article_id)
    assert stored is not None and stored.kind != "thin" and stored.cluster == listing.cluster
    assert engine.stats().get("thin", 0) == 0
