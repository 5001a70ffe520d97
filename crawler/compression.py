"""HTTP decompression: Scrapy's, without guessing the charset of the still-compressed bytes, and for
article pages left to the extraction worker (decompress_body), which reads the page anyway."""

from __future__ import annotations

import zlib

from scrapy.downloadermiddlewares.httpcompression import (
    HttpCompressionMiddleware as ScrapyHttpCompressionMiddleware,
)
from scrapy.http import Request, Response, TextResponse

DECOMPRESS_IN_WORKER = "newsdedup_decompress_in_worker"
"""Request meta key: a gzip or deflate body of this request's response reaches the spider compressed."""
WORKER_ENCODINGS = frozenset({b"gzip", b"x-gzip", b"deflate"})
"""The content codings decompress_body undoes (br and zstd, rarer, stay with Scrapy in the service)."""


class BodyTooLarge(ValueError):
    """A body over the size limit once decompressed (a gzip bomb, or a page too large to read)."""


class HttpCompressionMiddleware(ScrapyHttpCompressionMiddleware):
    """Scrapy's HttpCompressionMiddleware (gzip, deflate, br, zstd; DOWNLOAD_MAXSIZE after decompression),
    handed a compressed text response as a plain Response; an article page in gzip or deflate is not
    decompressed here at all (see DECOMPRESS_IN_WORKER).

    Scrapy 2.19 builds the decompressed response with Response.replace(), which first reads every attribute
    of the compressed one, TextResponse.encoding included. For a page whose Content-Type names no charset,
    that decodes the compressed bytes and runs charset detection over them (about 1 ms of the event loop
    for a 200 KB page), for an answer the new response never uses: it is built with encoding=None.
    """

    def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        encodings = response.headers.getlist(b"Content-Encoding")
        if not encodings or request.method == "HEAD":
            return response
        if request.meta.get(DECOMPRESS_IN_WORKER) and response.status == 200 and worker_decodes(encodings):
            # Decompressed with the page's extraction, off the event loop (crawler.pipelines).
            return Response(**{name: getattr(response, name) for name in Response.attributes})
        if isinstance(response, TextResponse):
            # The same response without the text behaviour: replace() then reads nothing derived from the body.
            response = Response(**{name: getattr(response, name) for name in Response.attributes})
        return super().process_response(request, response)


def _codings(encodings: list[bytes]) -> list[bytes]:
    """The content codings a response's Content-Encoding headers name, in the order they were applied."""
    return [coding.strip().lower() for header in encodings for coding in header.split(b",") if coding.strip()]


def worker_decodes(encodings: list[bytes]) -> bool:
    """Whether decompress_body undoes every content coding these Content-Encoding headers name."""
    codings = _codings(encodings)
    return bool(codings) and all(coding in WORKER_ENCODINGS for coding in codings)


def decompress_body(body: bytes, content_encoding: str, max_size: int) -> bytes:
    """A body with its gzip/deflate content codings undone (the last applied first), at most max_size bytes
    (0: no limit; raises BodyTooLarge beyond). A truncated or damaged stream gives what it holds, as Scrapy's
    decompression does; one that holds nothing raises zlib.error."""
    for coding in reversed(_codings([content_encoding.encode("latin-1")])):
        if coding not in WORKER_ENCODINGS:
            break
        body = _inflate(body, coding != b"deflate", max_size)
    return body


_CHUNK = 1 << 16
"""Output bytes per decompression step: the size limit is checked, and a damaged end loses only its step."""


def _inflate(data: bytes, gzipped: bool, max_size: int) -> bytes:
    output = bytearray()
    # gzip: every member in turn; deflate: zlib-wrapped, or raw as some servers send it.
    attempts = (31,) if gzipped else (15, -15)
    for number, wbits in enumerate(attempts):
        decompressor = zlib.decompressobj(wbits)
        pending = data
        try:
            while pending:
                output += decompressor.decompress(pending, _CHUNK)
                if max_size and len(output) > max_size:
                    raise BodyTooLarge(f"larger than {max_size} bytes once decompressed ({len(data)} bytes compressed)")
                if decompressor.unconsumed_tail:
                    pending = decompressor.unconsumed_tail
                elif gzipped and decompressor.eof and decompressor.unused_data:
                    pending, decompressor = decompressor.unused_data, zlib.decompressobj(wbits)
                else:
                    break
            return bytes(output)
        except zlib.error:
            if output:  # a damaged end (or trailing bytes): what came before it is the page
                return bytes(output)
            if number == len(attempts) - 1:
                raise
    return bytes(output)


__all__ = ["DECOMPRESS_IN_WORKER", "BodyTooLarge", "HttpCompressionMiddleware", "decompress_body", "worker_decodes"]
