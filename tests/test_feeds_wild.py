"""crawler.feeds on feeds and sitemaps shaped as news sites really serve them (tests/data/feeds/)."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.feeds import MAX_DOCUMENT_BYTES, Entry, FeedError, Listing, parse_date, parse_listing

FEEDS = Path(__file__).parent / "data" / "feeds"
BADINPUT = Path(__file__).parent / "badinput"


def utc(*parts: int) -> datetime:
    """A UTC instant; aware datetimes compare by instant, so any zone the feed used matches it."""
    return datetime(*parts, tzinfo=UTC)


def same(body: bytes) -> bytes:
    return body


def to_utf16(body: bytes) -> bytes:
    """The document re-encoded as UTF-16 with a BOM, its declaration saying so."""
    return body.decode("utf-8").replace('encoding="utf-8"', 'encoding="UTF-16"').encode("utf-16")


@dataclass(frozen=True)
class Case:
    """One fixture, the URL it was fetched from, and what parse_listing must find in it."""

    fixture: str
    base: str
    kind: str
    entries: list[tuple[str, str, datetime | None]] = field(default_factory=list)
    """(url, title, published) of every entry, in document order."""
    sitemaps: list[str] = field(default_factory=list)
    transform: Callable[[bytes], bytes] = same
    """How the body reaches the parser (gzipped without Content-Encoding, re-encoded)."""


WORDPRESS = [
    ("https://valleycourier.example/2024/04/15/councils-budget-vote/",
     "Council\u2019s budget vote: what changes for schools & roads", utc(2024, 4, 15, 9, 12, 44)),
    ("https://valleycourier.example/2024/04/14/storm-warning/",
     "Storm warning: \u201cstay off the roads\u201d tonight", utc(2024, 4, 14, 21, 5)),
]
RDF = [
    ("https://www.kansai-shimbun.example/news/20240415/k001.html", "大阪で桜が満開に", utc(2024, 4, 15, 0, 30)),
    ("https://www.kansai-shimbun.example/news/20240415/k002.html", "関西空港 新ターミナル開業へ",
     utc(2024, 4, 14, 23, 5)),
]
INDEX = [
    "https://www.dailymeridian.example/sitemaps/news-2024-04-15.xml.gz",
    "https://www.dailymeridian.example/sitemaps/articles-2024-04.xml.gz",
    "https://www.dailymeridian.example/sitemaps/video.xml",
]
W = "https://worlddesk.example/a/"
R = "https://riversidetoday.example/news/"

CASES = [
    pytest.param(Case("wordpress-rss2.xml", "https://valleycourier.example/feed/", "rss", WORDPRESS),
                 id="wordpress-content-encoded-cdata"),
    pytest.param(Case("wordpress-rss2.xml", "https://valleycourier.example/feed/", "rss", WORDPRESS,
                      transform=gzip.compress), id="gzipped-without-content-encoding"),
    pytest.param(Case("feedburner-rss2.xml", "http://feeds.feedburner.com/harbourtimes/top", "rss", [
        ("https://www.harbourtimes.example/news/port-strike-ends.html?ref=rss", "Port strike ends after 11 days",
         utc(2024, 4, 10, 23, 30)),
        ("https://www.harbourtimes.example/news/ferry-timetable.html", "Ferry timetable changes",
         utc(2024, 4, 10, 13, 0)),
    ]), id="feedburner-origlink-stylesheets-est-edt"),
    pytest.param(Case("rss1-rdf.rdf", "https://www.kansai-shimbun.example/rss/index.rdf", "rdf", RDF),
                 id="rss1-rdf-about-dc-date"),
    pytest.param(Case("rss1-rdf.rdf", "https://www.kansai-shimbun.example/rss/index.rdf", "rdf", RDF,
                      transform=to_utf16), id="utf16-with-bom"),
    pytest.param(Case("rss091-latin1.xml", "http://www.journal-est.example/rss.xml", "rss", [
        ("http://www.journal-est.example/culture/fete-musique-2024.html",
         "F\u00eate de la musique : le programme d\u00e9voil\u00e9", None),
        ("http://www.journal-est.example/economie/marche-noel.html", "March\u00e9 de No\u00ebl : record d'affluence",
         None),
    ]), id="rss091-netscape-doctype-latin1-entities"),
    pytest.param(Case("latin1-declared-cp1252-bytes.xml", "https://www.rheinbote.example/feed.rss", "rss", [
        ("https://www.rheinbote.example/sport/muenchen-em-bereit-100.html",
         "M\u00fcnchen: \u201eWir sind bereit\u201c \u2013 B\u00fcrgermeister zur EM", utc(2024, 4, 15, 5, 45)),
        ("https://www.rheinbote.example/wirtschaft/preise-studie-100.html",
         "Preise steigen um 3 \u20ac pro Woche \u2019laut Studie\u2019", utc(2024, 4, 14, 16, 0)),
    ]), id="iso-8859-1-declared-windows-1252-bytes"),
    pytest.param(Case("windows-1252.xml", "http://www.dailyledger.example/feed", "rss", [
        ("http://www.dailyledger.example/business/acme-quarter-2024-04-12/",
         "\u201cA bad quarter\u201d \u2014 Acme\u2019s CEO \u00e0 la carte", utc(2024, 4, 12, 22, 20)),
    ]), id="windows-1252-declared"),
    pytest.param(Case("utf8-with-cp1252-bytes.xml", "https://canontribune.example/feed/", "rss", [
        ("https://canontribune.example/2024/04/garcia-award", "Se\u00f1ora Garc\u00eda wins award",
         utc(2024, 4, 11, 18, 0)),
        ("https://canontribune.example/2024/04/mayor-plan", "Mayor\u2019s \u201cplan\u201d", utc(2024, 4, 11, 19, 0)),
    ]), id="utf8-declared-with-stray-windows-1252"),
    pytest.param(Case("bom-then-blank-line.xml", "https://bomdia.example/rss", "rss", [
        ("https://bomdia.example/politica/lisboa-cimeira", "Lisboa recebe cimeira", utc(2024, 4, 15, 9, 0)),
    ]), id="utf8-bom-then-blank-line"),
    pytest.param(Case("leading-blank-lines.xml", "https://northsidegazette.example/feed/", "rss", [
        ("https://northsidegazette.example/library-reopens/", "Library reopens after flood repairs",
         utc(2024, 4, 9, 14, 0)),
    ]), id="blank-lines-before-xml-declaration"),
    pytest.param(Case("php-warning-before-xml.xml", "https://eastbaypost.example/feed/", "rss", [
        ("https://eastbaypost.example/bridge-toll-july/", "Bridge toll rises in July", utc(2024, 4, 8, 6, 30)),
    ]), id="php-warning-before-xml-declaration"),
    pytest.param(Case("html-entities-and-ampersands.xml", "https://metrowire.example/rss", "rss", [
        ("https://metrowire.example/article.php?id=5521&section=markets&utm_source=rss",
         "Markets rally \u2014 Dow up 2%", utc(2024, 4, 12, 15, 4, 5)),
        ("https://metrowire.example/article.php?id=5522&section=tech",
         "AT&T and T-Mobile \u2013 \u00abprice war\u00bb in caf\u00e9s", utc(2024, 4, 12, 14, 0)),
        ("https://metrowire.example/article.php?id=5523&section=money&ref=feed&bogus;",
         "Q&A: rates & your mortgage", utc(2024, 4, 12, 13, 0)),
    ]), id="html-entities-and-unescaped-ampersands"),
    pytest.param(Case("control-characters.xml", "https://hcherald.example/feed", "rss", [
        ("https://hcherald.example/news/school-board-chair", "School board elects chair", utc(2024, 4, 10, 0, 0)),
        ("https://hcherald.example/news/rodeo-returns", "Rodeo returns", None),
    ]), id="control-characters"),
    pytest.param(Case("dates-rss2.xml", "https://worlddesk.example/feed", "rss", [
        (W + "est", "EST", utc(2024, 4, 15, 13, 0)),
        (W + "gmt-plus-1", "GMT+1", utc(2024, 4, 15, 7, 0)),
        (W + "gmt-plus-0530", "GMT+05:30", utc(2024, 4, 15, 8, 0)),
        (W + "ist-offset", "+0530", utc(2024, 4, 15, 8, 0)),
        (W + "ist", "IST", utc(2024, 4, 15, 8, 0)),
        (W + "cest", "CEST", utc(2024, 4, 15, 8, 0)),
        (W + "no-seconds", "no seconds", utc(2024, 4, 15, 8, 0)),
        (W + "single-digits", "single-digit day and hour", utc(2024, 4, 1, 8, 5)),
        (W + "no-day-name", "no day name", utc(2024, 4, 15, 8, 0)),
        (W + "fr", "French", utc(2024, 4, 15, 8, 0)),
        (W + "es", "Spanish", utc(2024, 4, 15, 8, 0)),
        (W + "de", "German", utc(2024, 3, 15, 8, 0)),
        (W + "it", "Italian", utc(2024, 1, 15, 8, 0)),
        (W + "iso", "ISO in pubDate", utc(2024, 4, 15, 6, 0)),
        (W + "iso-naive", "ISO without zone", utc(2024, 4, 15, 8, 0)),
        (W + "iso-hour-zone", "ISO with hour-only zone", utc(2024, 4, 15, 6, 0)),
        (W + "dc-date", "junk pubDate, dc:date", utc(2024, 4, 15, 6, 0)),
        (W + "lowercase", "lower-case pubdate", utc(2024, 4, 15, 8, 0)),
        (W + "no-date", "no date", None),
    ]), id="rfc822-and-iso-dates-in-the-wild"),
    pytest.param(Case("links-and-guids-rss2.xml", "https://riversidetoday.example/rss", "rss", [
        (R + "empty-link-guid", "Empty link, permalink guid", None),
        (R + "implicit-permalink", "Self-closed link, guid with implicit isPermaLink", None),
        (R + "wrapped-link", "Link wrapped in whitespace", None),
        (R + "cdata-link?a=1&b=2", "Link in CDATA", None),
        (R + "relative-link", "Title after media:title", None),
        (R + "atom-link-in-rss", "Atom link in an RSS item", None),
        (R + "ipv6-fallback", "Broken IPv6 link, good guid", None),
        ("https://RiversideToday.example/news/Upper-Case", "Upper-case scheme", None),
        ("https://cdn.riversidetoday.example/news/protocol-relative", "Protocol-relative link", None),
    ]), id="empty-wrapped-and-broken-links-guids"),
    pytest.param(Case("userland-namespace-rss2.xml", "http://scripting-desk.example/rss.xml", "rss", [
        ("http://scripting-desk.example/2024/04/13/outliners.html", "Outliners are back", utc(2024, 4, 13, 14, 7, 31)),
    ]), id="rss2-in-userland-namespace"),
    pytest.param(Case("atom1-links.xml", "https://www.coastalherald.example/feed/atom/", "atom", [
        ("https://www.coastalherald.example/2024/04/15/harbour-wall/", "Harbour wall repairs \u2018weeks away\u2019",
         utc(2024, 4, 15, 8, 0)),
        ("https://www.coastalherald.example/2024/04/14/lifeboat-launch/",
         "Link without rel, relative to the feed's xml:base", utc(2024, 4, 14, 17, 20)),
        ("https://www.coastalherald.example/2024/04/13/pier-fire/", "An alternate JSON link before the HTML one",
         utc(2024, 4, 13, 8, 0)),
        ("https://www.coastalherald.example/sport/derby-day-preview", "Derby day preview", utc(2024, 4, 12, 16, 0)),
        ("https://www.coastalherald.example/2024/04/11/council-minutes/", "Only an id that is the article URL",
         utc(2024, 4, 11, 8, 0)),
    ]), id="atom1-several-links-xml-base"),
    pytest.param(Case("atom03.xml", "http://uplandsobserver.example/atom.xml", "atom", [
        ("http://uplandsobserver.example/2024/04/quarry-plan-rejected.html", "Quarry plan rejected & appealed",
         utc(2024, 4, 10, 16, 15)),
        ("http://uplandsobserver.example/2024/04/only-modified.html", "Only modified", utc(2024, 4, 9, 7, 0)),
    ]), id="atom03-issued-escaped-title"),
    pytest.param(Case("google-news-sitemap.xml", "https://www.dailymeridian.example/news-sitemap.xml", "urlset", [
        ("https://www.dailymeridian.example/politics/2024/04/15/senate-vote-delayed",
         "Senate vote delayed as talks drag on & on", utc(2024, 4, 15, 13, 41)),
        ("https://www.dailymeridian.example/video/2024/04/15/storm-footage", "Watch: storm hits the coast",
         utc(2024, 4, 15)),
        ("https://www.dailymeridian.example/business/2024/04/14/rates", "", utc(2024, 4, 14, 21, 0)),
    ]), id="google-news-image-video-sitemap"),
    pytest.param(Case("sitemap-hreflang.xml", "https://www.euronachrichten.example/sitemap.xml", "urlset", [
        ("https://www.euronachrichten.example/en/2024/04/ecb-holds-rates", "", utc(2024, 4, 11)),
        ("https://www.euronachrichten.example/de/2024/04/ezb-haelt-zinsen", "", utc(2024, 4, 11, 13, 30)),
    ]), id="sitemap-xhtml-link-alternates"),
    pytest.param(Case("sitemap-index.xml", "https://www.dailymeridian.example/sitemap_index.xml", "sitemapindex",
                      sitemaps=INDEX), id="sitemap-index-of-gz-children"),
    pytest.param(Case("sitemap-index.xml", "https://www.dailymeridian.example/sitemap_index.xml.gz",
                      "sitemapindex", sitemaps=INDEX, transform=gzip.compress), id="gzipped-sitemap-index"),
    pytest.param(Case("sitemap.txt", "https://www.smalltownnews.example/sitemap.txt", "text", [
        ("https://www.smalltownnews.example/2024/04/15/fair-opens.html", "", None),
        ("https://www.smalltownnews.example/2024/04/15/road-closure.html", "", None),
        ("https://www.smalltownnews.example/2024/04/14/obituaries.html?page=2&sort=new", "", None),
    ]), id="plain-text-sitemap-bom-crlf"),
]


@pytest.mark.parametrize("case", CASES)
def test_real_world_listing(case: Case) -> None:
    listing = parse_listing(case.transform((FEEDS / case.fixture).read_bytes()), case.base)
    assert listing.kind == case.kind
    assert [entry.url for entry in listing.entries] == [url for url, _, _ in case.entries]
    assert [entry.title for entry in listing.entries] == [title for _, title, _ in case.entries]
    assert [entry.published for entry in listing.entries] == [published for _, _, published in case.entries]
    assert all(entry.published is None or entry.published.tzinfo for entry in listing.entries)
    assert listing.sitemaps == case.sitemaps


def test_every_fixture_is_covered() -> None:
    covered = {case.values[0].fixture for case in CASES}
    assert covered == {path.name for path in FEEDS.iterdir()}


XHTML = b"""<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>Consent</title></head>
<body><p>We value your privacy</p></body></html>"""
HTML = b"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Just a moment...</title></head>
<body><div id="challenge">Checking your browser<br></div></body></html>"""
JSON_FEED = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "x",
                        "items": [{"id": "1", "url": "https://x.example/1"}]}).encode()
