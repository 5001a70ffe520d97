"""Tests for crawler.extract: text, title, dates and links from real and hand-built pages."""

from __future__ import annotations

import gzip
import json
import pickle
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.extract import MAX_BODY_BYTES, decode_html, extract_article
from dedup.article import Article

PAGES_DIR = Path(__file__).parent / "data" / "extraction"
GROUND_TRUTH: dict[str, dict[str, str]] = json.loads(
    (PAGES_DIR / "ground-truth.json").read_text(encoding="utf-8")
)
PARADIGM = "0dd1357045727799a447563fd8851f4ebe79f042073ea16991a9b67aa595f81a"
SCIENCEALERT = "14cc2a0ca59c62a8c9f205a171e9ccf4ef4cf69b0c642f51c8c65c051b39024f"
JARAGUA = "f6ac15a4d98511396da23e4428deb5605422b1c8bbc8284e771f6896bdccf57f"
GTO = "c4a3637c6696f238cf9fe1c7fbb17bbb6731a71d4f5fe399b9b4fc3294a96a6b"
PARADIGM_PATH = (
    "theparadigmng.com/2018/10/09/"
    "breaking-lawan-moves-motion-senates-adjournment-nzeribe-adedoyins-deaths"
)

ORIGINAL_URL = "https://news.example.org/asia/second-summit-early-next-year"
COPY_URL = "https://repost.example.net/2024/04/us-says-aiming-for-second-summit"
PARAGRAPHS = [
    (
        "The foreign minister said on Wednesday the government hoped a second summit between"
        " the two leaders would take place early next year, where both sides could make a real"
        " breakthrough."
    ),
    (
        "Officials have asked for a full list of the missile sites before any talks on lifting"
        " trade sanctions, a demand the other side has so far refused to meet in several rounds."
    ),
    (
        "There is a lot of work which remains, the minister told a radio host, adding that he had"
        " been promised access for inspectors at two significant sites within the next few weeks."
    ),
    (
        "The ministry declined to give details of the next meeting, which is expected to take"
        " place in New York, but said the negotiators would speak about inspections next week."
    ),
    (
        "Analysts have been sceptical of the commitment, but the pledge made at the last summit"
        " drew an enthusiastic response from the president and several of his senior advisers."
    ),
]


def _shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = re.findall(r"\w+", text)
    return Counter(tuple(tokens[i : i + 4]) for i in range(max(1, len(tokens) - 3)))


