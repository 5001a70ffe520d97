"""Batch ingest at any size: a bounded window of records in the extraction pool, records already in the
store passed over before extraction, the run's roles counted as stored now, and progress lines.

Memory stays bounded whatever the input: the reader thread holds at most READ_AHEAD batches ready
and the one it is reading, the pool at most `window` batches, the decider at most DECIDE_EVERY articles, and nothing is kept per article for
the whole run (the role each article of the run was counted under lives in Redis, in a few hashes that
are deleted at the end of the run and expire on their own if it is killed).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Self

from crawler.ingest import RawRecord, extract_batch
from dedup.article import Article, Decision
from dedup.deadletter import DeadLetters, decide_each, error_text
from dedup.engine import Engine
from dedup.urls import url_id
from dedup.validate import InvalidArticle, check_url, validate

log = logging.getLogger(__name__)

BATCH_RECORDS = 16
"""Records sent to an extraction worker at once."""
BATCH_BYTES = 4 * 2**20
"""A batch closes early when its records hold this much HTML or text."""
READ_AHEAD = 2
"""Batches the reader thread may hold ready beyond the ones in the pool."""
DECIDE_EVERY = 256
"""Articles decided together (the engine pipelines them in its own batches)."""
ROLES_TTL = 2 * 86400
"""Seconds the run's role hashes outlive a run that was killed before it could delete them."""
ROLE_SHARDS = 4096
"""Role hashes per run, by the first three hex digits of the article id: each stays a compact listpack
(under 512 fields) up to about two million articles per run, and they spread over cluster slots."""

_END = object()


@dataclass(frozen=True)
class Outcome:
    """What became of one input record."""

    raw: RawRecord
    decision: Decision | None = None
    article: Article | None = None
    skipped: str | None = None
    """Why the record was set aside before deciding (not an article, no text, damaged)."""
    failed: str | None = None
    """Why it could not be decided; it is on the dead-letter stream."""
    stage: str = ""
    notes: tuple[str, ...] = ()
    """Unusable fields dropped by validation."""
    known_id: str | None = None
    """Set when the record's article was already in the store: passed over before extraction."""


def record_id(raw: RawRecord) -> str | None:
    """The article id the record would be stored under (as the engine computes it), or None."""
    if raw.problem or not raw.url:
        return None
    try:
        return url_id(check_url(raw.url, local=True))
    except ValueError:  # BadURL included: extraction and validation report it
        return None


def batches(records: Iterable[RawRecord], size: int = BATCH_RECORDS,
            max_bytes: int = BATCH_BYTES) -> Iterator[list[RawRecord]]:
    """Records in batches of `size`, closed early at `max_bytes` of content."""
    batch: list[RawRecord] = []
    held = 0
    for raw in records:
        batch.append(raw)
        held += len(raw.html or raw.text or "")
        if len(batch) >= size or held >= max_bytes:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


class _Reader(threading.Thread):
    """Reads the input into batches ahead of the pool, each with the ids of its records already in the
    store (checked here, off the deciding thread), blocking when READ_AHEAD batches wait."""

    def __init__(self, records: Iterable[RawRecord], stop: threading.Event,
                 known: Callable[[list[RawRecord]], list[str | None]]) -> None:
        super().__init__(name="newsdedup-ingest-reader", daemon=True)
        self.records = records
        self.stop = stop
        self.known = known
        self.ready: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
        self.read = 0

    def run(self) -> None:
        try:
            for batch in batches(self.records):
                self.read += len(batch)
                if not self._put((batch, self.known(batch))):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.ready.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def take(self, wait: bool) -> object | None:
        """The next batch, _END or an exception; None when none is ready (or the run is stopping)."""
        while True:
            try:
                return self.ready.get(timeout=0.2) if wait else self.ready.get_nowait()
            except queue.Empty:
                if not wait or self.stop.is_set():
                    return None


class _Result(Protocol):
    def get(self, timeout: float | None = None) -> list[Article | str]: ...


class _Ready:
    def __init__(self, value: list[Article | str]) -> None:
        self.value = value

    def get(self, timeout: float | None = None) -> list[Article | str]:
        return self.value