LAUGHS_UTF16 = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
                '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss><channel><item><title>&b;</title>'
                '<link>https://x.example/</link></item></channel></rss>').encode("utf-16")


@pytest.mark.parametrize(("body", "message"), [
    pytest.param(bytes(range(256)) * 8, "not a feed or sitemap", id="binary"),
    pytest.param(HTML, "malformed XML", id="html-challenge-page"),
    pytest.param(XHTML, r"not a feed or sitemap: root element <html>", id="xhtml-page"),
    pytest.param(JSON_FEED, "not a feed or sitemap", id="json-feed"),
    pytest.param(b"Down for maintenance.\nsee https://x.example/status\nBack soon.\n", "not a feed or sitemap",
                 id="text-mostly-not-urls"),
    pytest.param((FEEDS / "wordpress-rss2.xml").read_bytes()[:2000], "malformed XML", id="truncated"),
    pytest.param((BADINPUT / "malformed.xml").read_bytes(), "malformed XML", id="unclosed-tags"),
    pytest.param(LAUGHS_UTF16, "declares entities", id="utf16-billion-laughs"),
    pytest.param(gzip.compress(b"\x00\xff" * 100), "not a feed or sitemap", id="gzipped-garbage"),
    pytest.param(b"\xef\xbb\xbf \r\n\t", "empty document", id="only-bom-and-whitespace"),
])
def test_garbage_gives_a_clear_feed_error(body: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_listing(body, "https://x.example/feed")


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"<rss>" + b" " * MAX_DOCUMENT_BYTES + b"</rss>", compresslevel=1)
    with pytest.raises(FeedError, match="larger than"):
        parse_listing(bomb, "https://x.example/feed")


