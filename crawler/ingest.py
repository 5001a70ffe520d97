"""Batch ingest: JSON Lines and WARC records into Articles, bad records reported and skipped."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any

from dedup.article import Article

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class RawRecord:
    """One input record before extraction; `problem` is set when it must be skipped."""

    line: int
    url: str = ""
    html: bytes | str | None = None
    text: str | None = None
    title: str = ""
    published: datetime | None = None
    encoding: str | None = None
    problem: str | None = None


def parse_date(value: Any) -> datetime | None:
    """An ISO 8601 or RFC 2822 date, or None when it is neither."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _looks_binary(data: str | bytes) -> bool:
    sample = data[:4096]
    if isinstance(sample, str):
        sample = sample.encode("utf-8", "surrogatepass")
    if not sample:
        return False
    # A stray NUL in a text is cleaned at validation; binary data is full of control bytes.
    control = sum(1 for byte in sample if byte < 9 or 13 < byte < 32)
    return control / len(sample) > 0.05


def _lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """The lines of a stream, each read with a cap: a line longer than the record limit is passed
    over in chunks and given as None, never held whole."""
    while True:
        line = stream.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_RECORD_BYTES:
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(2**20)
        yield None


def jsonl_records(stream: IO[bytes]) -> Iterator[RawRecord]:
    """Records from JSON Lines; each bad line becomes a RawRecord with a problem."""
    for number, raw_line in enumerate(_lines(stream), start=1):
        if raw_line is None:
            yield RawRecord(number, problem=f"record larger than {MAX_RECORD_BYTES // 2**20} MiB")
            continue
        if not raw_line.strip():
            continue
        try:
            data = json.loads(raw_line)
        except (ValueError, UnicodeDecodeError) as exc:
            yield RawRecord(number, problem=f"not JSON ({exc.__class__.__name__}: {str(exc)[:80]})")
            continue
        if not isinstance(data, dict):
            yield RawRecord(number, problem="not a JSON object")
            continue
        url = data.get("url")
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            yield RawRecord(number, problem="no http(s) url")
            continue
        html, text = data.get("html"), data.get("text")
        title = data["title"] if isinstance(data.get("title"), str) else ""
        published = parse_date(data.get("published"))
        if isinstance(html, str) and html.strip():
            if _looks_binary(html):
                yield RawRecord(number, url=url, problem="binary content, not HTML")
                continue
            yield RawRecord(number, url=url.strip(), html=html, title=title, published=published)
        elif isinstance(text, str) and text.strip():
            if _looks_binary(text):
                yield RawRecord(number, url=url, problem="binary content, not text")
                continue
            yield RawRecord(number, url=url.strip(), text=text, title=title, published=published)
        else:
            yield RawRecord(number, url=url, problem="no html or text (or empty)")


def warc_records(stream: IO[bytes]) -> Iterator[RawRecord]:
    """HTML responses from a WARC file (gzipped or not)."""
    from warcio.archiveiterator import ArchiveIterator

    try:
        for number, entry in enumerate(ArchiveIterator(stream), start=1):
            if entry.rec_type != "response":
                continue
            url = entry.rec_headers.get_header("WARC-Target-URI") or ""
            headers = entry.http_headers
            content_type = (headers.get_header("Content-Type") if headers else "") or ""
            if "html" not in content_type.lower():
                continue
            status = headers.get_statuscode() if headers else ""
            if not (status or "").startswith("2"):
                # A 404 page or a redirect stub is the site's, not an article: skipped and counted.
                yield RawRecord(number, url=url, problem=f"HTTP {status or '(no status)'} response, not an article")
                continue
            body = entry.content_stream().read(MAX_RECORD_BYTES + 1)
            if len(body) > MAX_RECORD_BYTES:
                yield RawRecord(number, url=url, problem="response larger than the record limit")
                continue
            encoding = None
            if "charset=" in content_type.lower():
                encoding = content_type.lower().split("charset=", 1)[1].split(";")[0].strip() or None
            yield RawRecord(number, url=url, html=body, encoding=encoding)
    except Exception as exc:  # warcio raises many kinds on a damaged archive
        yield RawRecord(0, problem=f"WARC stream damaged: {exc}")


