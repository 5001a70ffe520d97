"""Dead letters: records that could not be decided, kept on a stream with their error for an operator.

A record lands here once (validation refused it, or deciding it raised); it is never retried on its
own, so one bad record can neither stop the decider nor come back after every restart. An operator
lists, retries (after a fix) or drops them (`newsdedup dead`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from dedup.article import Article, Decision
from dedup.engine import Engine, Fingerprinted
from dedup.keys import Keys
from dedup.keys import reply_text as _text
from dedup.validate import MAX_TEXT_CHARS, shown, validate

log = logging.getLogger(__name__)

MAXLEN = 10_000
"""Dead letters kept, the newest (approximately: the stream is trimmed in whole nodes)."""
MAX_ERROR_CHARS = 2000
_FIELDS = ("url", "text", "title", "final_url", "published", "canonical_link", "source_link", "site",
           "fetched_at", "source")
# Server states in which Redis refuses work for a while: no record's fault, so never dead-lettered.
_SERVER_STATES = ("OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MISCONF",
                  "NOREPLICAS", "NOSCRIPT")
_SERVER_STATE = re.compile(rf"(?:^|\s-)(?:{'|'.join(_SERVER_STATES)})\b")


@dataclass(frozen=True)
class DeadLetter:
    """One record on the dead-letter stream."""

    id: str
    """The stream entry id (its first part is when it was added, in ms)."""
    stage: str
    """"validate" (refused at entry), "decide" (deciding it failed) or "inbox" (unreadable entry)."""
    error: str
    origin: str
    """Where it came from: the source name, or the ingest file and line."""
    attempts: int
    record: dict[str, Any]
    """The article's fields as JSON values (dates as ISO strings); {} when none could be read."""

    @property
    def at(self) -> float:
        return int(self.id.split("-", 1)[0]) / 1000

    @property
    def url(self) -> str:
        return str(self.record.get("url") or "")

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "stage": self.stage, "error": self.error, "origin": self.origin,
                "attempts": self.attempts, "url": self.url, "record": self.record}


def record_of(article: Article) -> dict[str, Any]:
    """An article as JSON values, verbatim (lone surrogates survive as JSON escapes) but for very long text."""
    record: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(article, name, None)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif not isinstance(value, str):
            value = repr(value)
        record[name] = value[: 2 * MAX_TEXT_CHARS] if name == "text" else value
    return record


def article_of(record: dict[str, Any]) -> Article:
    """The article a dead letter holds (raises ValueError when the record has none)."""
    if not isinstance(record.get("url"), str):
        raise ValueError("the dead letter holds no article (no url)")  # noqa: TRY004 - bad data, not a bad call
    kwargs: dict[str, Any] = {name: record[name] for name in _FIELDS if isinstance(record.get(name), str)}
    for name in ("published", "fetched_at"):
        if name in kwargs:
            try:
                kwargs[name] = datetime.fromisoformat(kwargs[name])
            except ValueError:
                del kwargs[name]
    kwargs.setdefault("text", "")
    return Article(**kwargs)


def error_text(exc: BaseException | str) -> str:
    """One line naming the error, safe to store and print."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return shown(" ".join(text.split()), MAX_ERROR_CHARS)


def server_trouble(exc: BaseException) -> bool:
    """True for Redis being unreachable or refusing work for now: retry later, blame no record."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)):
        return True
    if isinstance(exc, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError,
                        redis.exceptions.MasterDownError, redis.exceptions.ClusterDownError,
                        redis.exceptions.TryAgainError, redis.exceptions.SlotNotCoveredError)):
        return True
    if not isinstance(exc, redis.ResponseError):
        return False
    # A script's error wraps the server's: "Error running script (...): @user_script:16: ... -OOM ...".
    return _SERVER_STATE.search(str(exc)) is not None


def decide_each(engine: Engine, articles: list[Article | Fingerprinted]) -> list[Decision | Exception]:
    """Decide a batch in order; if the batch fails, decide each article alone so that one bad record
    fails only itself (its exception takes its place). Server trouble is raised, not blamed on a record."""
    if not articles:
        return []
    try:
        return list(engine.add_many(articles))
    except Exception as exc:
        if server_trouble(exc):
            raise
        log.warning("a batch of %d articles failed (%s): deciding them one by one", len(articles), error_text(exc))
    results: list[Decision | Exception] = []
    for article in articles:
        try:
            results.append(engine.add(article))
        except Exception as exc:  # the boundary of one article: it is dead-lettered by the caller
            if server_trouble(exc):
                raise
            results.append(exc)
    return results


