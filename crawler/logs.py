"""Service logs: text or one JSON object per line, with the source and URL as fields of their own."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FIELDS = ("source", "url")
"""Attributes a log record may carry (logging's `extra`): what the line is about."""


def about(source: str | None, url: str | None = None, **more: Any) -> dict[str, Any]:
    """The `extra` for a log line about a source, or one URL of it."""
    fields = {"source": source, **more}
    if url is not None:
        fields["url"] = url
    return fields


class TextFormatter(logging.Formatter):
    """Time, level, logger, then "source=NAME url=URL:" when the line is about one, then the message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        subject = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None))
        if subject:
            record.message = f"{subject}: {record.message}"
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, source and url (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in (*FIELDS, "canonical_url", "canonical_id", "kind"):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Service logs on stderr, text or JSON; Scrapy's own chatter only from WARNING up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.WARNING if level > logging.DEBUG else logging.INFO
    for name in ("scrapy", "twisted", "apscheduler", "trafilatura", "htmldate", "charset_normalizer"):
        logging.getLogger(name).setLevel(quiet)