def _own_stdin(stdin: IO[bytes]) -> IO[bytes]:
    """A reader of its own on stdin's descriptor: a reader thread left blocked on it when a run stops
    early then holds no lock that interpreter shutdown needs (sys.stdin's)."""
    try:
        return open(os.dup(stdin.fileno()), "rb")
    except (AttributeError, OSError, ValueError):  # no descriptor (an in-memory stream): read it directly
        return stdin


class Source:
    """An input file or stdin read record by record (WARC by name or magic, else JSON Lines, gzip
    allowed), with how many of its bytes have been read and its size when it has one."""

    def __init__(self, path: str, stdin: IO[bytes]) -> None:
        self.path = path
        self._file: IO[bytes] = _own_stdin(stdin) if path == "-" else open(path, "rb")
        self.total_bytes: int | None = None
        if path != "-":
            try:
                status = os.fstat(self._file.fileno())
                self.total_bytes = status.st_size if stat.S_ISREG(status.st_mode) else None
            except (OSError, ValueError):
                self.total_bytes = None

    def bytes_read(self) -> int | None:
        """Bytes of the file read so far (compressed bytes for a gzip file); None for stdin."""
        if self.total_bytes is None:
            return None
        try:
            return self._file.tell()
        except (OSError, ValueError):
            return None

    def records(self) -> Iterator[RawRecord]:
        """The records, one at a time: nothing is read ahead of what the caller takes."""
        handle = self._file
        peek = handle.peek(8)[:8] if hasattr(handle, "peek") else b""
        if peek[:2] == b"\x1f\x8b" and not self.path.endswith((".warc.gz", ".arc.gz")):
            handle = gzip.GzipFile(fileobj=handle)  # type: ignore[assignment]
            peek = b""
        if self.path.endswith((".warc", ".warc.gz")) or peek.startswith(b"WARC/"):
            yield from warc_records(handle)
        else:
            yield from jsonl_records(io.BufferedReader(handle) if not hasattr(handle, "peek") else handle)  # type: ignore[type-var]

    def close(self) -> None:
        # stdin's reader is left open: a reader thread may still be blocked on it (closing would wait).
        if self.path != "-":
            self._file.close()


def open_records(path: str, stdin: IO[bytes]) -> Iterator[RawRecord]:
    """Records from a path ('-' for stdin): WARC by name or magic, else JSON Lines (gz allowed)."""
    source = Source(path, stdin)
    try:
        yield from source.records()
    finally:
        source.close()


def to_article(raw: RawRecord, source: str) -> Article | str:
    """The Article for a record, or the reason it has none (extraction runs here, off the loop)."""
    if raw.html is not None:
        from crawler.extract import extract_article

        if _looks_binary(raw.html):
            return "binary content, not HTML"
        article = extract_article(raw.html, raw.url, headers_encoding=raw.encoding, source=source)
        if article is None:
            # A page with no article text (video page, section front, broken markup) is still
            # recorded, as "thin": it is never merged with anything.
            return Article(url=raw.url, text="", published=raw.published, source=source)
        if raw.published and not article.published:
            from dataclasses import replace

            article = replace(article, published=raw.published)
        return article
    assert raw.text is not None
    return Article(url=raw.url, text=raw.text, title=raw.title, published=raw.published, source=source)


def extract_record(raw: RawRecord, source: str = "ingest") -> Article | str:
    """One record to an Article or the reason it is set aside; never raises (one bad page never
    stops a batch)."""
    if raw.problem:
        return raw.problem
    try:
        return to_article(raw, source)
    except Exception as exc:  # the boundary of one record
        return f"extraction failed: {exc.__class__.__name__}: {exc}"


def extract_batch(records: list[RawRecord]) -> list[Article | str]:
    """Worker: extract_record for a batch of records, in order."""
    return [extract_record(raw) for raw in records]


def to_articles(records: Iterable[RawRecord], source: str) -> Iterator[tuple[RawRecord, Article | str]]:
    for raw in records:
        yield raw, (raw.problem or to_article(raw, source))