class DeadLetters:
    """The dead-letter stream on one Redis client."""

    def __init__(self, client: redis.Redis, keys: Keys, maxlen: int = MAXLEN) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen

    def add(self, record: Article | dict[str, Any] | None, error: BaseException | str, *, stage: str,
            origin: str, attempts: int = 1, pipeline: redis.client.Pipeline | None = None) -> str | None:
        """Put one record on the stream; returns its entry id (None when written through a pipeline)."""
        fields = {
            "stage": stage, "error": error_text(error), "origin": shown(origin), "attempts": str(attempts),
            # ensure_ascii: a lone surrogate in a page's text is kept as an escape, never an encoding error.
            "record": json.dumps(record_of(record) if isinstance(record, Article) else (record or {})),
        }
        target = pipeline if pipeline is not None else self.client
        entry_id = target.xadd(self.keys.dead_letters, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        return None if pipeline is not None else _text(entry_id)

    def count(self) -> int:
        return int(self.client.xlen(self.keys.dead_letters))

    def read(self, limit: int | None = None, newest_first: bool = False) -> list[DeadLetter]:
        """Dead letters, oldest first (or newest first), at most `limit`."""
        key = self.keys.dead_letters
        raw: Any = self.client.xrevrange(key, count=limit) if newest_first else self.client.xrange(key, count=limit)
        return [_letter(entry_id, fields) for entry_id, fields in raw]

    def get(self, entry_ids: Iterable[str]) -> list[DeadLetter]:
        """The dead letters with these ids, in the order given (unknown ids left out)."""
        pipe = self.client.pipeline(transaction=False)
        ids = list(entry_ids)
        for entry_id in ids:
            pipe.xrange(self.keys.dead_letters, entry_id, entry_id, count=1)
        return [_letter(*found[0]) for found in pipe.execute() if found]

    def drop(self, entry_ids: Iterable[str]) -> int:
        """Remove dead letters; returns how many there were."""
        ids = list(entry_ids)
        return int(self.client.xdel(self.keys.dead_letters, *ids)) if ids else 0

    def retry(self, engine: Engine, letters: list[DeadLetter]) -> list[tuple[DeadLetter, Decision | str]]:
        """Decide each dead letter again: decided ones leave the stream; a failure stays, as a new entry
        with the new error and one more attempt. Returns each letter with its decision or error."""
        outcomes: list[tuple[DeadLetter, Decision | str]] = []
        for letter in letters:
            stage = letter.stage
            try:
                article = article_of(letter.record)
                stage = "validate"
                article = validate(article).article
                stage = "decide"
                decision: Decision | str = engine.add(article)
            except Exception as exc:  # the boundary of one record
                if server_trouble(exc):
                    raise
                decision = error_text(exc)
                pipe = self.client.pipeline(transaction=True)
                self.add(letter.record, decision, stage=stage, origin=letter.origin, attempts=letter.attempts + 1,
                         pipeline=pipe)
                pipe.xdel(self.keys.dead_letters, letter.id)
                pipe.execute()
            else:
                self.client.xdel(self.keys.dead_letters, letter.id)
            outcomes.append((letter, decision))
        if any(not isinstance(decision, str) for _, decision in outcomes):
            engine.emit_pending()
        return outcomes


def _letter(entry_id: bytes | str, fields: dict[Any, Any]) -> DeadLetter:
    values = {_text(k): _text(v) for k, v in fields.items()}
    try:
        record = json.loads(values.get("record") or "{}")
    except ValueError:
        record = {}
    try:
        attempts = int(values.get("attempts") or 1)
    except ValueError:
        attempts = 1
    return DeadLetter(id=_text(entry_id), stage=values.get("stage", ""), error=values.get("error", ""),
                      origin=values.get("origin", ""), attempts=attempts,
                      record=record if isinstance(record, dict) else {})