def shingle_f1(true: str, predicted: str) -> float:
    """Word 4-gram F1, as the Zyte article-extraction benchmark scores a page."""
    true_counts, predicted_counts = _shingles(true), _shingles(predicted)
    overlap = sum((true_counts & predicted_counts).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(predicted_counts.values())
    recall = overlap / sum(true_counts.values())
    return 2 * precision * recall / (precision + recall)


def page_body(page_id: str) -> bytes:
    return gzip.decompress((PAGES_DIR / f"{page_id}.html.gz").read_bytes())


def extract_page(page_id: str, url: str | None = None, final_url: str | None = None) -> Article:
    article = extract_article(
        page_body(page_id), url or GROUND_TRUTH[page_id]["url"], final_url=final_url
    )
    assert article is not None
    return article


def aggregator_page(*, head: str = "", credit: str = "") -> str:
    """A content-farm copy: today's date in the header bar, the copied body, related teasers."""
    body = "\n".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS)
    teasers = "\n".join(
        f'<li><a href="https://repost.example.net/2024/04/story-{n}">Story {n}</a>'
        f' <a href="https://repost.example.net/2024/04/story-{n}">Read Full Article</a></li>'
        for n in range(3)
    )
    credit = credit or f'<p>Source: <a href="{ORIGINAL_URL}">Read Full Article</a></p>'
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>US says aiming for second summit early next year | Repost Daily</title>{head}</head>
<body>
<div class="top-bar"><span class="header-date">Sunday, 14 Apr 2024</span><a href="/">Home</a></div>
<nav><a href="/world">World</a> <a href="/asia">Asia</a></nav>
<div class="content">
<h1>US says aiming for second summit early next year</h1>
{body}
<p>Related Stories:</p>
<p>More summit special reports and analyses <a href="https://repost.example.net/summit">here</a></p>
{credit}
<h3>Related Posts</h3><ul>{teasers}</ul>
</div>
<footer>© Repost Daily</footer>
</body></html>"""


@pytest.mark.parametrize("page_id", sorted(GROUND_TRUTH))
def test_benchmark_page_text_matches_ground_truth(page_id: str) -> None:
    article = extract_page(page_id)
    assert shingle_f1(GROUND_TRUTH[page_id]["articleBody"], article.text) > 0.8
    assert article.title
    assert article.site and article.site in GROUND_TRUTH[page_id]["url"]
    assert article.url == GROUND_TRUTH[page_id]["url"]


def test_headline_is_the_title_not_the_first_line_of_text() -> None:
    article = extract_article(aggregator_page(), COPY_URL)
    assert article is not None
    assert article.title == "US says aiming for second summit early next year"
    assert article.text.startswith(PARAGRAPHS[0])


def test_published_comes_from_metadata_in_utc() -> None:
    # <meta property="article:published_time" content="2018-10-09T16:02:36+01:00">
    assert extract_page(PARADIGM).published == datetime(2018, 10, 9, 15, 2, 36, tzinfo=UTC)
    # <meta itemprop="datePublished" content="2018-10-03T19:41:33+04:00">
    assert extract_page(GTO).published == datetime(2018, 10, 3, 15, 41, 33, tzinfo=UTC)


def test_scrape_date_header_is_not_a_publication_date() -> None:
    fetched = datetime(2024, 4, 14, 9, 30, tzinfo=UTC)
    for fetched_at in (fetched, None):
        article = extract_article(aggregator_page(), COPY_URL, fetched_at=fetched_at)
        assert article is not None
        assert article.published is None


def test_date_as_plain_text_at_top_of_body_is_not_a_publication_date() -> None:
    page = aggregator_page().replace(' class="top-bar"', "").replace(' class="header-date"', "")
    article = extract_article(page, "https://repost.example.net/us-says", fetched_at=None)
    assert article is not None and article.published is None


def test_metadata_date_wins_over_a_visible_date() -> None:
    head = '<meta property="article:published_time" content="2018-10-31T14:05:00+08:00">'
    article = extract_article(aggregator_page(head=head), COPY_URL)
    assert article is not None
    assert article.published == datetime(2018, 10, 31, 6, 5, tzinfo=UTC)


def test_json_ld_date_published_is_read() -> None:
    head = (
        '<script type="application/ld+json">{"@type": "NewsArticle",'
        ' "datePublished": "2018-10-31T06:05:00Z", "dateModified": "2019-01-02T00:00:00Z"}</script>'
    )
    article = extract_article(aggregator_page(head=head), COPY_URL)
    assert article is not None
    assert article.published == datetime(2018, 10, 31, 6, 5, tzinfo=UTC)


def test_date_printed_in_the_article_byline_is_used_without_metadata() -> None:
    page = aggregator_page().replace(
        "<h1>", '<div class="byline"><span class="post-date">31 October 2018</span></div><h1>'
    )
    fetched = datetime(2024, 4, 14, tzinfo=UTC)
    article = extract_article(page, "https://repost.example.net/us-says", fetched_at=fetched)
    assert article is not None
    assert article.published == datetime(2018, 10, 31, tzinfo=UTC)
    # On the day of the fetch such a date cannot be told from a "today" line: refused.
    same_day = page.replace("31 October 2018", "14 April 2024")
    article = extract_article(same_day, "https://repost.example.net/us-says", fetched_at=fetched)
    assert article is not None and article.published is None


def test_canonical_link_names_the_page_when_fetched_under_another_url() -> None:
    canonical = f"http://www.{PARADIGM_PATH}/"
    article = extract_page(PARADIGM, url="https://feeds.example.com/r/12345")
    assert article.canonical_link == canonical
    article = extract_page(PARADIGM, url=canonical + "?utm_source=rss")
    assert article.canonical_link == canonical


def test_canonical_link_is_none_when_it_names_the_fetched_page() -> None:
    assert extract_page(PARADIGM).canonical_link is None
    # Scheme, www., a trailing slash and a fragment do not make another page.
    same_page = f"https://{PARADIGM_PATH}#top"
    assert extract_page(PARADIGM, url=same_page).canonical_link is None
    redirected = extract_page(PARADIGM, url="https://feeds.example.com/r/1", final_url=same_page)
    assert redirected.canonical_link is None
    assert redirected.site == "theparadigmng.com"


def test_og_url_stands_in_for_a_missing_rel_canonical() -> None:
    # No rel=canonical; og:url names the site's main host.
    article = extract_page(JARAGUA)
    assert article.canonical_link == (
        "https://www.jaraguadosul.sc.gov.br/news/"
        "servi-o-de-atendimento-domiciliar-registra-arrombamento-em-dois-ve-culos"
    )
    assert extract_page(SCIENCEALERT).canonical_link is None


def test_relative_canonical_is_made_absolute_and_home_page_canonical_ignored() -> None:
    head = '<link rel="canonical" href="/asia/original-story">'
    article = extract_article(aggregator_page(head=head), COPY_URL)
    assert article is not None
    assert article.canonical_link == "https://repost.example.net/asia/original-story"
    home = extract_article(
        aggregator_page(head='<link rel="canonical" href="https://repost.example.net/">'), COPY_URL
    )
    assert home is not None and home.canonical_link is None


def test_source_link_from_read_full_article_on_an_aggregator_copy() -> None:
    article = extract_article(aggregator_page(), COPY_URL)
    assert article is not None
    # The "Read Full Article" teasers under Related Posts point at several pages: not a credit.
    assert article.source_link == ORIGINAL_URL
    assert "Related Posts" not in article.text


@pytest.mark.parametrize(
    "credit",
    [
        '<p>Read the full article at <a href="{url}">News Example</a>.</p>',
        '<p><em>Originally published on </em><a href="{url}"><em>News Example</em></a>.</p>',
        '<p>This article originally appeared on <a href="{url}">news.example.org</a></p>',
        '<p><a href="{url}">Continue reading at News Example</a></p>',
        '<p><strong>Source:</strong> <a href="{url}">News Example</a></p>',
        '<p>Read more at: <a href="{url}">News Example</a></p>',
    ],
)
def test_source_link_credit_phrasings(credit: str) -> None:
    page = aggregator_page(credit=credit.format(url=ORIGINAL_URL))
    article = extract_article(page, COPY_URL)
    assert article is not None and article.source_link == ORIGINAL_URL


def test_source_link_resolves_relative_urls_and_ignores_the_page_itself() -> None:
    relative = aggregator_page(
        credit='<p>Source: <a href="/originals/77">Read Full Article</a></p>'
    )
    article = extract_article(relative, COPY_URL)
    assert article is not None
    assert article.source_link == "https://repost.example.net/originals/77"
    for href in ("#top", COPY_URL, COPY_URL + "#comments", "/"):
        page = aggregator_page(credit=f'<p>Source: <a href="{href}">Read Full Article</a></p>')
        article = extract_article(page, COPY_URL)
        assert article is not None and article.source_link is None, href


def test_no_source_link_on_an_original_article() -> None:
    for page_id in GROUND_TRUTH:
        assert extract_page(page_id).source_link is None
    # "Read Full Article" under each related-post teaser: a list, not a credit.
    article = extract_article(aggregator_page(credit="<p>End.</p>"), COPY_URL)
    assert article is not None and article.source_link is None
    credit = '<p>Image source: <a href="https://photos.example.com/p/1">Photo Agency</a></p>'
    article = extract_article(aggregator_page(credit=credit), COPY_URL)
    assert article is not None and article.source_link is None


def test_syndication_source_meta_names_the_original() -> None:
    head = f'<meta name="syndication-source" content="{ORIGINAL_URL}">'
    article = extract_article(aggregator_page(head=head, credit="<p>End.</p>"), COPY_URL)
    assert article is not None and article.source_link == ORIGINAL_URL


@pytest.mark.parametrize(
    "body",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40,
        gzip.compress(b"<html><body><p>compressed twice</p></body></html>" * 200),
        bytes(range(1, 32)) * 500,
        "<html>\x00\x01\x02\x03</html>" * 100,
    ],
)
def test_binary_body_returns_none(body: bytes | str) -> None:
    assert extract_article(body, "https://example.com/file") is None


@pytest.mark.parametrize("body", [b"", "", b"   \n\t ", b"<html><head></head><body></body></html>"])
def test_empty_body_returns_none(body: bytes | str) -> None:
    assert extract_article(body, "https://example.com/empty") is None


def test_undeclared_cp1252_bytes_decode_as_windows_1252() -> None:
    sentence = "Café owners said the “new rules” — due in März — cost €500."
    page = (
        f"<html><head><title>Café</title></head><body><p>{(sentence + ' ') * 8}</p></body></html>"
    )
    article = extract_article(page.encode("cp1252"), "https://example.com/cafe")
    assert article is not None
    assert sentence in article.text
    assert "\ufffd" not in article.text


def test_declared_charsets_and_their_usual_mistakes() -> None:
    text = "“Café” — naïve"
    page = f"<html><head></head><body><p>{text}</p></body></html>"
    # Server says Latin-1 (a common default) but the bytes are UTF-8.
    assert text in (decode_html(page.encode("utf-8"), "ISO-8859-1") or "")
    # Server says UTF-8 but the bytes are Windows-1252.
    assert text in (decode_html(page.encode("cp1252"), "utf-8") or "")
    # A <meta charset> is honoured when no header says otherwise.
    cyrillic = "<html><head><meta charset='windows-1251'></head><body><p>Новости</p></body></html>"
    assert "Новости" in (decode_html(cyrillic.encode("cp1251")) or "")
    # A byte-order mark beats everything.
    assert text in (decode_html(page.encode("utf-16"), "iso-8859-1") or "")
    # An unknown label is ignored rather than fatal.
    assert text in (decode_html(page.encode("utf-8"), "x-no-such-charset") or "")


def test_huge_body_is_capped() -> None:
    # Six megabytes of two-byte characters: cut at the cap without a broken last character.
    body = b"<html><body><p>" + "\u00e9".encode() * (3 * 1024 * 1024) + b"</p></body></html>"
    text = decode_html(body, "utf-8")
    assert text is not None
    assert len(text.encode()) <= MAX_BODY_BYTES
    assert "\ufffd" not in text


def test_extract_article_runs_in_a_process_pool() -> None:
    assert pickle.loads(pickle.dumps(extract_article)) is extract_article
    with ProcessPoolExecutor(max_workers=1) as pool:
        article = pool.submit(extract_article, aggregator_page(), COPY_URL, source="repost").result(
            60
        )
    assert isinstance(article, Article)
    assert article.source == "repost" and article.site == "repost.example.net"
    assert pickle.loads(pickle.dumps(article)) == article


def test_malformed_links_do_not_cost_the_article() -> None:
    credit = '<p>Source: <a href="http://[broken">Read Full Article</a></p>'
    head = '<base href="http://[also-broken/"><link rel="canonical" href="http://[::1">'
    article = extract_article(aggregator_page(head=head, credit=credit), COPY_URL)
    assert article is not None
    assert article.source_link is None and article.canonical_link is None


def test_seven_bit_legacy_charset_is_decoded_as_declared() -> None:
    page = (
        "<html><head><meta charset='iso-2022-jp'></head><body><p>日本語のニュース</p></body></html>"
    )
    assert "日本語のニュース" in (decode_html(page.encode("iso-2022-jp")) or "")
