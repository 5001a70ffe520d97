"""Decisions per hour (dedup.hourly), counted where the engine decides, and what the dashboard's
overview makes of them (the chart's layout, rates per source, next crawl times), on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from crawler.config import Settings, SourceSettings
from crawler.web.chart import layout, nice_ceiling
from crawler.web.overview import next_crawl, overview, source_rates
from dedup import hourly
from dedup.article import Article
from dedup.engine import Engine
from dedup.keys import Keys
from tests.textcases import articles, excerpt, wrapped_copy


@pytest.fixture
def engine(redis_client: redis.Redis, key_prefix: str) -> Iterator[Engine]:
    yield Engine(redis_client, Keys(key_prefix))


def _hour_now() -> int:
    return int(datetime.now(UTC).timestamp() // hourly.HOUR)


def _recent(engine: Engine) -> hourly.HourCounts:
    """This hour's and the last hour's counts together (a test may run across the hour)."""
    kinds: dict[str, int] = {}
    sources: dict[str, dict[str, int]] = {}
    for hour in hourly.read(engine.client, engine.keys, _hour_now() - 1, _hour_now()):
        for kind, value in hour.kinds.items():
            kinds[kind] = kinds.get(kind, 0) + value
        for source, counts in hour.sources.items():
            for kind, value in counts.items():
                sources.setdefault(source, {})[kind] = sources.get(source, {}).get(kind, 0) + value
    return hourly.HourCounts(_hour_now(), kinds, sources)


def test_decisions_are_counted_by_kind_and_source(engine: Engine) -> None:
    (url, body), (other_url, other) = articles()[0], articles()[1]
    decisions = list(engine.add_many([
        Article(url=url, text=body, source="wire"),
        Article(url="https://farm.example/1", text=wrapped_copy(body), source="farm"),
        Article(url="https://digest.example/1", text=excerpt(body), source="farm"),
        Article(url=other_url, text=other, source="wire"),
        Article(url="https://brief.example/thin", text="Too short to compare.", source="farm"),
    ]))
    assert [d.kind for d in decisions] == [None, "exact", "excerpt", None, "thin"]
    counts = hourly.read(engine.client, engine.keys, _hour_now() - 2, _hour_now())
    assert [c.hour for c in counts] == [_hour_now() - 2, _hour_now() - 1, _hour_now()]  # empty hours too
    assert counts[0].total == 0
    now = _recent(engine)
    assert now.kinds == {"canonical": 2, "exact": 1, "excerpt": 1, "thin": 1}
    assert now.sources == {"wire": {"canonical": 2}, "farm": {"exact": 1, "excerpt": 1, "thin": 1}}
    ttls = [engine.client.ttl(engine.keys.decisions_hour(h)) for h in (_hour_now() - 1, _hour_now())]
    assert any(0 < ttl <= hourly.KEEP for ttl in ttls)


def test_a_retried_article_is_not_counted_again(engine: Engine) -> None:
    url, body = articles()[2]
    engine.add(Article(url=url, text=body, source="wire"))
    again = engine.add(Article(url=url, text=body, source="wire"))
    assert again.known
    assert _recent(engine).kinds == {"canonical": 1}


def test_rates_per_source_highest_first() -> None:
    hours = [hourly.HourCounts(1, {}, {"a": {"canonical": 3, "near": 1}, "b": {"canonical": 1, "exact": 3}}),
             hourly.HourCounts(2, {}, {"a": {"canonical": 1, "thin": 5}})]
    rates = source_rates(hours)
    assert [(r.source, r.decided, r.duplicates, r.thin) for r in rates] == [("b", 4, 3, 0), ("a", 5, 1, 5)]
    assert rates[0].rate == 0.75


def test_chart_layout_stacks_kinds_to_scale() -> None:
    assert [nice_ceiling(v) for v in (1, 3, 7, 10, 11, 62, 450)] == [1, 5, 10, 10, 20, 100, 500]
    hours = [hourly.HourCounts(h, {"canonical": 10, "near": 30} if h == 5 else {}, {}) for h in range(24)]
    chart = layout(hours)
    assert len(chart.bars) == 24 and chart.peak == 40 and chart.totals["near"] == 30
    busy = chart.bars[5]
    canonical, near = busy.segments
    assert (canonical.kind, near.kind) == ("canonical", "near")
    assert near.height == pytest.approx(3 * canonical.height)
    assert canonical.y + canonical.height == pytest.approx(chart.plot_bottom)  # stacked from the bottom
    assert near.y + near.height == pytest.approx(canonical.y)
    assert "10 new story, 30 near copy" in busy.title
    assert all(not bar.segments for index, bar in enumerate(chart.bars) if index != 5)
    assert [tick.label for tick in chart.y_ticks] == ["0", "25", "50"]
    assert layout([hourly.HourCounts(h) for h in range(24)]).empty


def test_next_crawl_follows_the_schedule() -> None:
    now = datetime(2026, 11, 29, 10, 7, 30, tzinfo=UTC).timestamp()
    every = SourceSettings("a", feeds=("https://a.example/feed",), every=600.0)
    assert next_crawl(every, now) == datetime(2026, 11, 29, 10, 10, tzinfo=UTC).timestamp()
    on_tick = datetime(2026, 11, 29, 10, 10, tzinfo=UTC).timestamp()
    assert next_crawl(every, on_tick) == on_tick + 600
    cron = SourceSettings("b", feeds=("https://b.example/feed",), cron="15 */2 * * *")
    assert next_crawl(cron, now) == datetime(2026, 11, 29, 10, 15, tzinfo=UTC).timestamp()


def test_overview_reads_sources_from_config_and_state(engine: Engine) -> None:
    engine.client.hset(engine.keys.source_state("wire"), mapping={
        "last_finished": "1700000000.5", "last_outcome": "partial", "last_instance": "host-a:12",
        "last_counts": '{"articles_fetched": 40, "fetch_errors": 2, "extraction_failures": 1}'})
    settings = Settings(sources=(SourceSettings("wire", feeds=("https://w.example/rss",), every=300.0),
                                 SourceSettings("quiet", feeds=("https://q.example/rss",))))
    data = overview(engine.client, engine.keys, settings)
    wire, quiet = data.sources
    assert (wire.name, wire.last_outcome, wire.failures, wire.last_instance) == ("wire", "partial", 3, "host-a:12")
    assert wire.next_crawl is not None and 0 < wire.next_crawl - data.now <= 300
    assert (quiet.name, quiet.last_outcome, quiet.last_finished) == ("quiet", None, None)
    assert len(data.hours) == 24 and data.empty is False
