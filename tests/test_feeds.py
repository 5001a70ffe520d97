"""crawler.feeds: every feed and sitemap flavour, and the documents it must refuse."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from crawler.feeds import FeedError, parse_date, parse_listing

BASE = "http://news.example/feeds/main.xml"


def test_rss2_links_guid_fallback_relative_urls_and_dates() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>One</title><link>https://news.example/a?utm_source=rss</link>
      <pubDate>Wed, 31 Oct 2018 10:00:00 +0800</pubDate></item>
    <item><title>Two</title><guid>https://news.example/b</guid></item>
    <item><title>Three</title><guid isPermaLink="false">tag:news.example,1</guid></item>
    <item><title>Four</title><link>/c.html</link></item>
    <item><title>Ftp</title><link>ftp://news.example/x</link></item>
    </channel></rss>"""
    listing = parse_listing(body, BASE)
    assert listing.kind == "rss"
    assert [e.url for e in listing.entries] == [
        "https://news.example/a?utm_source=rss", "https://news.example/b", "http://news.example/c.html"]
    assert listing.entries[0].title == "One"
    assert listing.entries[0].published == datetime(2018, 10, 31, 2, 0, tzinfo=UTC)


def test_rss1_rdf() -> None:
    body = b"""<?xml version="1.0"?>
    <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
             xmlns:dc="http://purl.org/dc/elements/1.1/">
      <channel rdf:about="https://news.example/"><title>t</title></channel>
      <item rdf:about="https://news.example/rdf-1"><title>R</title><link>https://news.example/rdf-1</link>
        <dc:date>2024-04-14T08:30:00Z</dc:date></item>
    </rdf:RDF>"""
    listing = parse_listing(body, BASE)
    assert listing.kind == "rdf"
    assert listing.entries[0].url == "https://news.example/rdf-1"
    assert listing.entries[0].published == datetime(2024, 4, 14, 8, 30, tzinfo=UTC)


def test_atom_alternate_links_and_xml_base() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
    <feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <entry><title>A</title><link rel="self" href="https://news.example/self"/>
        <link rel="alternate" type="text/html" href="https://news.example/atom-a"/>
        <updated>2024-01-02T03:04:05+02:00</updated></entry>
      <entry xml:base="https://other.example/dir/"><title>B</title><link href="b.html"/></entry>
    </feed>"""
    listing = parse_listing(body, BASE)
    assert listing.kind == "atom"
    assert [e.url for e in listing.entries] == ["https://news.example/atom-a", "https://other.example/dir/b.html"]
    assert listing.entries[0].published == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)


def test_google_news_sitemap_title_and_publication_date() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
            xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
      <url><loc>https://news.example/n1</loc><news:news><news:publication><news:name>N</news:name>
        <news:language>en</news:language></news:publication>
        <news:publication_date>2018-10-31</news:publication_date><news:title>Summit</news:title></news:news></url>
      <url><loc>https://news.example/n2</loc><lastmod>2018-11-01T00:00:00Z</lastmod></url>
    </urlset>"""
    listing = parse_listing(body, BASE)
    assert listing.kind == "urlset"
    assert listing.entries[0].title == "Summit"
    assert listing.entries[0].published == datetime(2018, 10, 31, tzinfo=UTC)
    assert listing.entries[1].published == datetime(2018, 11, 1, tzinfo=UTC)


def test_sitemap_index_and_gzip() -> None:
    body = b"""<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://news.example/s1.xml.gz</loc></sitemap><sitemap><loc>/s2.xml</loc></sitemap>
    </sitemapindex>"""
    listing = parse_listing(gzip.compress(body), BASE)
    assert listing.kind == "sitemapindex"
    assert listing.sitemaps == ["https://news.example/s1.xml.gz", "http://news.example/s2.xml"]


@pytest.mark.parametrize("body", [
    b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
        <rss><channel><item><link>https://x.example/&lol2;</link></item></channel></rss>""",
    b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
        <rss><channel><item><title>&xxe;</title><link>https://x.example/</link></item></channel></rss>""",
], ids=["billion-laughs", "external-entity"])
def test_entity_declarations_are_refused(body: bytes) -> None:
    with pytest.raises(FeedError, match="entities"):
        parse_listing(body, BASE)


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><rss><channel><item><link>http://x', b"", b"<html><body>not a feed</body></html>",
    b"\x1f\x8b\x08\x00broken gzip",
])
def test_malformed_documents_raise_feed_error(body: bytes) -> None:
    with pytest.raises(FeedError):
        parse_listing(body, BASE)


def test_parse_date_forms() -> None:
    assert parse_date("Sun, 14 Apr 2024 08:00:00 GMT") == datetime(2024, 4, 14, 8, tzinfo=UTC)
    assert parse_date("2024-04-14T08:00:00.123+0100") == datetime(2024, 4, 14, 7, tzinfo=UTC)
    assert parse_date("2024-04") == datetime(2024, 4, 1, tzinfo=UTC)
    assert parse_date("yesterday") is None
    assert parse_date("") is None