def test_text_sitemap_keeps_the_entry_limit() -> None:
    body = "".join(f"https://x.example/{index}\n" for index in range(100)).encode()
    listing = parse_listing(body, "https://x.example/sitemap.txt", max_entries=10)
    assert [entry.url for entry in listing.entries] == [f"https://x.example/{index}" for index in range(10)]


@pytest.mark.parametrize("label", ["idna", "punycode", "base64", "unicode_escape", "utf-16", "x-unknown"])
def test_odd_declared_encodings_are_read_as_utf8(label: str) -> None:
    body = (f'<?xml version="1.0" encoding="{label}"?><rss><channel><item><title>Caf\u00e9</title>'
            '<link>https://x.example/caf\u00e9</link></item></channel></rss>').encode()
    assert parse_listing(body, "https://x.example/feed").entries == [Entry("https://x.example/caf\u00e9", "Caf\u00e9")]


@pytest.mark.parametrize("fixture", sorted(path.name for path in FEEDS.iterdir()))
def test_damaged_fixtures_give_a_listing_or_feed_error(fixture: str) -> None:
    body = (FEEDS / fixture).read_bytes()
    damage = random.Random(fixture)
    for _ in range(40):
        cut = body[:damage.randrange(len(body))]
        flipped = bytearray(body)
        for _ in range(5):
            flipped[damage.randrange(len(flipped))] = damage.randrange(256)
        for damaged in (cut, bytes(flipped), gzip.compress(cut)):
            try:
                assert isinstance(parse_listing(damaged, "https://x.example/feed"), Listing)
            except FeedError:
                pass


