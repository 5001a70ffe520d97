"""dedup.boilerplate: a site's recurring lines are learned in Redis, bounded, and discounted."""

from __future__ import annotations

import hashlib
import json
import random
import re

import redis
from click.testing import CliRunner

from crawler.cli import main
from dedup import record as rec
from dedup.article import Article
from dedup.boilerplate import (
    CAPACITY,
    PAGES_FIELD,
    BoilerplateLearner,
    countable_lines,
    discount,
    is_boilerplate,
    line_hash,
)
from dedup.engine import Engine, EngineConfig
from dedup.keys import Keys
from dedup.normalize import fold
from tests.conftest import DATA_DIR

ARTICLES = json.loads((DATA_DIR / "texts" / "articles.json").read_text("utf-8"))
PARAGRAPHS = [p.strip() for entry in ARTICLES.values() for p in entry["articleBody"].split("\n") if len(p.split()) >= 8]
# Never seen by the code: learned only because it recurs.
APPEAL = ("This story is part of our free daily briefing, and it is free because readers like you "
          "support it: please consider becoming a member today.")


def _page(rng: random.Random, with_appeal: bool = True) -> str:
    lines = rng.sample(PARAGRAPHS, 2)
    if with_appeal:
        lines.insert(1, APPEAL)
    return "\n".join(lines)


def test_line_hash_ignores_typography_and_case() -> None:
    assert line_hash("He said \u201cno\u201d \u2014 twice.") == line_hash('he said "No" - twice')
    assert line_hash("one two three") != line_hash("one two four")


def test_line_hash_keeps_its_definition_on_ascii_and_other_lines() -> None:
    # The counts stored in Redis are keyed by these hashes: the ASCII shortcut must hash exactly the
    # words the definition (runs of [^\W_], blanks between) gives, or a site's counts would start over.
    def defined(line: str) -> bytes:
        words = re.sub(r"[\W_]+", " ", fold(line).casefold()).strip()
        return hashlib.blake2b(words.encode("utf-8", "replace"), digest_size=8).digest()

    rng = random.Random(5)
    alphabet = [chr(code) for code in range(128)]
    alphabet += list("\u00e9\u00df\u0130\u2014\u201c\u00a0\u0416\u4e2d\ud800")
    lines = [*PARAGRAPHS[:200], "snake_case_words and__under_scores", "\tTabs,\x0bvertical\x1f  and\x7fDEL!",
             "Stra\u00dfe \u0130stanbul \u00c9T\u00c9 \u2014 \u201cquoted\u201d",
             "\u5317\u4eac\u65b0\u95fb \u30cb\u30e5\u30fc\u30b9"]
    lines += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    for line in lines:
        assert line_hash(line) == defined(line), repr(line)


def test_countable_lines_skip_short_lines_and_repeats() -> None:
    text = "MOSCOW, February 7. /TASS/.\n" + APPEAL + "\n" + APPEAL
    assert countable_lines(text) == [line_hash(APPEAL)]


def test_discount_takes_out_only_the_boilerplate_lines() -> None:
    text = "A headline of the item\n" + APPEAL + "\nThe only sentence of news in this short item today."
    result = discount(text, frozenset({line_hash(APPEAL)}))
    assert APPEAL not in result.text
    assert result.lines == 1
    assert result.words == len(APPEAL.split())
    assert "only sentence of news" in result.text
    assert discount(text, frozenset()).text == text


def test_is_boilerplate_needs_pages_and_share() -> None:
    assert is_boilerplate(4, 10)
    assert not is_boilerplate(3, 3)
    assert not is_boilerplate(5, 1000)


