"""crawler.compression: Scrapy's decompression, without a charset guess over the compressed body."""

from __future__ import annotations

import gzip
import zlib

import pytest
from scrapy.downloadermiddlewares.httpcompression import (
    HttpCompressionMiddleware as ScrapyHttpCompressionMiddleware,
)
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Request, Response, TextResponse
from scrapy.utils.test import get_crawler

from crawler.compression import (
    DECOMPRESS_IN_WORKER,
    BodyTooLarge,
    HttpCompressionMiddleware,
    decompress_body,
    worker_decodes,
)
from crawler.config import CrawlSettings
from crawler.settings import crawl_scrapy_settings

PAGE = ("<!DOCTYPE html><html><head><title>Caf\u00e9 prices</title></head><body>"
        + "<p>Prices at the caf\u00e9 rose again, na\u00efvely or not.</p>" * 200 + "</body></html>").encode("utf-8")


class CountingResponse(HtmlResponse):
    """An HtmlResponse that counts how often its charset is guessed from its body."""

    guesses = 0

    def _body_inferred_encoding(self) -> str:
        CountingResponse.guesses += 1
        return super()._body_inferred_encoding()


def _compressed(encoding: bytes, body: bytes = PAGE, content_type: bytes = b"text/html") -> CountingResponse:
    data = gzip.compress(body) if encoding == b"gzip" else zlib.compress(body)
    return CountingResponse("http://news.test/a.html", body=data, request=Request("http://news.test/a.html"),
                            headers={b"Content-Type": content_type, b"Content-Encoding": encoding})


def _middleware(cls: type[ScrapyHttpCompressionMiddleware], **settings: object) -> ScrapyHttpCompressionMiddleware:
    return cls.from_crawler(get_crawler(settings_dict=settings))


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
def test_decompressed_as_scrapy_does(encoding: bytes) -> None:
    compressed = _compressed(encoding)
    ours = _middleware(HttpCompressionMiddleware).process_response(Request("http://news.test/a.html"), compressed)
    theirs = _middleware(ScrapyHttpCompressionMiddleware).process_response(
        Request("http://news.test/a.html"), _compressed(encoding))
    assert isinstance(ours, HtmlResponse) and type(ours) is type(theirs)
    assert ours.body == theirs.body == PAGE
    assert b"Content-Encoding" not in ours.headers
    assert ours.text == theirs.text == PAGE.decode("utf-8")
    assert (ours.url, ours.status) == (theirs.url, theirs.status)
    assert ours.request is compressed.request


def test_compressed_body_is_not_charset_guessed() -> None:
    CountingResponse.guesses = 0
    _middleware(ScrapyHttpCompressionMiddleware).process_response(Request("http://news.test/a.html"), _compressed(b"gzip"))
    # Scrapy's own middleware guesses once, over the gzip bytes: what this class exists to avoid.
    assert CountingResponse.guesses == 1
    CountingResponse.guesses = 0
    _middleware(HttpCompressionMiddleware).process_response(Request("http://news.test/a.html"), _compressed(b"gzip"))
    assert CountingResponse.guesses == 0


def test_declared_charset_still_applies() -> None:
    body = "<html><body><p>Caf\u00e9</p></body></html>".encode("cp1252")
    response = _middleware(HttpCompressionMiddleware).process_response(
        Request("http://news.test/a.html"), _compressed(b"gzip", body, b"text/html; charset=windows-1252"))
    assert isinstance(response, TextResponse)
    assert "Caf\u00e9" in response.text


def test_uncompressed_response_passes_unchanged() -> None:
    plain = HtmlResponse("http://news.test/a.html", body=PAGE, headers={b"Content-Type": b"text/html"})
    assert _middleware(HttpCompressionMiddleware).process_response(Request("http://news.test/a.html"), plain) is plain


def test_size_limit_applies_after_decompression() -> None:
    middleware = _middleware(HttpCompressionMiddleware, DOWNLOAD_MAXSIZE=len(PAGE) // 2)
    with pytest.raises(IgnoreRequest, match="DOWNLOAD_MAXSIZE"):
        middleware.process_response(Request("http://news.test/a.html"), _compressed(b"gzip"))


def test_crawl_settings_use_it_in_scrapys_place() -> None:
    middlewares = crawl_scrapy_settings(CrawlSettings(), "newsdedup-test")["DOWNLOADER_MIDDLEWARES"]
    assert middlewares["scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"] is None
    assert middlewares["crawler.compression.HttpCompressionMiddleware"] == 590


def test_article_bodies_are_left_compressed_for_the_worker() -> None:
    request = Request("http://news.test/a.html", meta={DECOMPRESS_IN_WORKER: True})
    response = _middleware(HttpCompressionMiddleware).process_response(request, _compressed(b"gzip"))
    assert isinstance(response, Response) and not isinstance(response, TextResponse)
    assert response.headers[b"Content-Encoding"] == b"gzip"
    assert decompress_body(response.body, "gzip", 0) == PAGE


@pytest.mark.parametrize("raw", [False, True])
def test_worker_inflates_deflate_wrapped_or_raw(raw: bool) -> None:
    compressor = zlib.compressobj(wbits=-15 if raw else 15)
    assert decompress_body(compressor.compress(PAGE) + compressor.flush(), "deflate", 0) == PAGE


def test_worker_gunzips_members_layers_and_damaged_ends() -> None:
    assert decompress_body(gzip.compress(PAGE[:100]) + gzip.compress(PAGE[100:]), "gzip", 0) == PAGE
    assert decompress_body(zlib.compress(gzip.compress(PAGE)), "gzip, deflate", 0) == PAGE
    truncated = decompress_body(gzip.compress(PAGE)[:-100], "x-gzip", 0)
    assert truncated and PAGE.startswith(truncated)
    with pytest.raises(zlib.error):
        decompress_body(b"\x1f\x8b\x08\x00 not gzip at all", "gzip", 0)


def test_worker_refuses_a_bomb_at_the_size_limit() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20))
    with pytest.raises(BodyTooLarge):
        decompress_body(bomb, "gzip", 1 << 20)
    assert len(decompress_body(bomb, "gzip", 8 << 20)) == 8 << 20


def test_other_codings_are_still_decompressed_in_the_service() -> None:
    assert not worker_decodes([b"br"]) and not worker_decodes([b"gzip, br"]) and worker_decodes([b"gzip"])