@pytest.mark.parametrize(("value", "expected"), [
    ("Mon, 15 Apr 2024 08:00:00 PST", utc(2024, 4, 15, 16, 0)),
    ("Mon, 15 Apr 2024 08:00:00 AEST", utc(2024, 4, 14, 22, 0)),
    ("Mon, 15 Apr 2024 08:00:00 UTC-03:00", utc(2024, 4, 15, 11, 0)),
    ("Mon, 15 Apr 2024 08:00:00 +05:30", utc(2024, 4, 15, 2, 30)),
    ("Mon, 15 Apr 24 08:00:00 Z", utc(2024, 4, 15, 8, 0)),
    ("Monday, 15 April 2024 08:00:00 GMT", utc(2024, 4, 15, 8, 0)),
    ("Mi, 17 Apr 2024 08:00:00 +0200", utc(2024, 4, 17, 6, 0)),
    ("mer., 17 avr. 2024 08:00:00 +0200", utc(2024, 4, 17, 6, 0)),
    ("Qua, 17 Abr 2024 08:00:00 -0300", utc(2024, 4, 17, 11, 0)),
    ("17 Dez 2024 08:00:00 +0100", utc(2024, 12, 17, 7, 0)),
    ("2024-04-15T08:00:00.123456Z", utc(2024, 4, 15, 8, 0)),
    ("2024-04-15T08:00Z", utc(2024, 4, 15, 8, 0)),
    ("2024-04-15T08:00:00-0500", utc(2024, 4, 15, 13, 0)),
    ("2024-04-15 08:00:00 GMT", utc(2024, 4, 15, 8, 0)),
    ("2024-04-15", utc(2024, 4, 15)),
    ("Fri, 31 Feb 2020 25:61:00 +9999", None),
    ("2024-04-15T08:00:00+99:00", None),
    ("Mon, 15 Xyz 2024 08:00:00 GMT", None),
    ("5 minutes ago", None),
])
def test_parse_date_in_the_wild(value: str, expected: datetime | None) -> None:
    assert parse_date(value) == expected