def test_a_sites_repeated_paragraph_is_learned_and_other_sites_are_not_touched(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    learner = BoilerplateLearner(redis_client, Keys(key_prefix), retention=3600)
    rng = random.Random(1)
    found = [learner.observe([("tass.com", _page(rng))])[0] for _ in range(6)]
    # The first pages cannot know it yet; from the MIN_PAGES-th on it is boilerplate.
    assert [line_hash(APPEAL) in lines for lines in found] == [False, False, False, True, True, True]
    assert all(len(lines) == 1 for lines in found[3:])
    assert learner.observe([("other.example", _page(rng))]) == [frozenset()]
    assert learner.known("tass.com", "x\n" + APPEAL) == frozenset({line_hash(APPEAL)})
    assert learner.known("other.example", APPEAL) == frozenset()
    assert 0 < redis_client.ttl(Keys(key_prefix).boilerplate("tass.com")) <= 3600


def test_one_batch_counts_its_pages_in_order(redis_client: redis.Redis, key_prefix: str) -> None:
    learner = BoilerplateLearner(redis_client, Keys(key_prefix), retention=3600)
    rng = random.Random(2)
    found = learner.observe([("site.example", _page(rng)) for _ in range(5)] + [("site.example", "")])
    assert [bool(lines) for lines in found] == [False, False, False, True, True, False]


def test_a_batch_of_two_sites_stores_each_line_count_and_page_count(redis_client: redis.Redis,
                                                                   key_prefix: str) -> None:
    keys = Keys(key_prefix)
    learner = BoilerplateLearner(redis_client, keys, retention=3600)
    rng = random.Random(6)
    pages = [(site, _page(rng)) for site in ("a.example", "b.example", "a.example", "a.example", "b.example")]
    pages.insert(2, ("a.example", "too short"))  # no countable line: not a page of the count
    learner.observe(pages)
    for site in ("a.example", "b.example"):
        expected: dict[bytes, int] = {}
        for page_site, text in pages:
            if page_site == site and countable_lines(text):
                expected[PAGES_FIELD] = expected.get(PAGES_FIELD, 0) + 1
                for line in countable_lines(text):
                    expected[line] = expected.get(line, 0) + 1
        stored = {field: int(count) for field, count in redis_client.hgetall(keys.boilerplate(site)).items()}
        assert stored == expected
        assert 0 < redis_client.ttl(keys.boilerplate(site)) <= 3600


def test_a_paragraph_on_few_of_many_pages_is_not_boilerplate(redis_client: redis.Redis, key_prefix: str) -> None:
    learner = BoilerplateLearner(redis_client, Keys(key_prefix), retention=3600)
    rng = random.Random(3)
    pages = [("big.example", _page(rng, with_appeal=False)) for _ in range(60)]
    # A background paragraph repeated in a running story: 5 of 65 pages.
    pages += [("big.example", _page(rng)) for _ in range(5)]
    found = learner.observe(pages)
    assert not any(line_hash(APPEAL) in lines for lines in found)


def test_memory_stays_bounded_and_recurring_lines_survive(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    learner = BoilerplateLearner(redis_client, keys, retention=3600, capacity=40)
    rng = random.Random(4)
    found = []
    for _ in range(30):
        found.extend(learner.observe([("small.example", _page(rng)) for _ in range(4)]))
    assert redis_client.hlen(keys.boilerplate("small.example")) <= 40 + 4 * 3 + 1
    assert all(line_hash(APPEAL) in lines for lines in found[-20:])
    counts = redis_client.hmget(keys.boilerplate("small.example"), [PAGES_FIELD, line_hash(APPEAL)])
    # Halving keeps the share: the appeal is on every page.
    assert int(counts[1]) == int(counts[0])


LONG_APPEAL = (
    "This story is part of our free daily briefing. Independent journalism costs money, and we do "
    "not put it behind a paywall because we believe everyone deserves the facts. If you value what "
    "you read here, please consider becoming a member: it takes a minute, and every contribution, "
    "big or small, keeps our reporters in the field. Members get our weekend long read, invitations "
    "to our events and the newsletter that our editors write every evening about the stories behind "
    "the headlines, and they help us stay independent of owners and advertisers alike."
)


def _engine(redis_client: redis.Redis, key_prefix: str, capacity: int) -> Engine:
    return Engine(redis_client, Keys(key_prefix), EngineConfig(boilerplate_capacity=capacity))


def _site_pages() -> tuple[list[Article], list[Article]]:
    """Eight real articles of one site with its appeal inside, then four short wire items."""
    bodies = [[p.strip() for p in entry["articleBody"].split("\n") if p.strip()] for entry in ARTICLES.values()]
    articles_ = [
        Article(url=f"https://tass.example/news/{n}", title=f"Article {n}",
                text="\n".join(body[:3] + [LONG_APPEAL] + body[3:]))
        for n, body in enumerate(bodies[:8])
    ]
    # As the site's feed gives them: a headline, a wire dateline, the appeal, nothing else.
    items = [
        Article(url=f"https://tass.example/world/{n}",
                text=f"{headline}\nMOSCOW, February {n + 7}. /TASS/.\n{LONG_APPEAL}")
        for n, headline in enumerate([
            "Kremlin comments on the talks in Geneva", "Lavrov to visit Ankara next week",
            "Ruble firms against the dollar in morning trade", "Flights resume at Sochi airport after snowfall",
        ])
    ]
    return articles_, items


def test_short_items_sharing_only_the_site_appeal_are_not_merged(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = _engine(redis_client, key_prefix, CAPACITY)
    site_articles, items = _site_pages()
    for article in site_articles:
        engine.add(article)
    decisions = [engine.add(item) for item in items]
    assert len({d.cluster for d in decisions}) == len(items)
    for item in items:
        stored = engine.get_by_url(item.url)
        assert stored.flags & rec.BOILERPLATE and stored.boilerplate_lines == 1
        assert "please consider becoming a member" not in stored.text
        assert stored.kind == "thin"


def test_without_learning_the_same_items_merge(redis_client: redis.Redis, key_prefix: str) -> None:
    """The case the learning exists for (the test above would pass vacuously without it)."""
    engine = _engine(redis_client, key_prefix, 0)
    site_articles, items = _site_pages()
    for article in site_articles:
        engine.add(article)
    decisions = [engine.add(item) for item in items]
    assert len({d.cluster for d in decisions}) < len(items)


def test_a_copy_of_a_sites_article_still_joins_it(redis_client: redis.Redis, key_prefix: str) -> None:
    engine = _engine(redis_client, key_prefix, CAPACITY)
    site_articles, _ = _site_pages()
    decisions = [engine.add(article) for article in site_articles]
    copy = engine.add(Article(url="https://aggregator.example/copied", text=site_articles[-1].text))
    assert copy.cluster == decisions[-1].cluster
    # Peeking counts nothing: the site's page count is what the eight pages left.
    engine.peek(site_articles[0])
    assert int(redis_client.hget(Keys(key_prefix).boilerplate("tass.example"), PAGES_FIELD)) == 8


def test_show_and_explain_say_the_boilerplate_was_discounted(redis_client: redis.Redis, key_prefix: str,
                                                             redis_server_url: str) -> None:
    engine = _engine(redis_client, key_prefix, CAPACITY)
    site_articles, items = _site_pages()
    for article in site_articles + items[:2]:
        engine.add(article)
    connection = ["--redis-url", redis_server_url, "--key-prefix", key_prefix]
    shown = CliRunner().invoke(main, ["show", items[0].url, *connection], catch_exceptions=False)
    assert shown.exit_code == 0
    assert "1 line of its site's boilerplate discounted" in shown.output
    member = CliRunner().invoke(main, ["show", site_articles[-1].url, *connection], catch_exceptions=False)
    assert "1 line of its site's boilerplate discounted" in member.output
    as_json = CliRunner().invoke(main, ["show", site_articles[-1].url, "--json", *connection],
                                 catch_exceptions=False)
    member = json.loads(as_json.output)["members"][0]
    assert member["boilerplate_lines"] == 1 and "boilerplate-discounted" in member["flags"]
    explained = CliRunner().invoke(main, ["explain", items[0].url, items[1].url, *connection],
                                   catch_exceptions=False)
    assert explained.exit_code == 0
    assert "Site boilerplate of A" in explained.output and "Site boilerplate of B" in explained.output