class _InlinePool:
    """The pool's interface, extracting in this process (one worker)."""

    def apply_async(self, func: Callable[[list[RawRecord]], list[Article | str]],
                    args: tuple[list[RawRecord]]) -> _Result:
        return _Ready(func(*args))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _ignore_interrupt() -> None:
    """Pool worker start: Ctrl-C reaches the whole process group; the main process decides when to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _role_of_decision(decision: Decision) -> str:
    if decision.kind == "thin":
        return "thin"
    if decision.is_canonical:
        return "canonical"
    return decision.kind or "duplicate"


def role_of_record(kind: str | None, article_id: str, canonical_id: str) -> str:
    """What a stored article is now, as `export` and `status` see it: an early canonical that a better
    copy displaced is a duplicate, not a canonical."""
    if kind == "thin":
        return "thin"
    if canonical_id == article_id:
        return "canonical"
    return kind if kind in ("exact", "near", "excerpt") else "duplicate"


class RoleTally:
    """Roles of the articles a run decided, as stored now, with memory independent of the run's size.

    Each decision is counted under the role it got; the role is also written to the run's hashes in
    Redis. When a later decision changes a cluster's canonical (the engine reports what it replaced) or
    finds thin pages to repeat an article (Decision.adopted), only that cluster's members are re-read,
    and those of this run whose role changed are moved from the count they were under to the one they
    are under now.
    """

    def __init__(self, engine: Engine, run: str) -> None:
        self.engine = engine
        self.client = engine.client
        self.run = run
        self.counts: Counter[str] = Counter()
        self.corrected = 0

    def _key(self, article_id: str) -> str:
        return self.engine.keys.ingest_roles(self.run, int(article_id[:3], 16))

    def add(self, decisions: list[Decision]) -> None:
        """Count a batch of decisions, then correct the clusters whose canonical they changed."""
        fresh = [d for d in decisions if not d.known]
        if not fresh:
            return
        by_key: dict[str, dict[bytes, str]] = defaultdict(dict)
        for decision in fresh:
            role = _role_of_decision(decision)
            self.counts[role] += 1
            by_key[self._key(decision.article_id)][bytes.fromhex(decision.article_id)] = role
        pipe = self.client.pipeline(transaction=False)
        for key, mapping in by_key.items():
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, ROLES_TTL)
        pipe.execute()
        changed = {d.cluster for d in fresh if d.replaced or d.adopted}
        for cluster in sorted(changed):
            self._correct(cluster)

    def _correct(self, cluster: str) -> None:
        canonical_id, _, members = self.engine.cluster(cluster)
        canonicals = {cluster: canonical_id}
        now: dict[str, str] = {}
        for record in self.engine.get_many(members):
            if record.cluster not in canonicals:  # bridged into another cluster later in the same batch
                canonicals[record.cluster] = self.engine.cluster(record.cluster)[0]
            now[record.id] = role_of_record(record.kind, record.id, canonicals[record.cluster])
        ids = list(now)
        pipe = self.client.pipeline(transaction=False)
        for article_id in ids:
            pipe.hget(self._key(article_id), bytes.fromhex(article_id))
        before = pipe.execute()
        for article_id, counted in zip(ids, before, strict=True):
            if counted is None:  # not decided by this run
                continue
            was = counted.decode() if isinstance(counted, bytes) else str(counted)
            if was != now[article_id]:
                self.counts[was] -= 1
                self.counts[now[article_id]] += 1
                self.corrected += 1
                pipe.hset(self._key(article_id), bytes.fromhex(article_id), now[article_id])
        pipe.execute()

    def summary(self) -> Counter[str]:
        """canonical, duplicates, exact, near, excerpt, thin: the run's articles as stored now."""
        counts = Counter({role: n for role, n in self.counts.items() if n})
        counts["duplicates"] = sum(self.counts[k] for k in ("exact", "near", "excerpt", "duplicate"))
        counts.pop("duplicate", None)
        return counts

    def close(self) -> None:
        """Delete the run's role hashes (UNLINK: freed off Redis's main thread)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(ROLE_SHARDS):
            pipe.unlink(self.engine.keys.ingest_roles(self.run, shard))
        pipe.execute()


class Ingest:
    """Records in, outcomes out, in bounded memory: read ahead by a window, extracted in a pool,
    validated, decided in batches; records already in the store are passed over before extraction."""

    def __init__(self, engine: Engine, dead: DeadLetters, origin: str, *, workers: int = 1,
                 window: int | None = None, skip_known: bool = True, run: str | None = None) -> None:
        self.engine = engine
        self.dead = dead
        self.origin = origin
        self.workers = max(1, workers)
        self.window = window or max(2 * self.workers, DECIDE_EVERY // BATCH_RECORDS)
        """Batches in the extraction pool at once (each of BATCH_RECORDS records at most): enough to
        extract the next group of articles while the last one is decided."""
        self.skip_known = skip_known
        self.stop = threading.Event()
        self.tally = RoleTally(engine, run or f"{int(time.time() * 1000):x}")
        self.extracted = 0
        """Records sent to extraction (records passed over as known are not)."""
        self._reader: _Reader | None = None

    @property
    def read(self) -> int:
        """Records taken from the input so far."""
        return self._reader.read if self._reader else 0

    def _pool(self) -> Any:
        if self.workers <= 1:
            return _InlinePool()
        context = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
        return context.Pool(self.workers, initializer=_ignore_interrupt)

    def _known(self, batch: list[RawRecord]) -> list[str | None]:
        """For each record, its article id when that article is stored already (one EXISTS per key,
        pipelined: safe on a cluster, where one command may not span slots)."""
        ids = [record_id(raw) if self.skip_known else None for raw in batch]
        asked = [article_id for article_id in ids if article_id]
        if not asked:
            return [None] * len(batch)
        pipe = self.engine.client.pipeline(transaction=False)
        for article_id in asked:
            pipe.exists(self.engine.keys.article(article_id))
        found = {article_id for article_id, exists in zip(asked, pipe.execute(), strict=True) if exists}
        return [article_id if article_id in found else None for article_id in ids]

    def run(self, records: Iterable[RawRecord]) -> Iterator[Outcome]:
        """Outcomes of the records (set-aside ones as soon as known, decided ones batch by batch);
        after `stop` is set, the batches in flight are finished and nothing more is read."""
        self._reader = reader = _Reader(records, self.stop, self._known)
        reader.start()
        pending: list[tuple[RawRecord, Article, tuple[str, ...]]] = []
        in_flight: deque[tuple[list[RawRecord], list[str | None], _Result]] = deque()
        try:
            with self._pool() as pool:
                ended = False
                while True:
                    while not ended and not self.stop.is_set() and len(in_flight) < self.window:
                        item = reader.take(wait=not in_flight)
                        if item is None:
                            break
                        if item is _END:
                            ended = True
                            break
                        if isinstance(item, BaseException):
                            raise item
                        batch: list[RawRecord]
                        known: list[str | None]
                        batch, known = item  # type: ignore[misc]
                        to_extract = [raw for raw, article_id in zip(batch, known, strict=True) if not article_id]
                        self.extracted += len(to_extract)
                        result = pool.apply_async(extract_batch, (to_extract,)) if to_extract else _Ready([])
                        in_flight.append((batch, known, result))
                    if not in_flight:
                        if ended or self.stop.is_set():
                            break
                        continue
                    batch, known, result = in_flight.popleft()
                    yield from self._sort(batch, known, result.get(), pending)
                    if len(pending) >= DECIDE_EVERY:
                        yield from self._decide(pending)
            yield from self._decide(pending)
        finally:
            self.stop.set()

    def _sort(self, batch: list[RawRecord], known: list[str | None], extracted: list[Article | str],
              pending: list[tuple[RawRecord, Article, tuple[str, ...]]]) -> Iterator[Outcome]:
        results = iter(extracted)
        for raw, known_id in zip(batch, known, strict=True):
            if known_id:
                yield Outcome(raw, known_id=known_id)
                continue
            result = next(results)
            if isinstance(result, str):
                yield Outcome(raw, skipped=result)
                continue
            try:
                checked = validate(result)
            except InvalidArticle as exc:
                self.dead.add(result, str(exc), stage="validate", origin=f"{self.origin} line {raw.line}")
                yield Outcome(raw, article=result, failed=str(exc), stage="validate")
                continue
            pending.append((raw, checked.article, checked.dropped))

    def _decide(self, pending: list[tuple[RawRecord, Article, tuple[str, ...]]]) -> Iterator[Outcome]:
        if not pending:
            return
        results = decide_each(self.engine, [article for _, article, _ in pending])
        self.tally.add([result for result in results if isinstance(result, Decision)])
        outcomes = []
        for (raw, article, notes), result in zip(pending, results, strict=True):
            if isinstance(result, Exception):
                error = error_text(result)
                self.dead.add(article, error, stage="decide", origin=f"{self.origin} line {raw.line}")
                outcomes.append(Outcome(raw, article=article, failed=error, stage="decide", notes=notes))
            else:
                outcomes.append(Outcome(raw, article=article, decision=result, notes=notes))
        pending.clear()
        yield from outcomes


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def progress_line(read: int, decided: int, set_aside: int, elapsed: float,
                  position: int | None = None, total: int | None = None) -> str:
    """One progress line: records read, decided, set aside, records per second, and when the input's
    size is known, how much of it was read and the time left at the rate so far."""
    rate = (decided + set_aside) / elapsed if elapsed > 0 else 0.0
    line = (f"progress: {read:,} records read, {decided:,} decided, {set_aside:,} set aside, "
            f"{rate:,.0f} records/s")
    if total and position is not None:
        share = min(1.0, position / total)
        line += f", {share:.0%} of {_size(total)}"
        if 0 < share < 1 and elapsed > 0:
            line += f", ETA {_duration(elapsed * (1 - share) / share)}"
    return line


class ProgressMeter:
    """Writes a progress line every `interval` seconds (and on demand)."""

    def __init__(self, write: Callable[[str], None], interval: float = 5.0,
                 position: Callable[[], int | None] = lambda: None, total: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write = write
        self.interval = interval
        self.position = position
        self.total = total
        self.clock = clock
        self.started = clock()
        self.last = self.started

    def update(self, read: int, decided: int, set_aside: int, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        self.write(progress_line(read, decided, set_aside, now - self.started, self.position(), self.total))
