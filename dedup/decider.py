"""Deciding on Redis or Redis Cluster: pipelined single-key reads, the policy in Python, fenced writes.

One process decides at a time per key prefix: it holds the *decider lease* (`<prefix>{decider}:lease`,
with an expiry and a fencing token from `<prefix>{decider}:fence`). A batch is decided like this:

1. reads, pipelined, one key per command (dedup.wire: a cluster client's grouped per node): the records of the
   batch's ids, the index buckets of every article (LSH bands and spin keys), then the candidates'
   records (the spin keys' too: the spin stage, `Decider.spun`, verifies a few), then their clusters;
   anything else a decision needs is read on demand. Reads go through `Store`, an overlay in which
   article k of a batch sees what articles 1..k-1 wrote.
2. the policy (dedup/policy.py) decides every article in order, writing to the overlay only.
3. the batch's complete write set, with absolute values (records, clusters, bucket fields, counters,
   stream entries with explicit ids), is written as one journal value (`<prefix>{decider}:journal`)
   by a script that first checks the fencing token: a process that lost the lease cannot journal.
4. the write set is applied in one pipeline, if the lease is still valid for a good while, and the
   journal is deleted (fenced again).

Texts (dedup.record text forms): a canonical queued by its own decision keeps, in its record, only the
id of the stream entry that carries its text, the id this write set assigns (so a replay writes the
same); a copy's text is a delta against its canonical's, computed in the decision; forgetting an
article gives the copies stored against it their whole text back in the same write set.

A process killed between 3 and 4 leaves the journal: whoever takes the lease next applies it first.

Records and cluster values the decider has read or written are kept in a process-local LRU
(`ValueCache`) while nobody else can have written them: it is used only by a process that held the
lease last, which it knows from the fencing token (each new hold takes the next number; a gap means
another process held the lease in between, and the cache is emptied). Each batch also notes the
cacheable keys it writes on `<prefix>{decider}:changes` (in the journal script, fenced alike), so a
process that finds others held the lease since drops only what they wrote. A hot story's candidates
are then read from memory instead of Redis: deciding its 500th copy costs Redis no more reads than the
5th, with one deciding process or several taking turns.
Every write is idempotent (SET/DEL of whole values, HSET of absolute counters, list appends guarded
by the list's expected length, stream entries whose explicit id is refused the second time), so a
replay of a journal already partly or wholly applied changes nothing twice.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import zlib

import redis

from dedup import policy
from dedup import record as rec
from dedup.index import SPIN_BAND, split_fields
from dedup.keys import Keys
from dedup.policy import ClusterValue, Facts
from dedup.recent import RecentTexts
from dedup.signature import MIN_TOKENS, jaccard, signature_values
from dedup.spin import SPIN_MAX_VERIFIED, SPIN_MIN_SHARED, SpinVerifier, worth_profiling
from dedup.wire import pack, run, unpack  # noqa: F401 - pack and unpack: the journal's format, used as dec.pack

log = logging.getLogger(__name__)

LEASE_TTL_MS = 10_000
"""How long a decider lease lasts without renewal; a process killed holding it delays others this long."""
APPLY_MARGIN_MS = 3_000
"""Left of the lease needed to apply a journalled batch; with less, the batch is left to the next holder."""
QUEUE_AFTER_S = 0.5
"""A process that has waited this long for the lease queues as its next holder: a holder that releases
and takes it again batch after batch would otherwise keep it from the others for as long as it runs."""
QUEUE_MS = 1_000
"""How long a queued place lasts unless the waiter polls again (every 0.15 s at most): a dead waiter
holds up the others this long at most."""


class LeaseLost(RuntimeError):
    """The decider lease went to another process before this one could apply its writes."""


def lease_key(keys: Keys) -> str:
    return f"{keys.prefix}{{decider}}:lease"


def fence_key(keys: Keys) -> str:
    """The lease's fencing counter: INCR'd for each new hold, so a holder's token carries a number
    larger than every earlier holder's.

    It never expires, on purpose. With an expiry it could lapse between two holds and start again at
    1, and a token's number would no longer tell a later holder from an earlier one: a counter that can
    go backwards is no fence. One small key per index kept for good is the cheaper side, and a key
    without an expiry is never evicted under a volatile-* maxmemory policy. (The lease scripts compare
    whole tokens, whose owner part is random, so even a counter lost with the database could not give
    two holders one token.)
    """
    return f"{keys.prefix}{{decider}}:fence"


def journal_key(keys: Keys) -> str:
    return f"{keys.prefix}{{decider}}:journal"


def changes_key(keys: Keys) -> str:
    """Each hold of the lease (an entry `<fence number>-0`, written when it is taken) and the cacheable
    keys each of its batches wrote (`<fence number>-<batch>`), the newest CHANGES_KEPT entries: a
    ValueCache that finds other processes held the lease since drops only those keys, if every hold
    in between is there (see ValueCache.hold)."""
    return f"{keys.prefix}{{decider}}:changes"


CHANGES_KEPT = 1024
"""Entries the changes stream keeps, about: a hold's own (tiny) and one per batch it journals (about
2.5 KB for a batch of 64 articles). A process that finds more holds than that since its own drops its
whole cache."""
CHANGES_TTL_MS = 86_400_000
"""The changes stream goes a day after the last hold (a process that has not decided for longer drops
its whole cache, as it would for a trimmed stream)."""


def queue_key(keys: Keys) -> str:
    """The owner of the process that has waited long enough to take the lease next (QUEUE_AFTER_S)."""
    return f"{keys.prefix}{{decider}}:next"


# The lease's scripts touch only keys of one hash tag ({decider}): atomic on a cluster as well.
# A free lease goes to the queued waiter (KEYS[4]) if there is one; a waiter asks to be queued (ARGV[4])
# once it has waited QUEUE_AFTER_S, and keeps its place while it polls.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
local queued = redis.call('GET', KEYS[4])
if current and current ~= ARGV[2] then
  if ARGV[4] == '1' and (not queued or queued == ARGV[1]) then
    redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[5])
  end
  return {0, redis.call('PTTL', KEYS[1])}
end
local token = ARGV[2]
if not current then
  if queued and queued ~= ARGV[1] then return {0, redis.call('PTTL', KEYS[4])} end
  if queued then redis.call('DEL', KEYS[4]) end
  local number = redis.call('INCR', KEYS[2])
  token = number .. ':' .. ARGV[1]
  if KEYS[5] then
    redis.pcall('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], number .. '-0', 'k', '')
    redis.call('PEXPIRE', KEYS[5], ARGV[7])
  end
end
redis.call('SET', KEYS[1], token, 'PX', ARGV[3])
return {1, token, redis.call('GET', KEYS[3]) or ''}
"""
# Also notes the batch's cacheable keys on the changes stream (KEYS[3]), if given; an entry id the
# stream refuses (a fence counter lost with the database) is skipped: that note is only a hint.
_JOURNAL = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if KEYS[3] and ARGV[5] ~= '' then
  redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], ARGV[4], 'k', ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
end
return 1
"""
_CLEAR = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
return 1
"""
# Deletes the lease if it holds our token; also a waiter's place in the queue if it holds our owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""
# A list append that a replay does not repeat: only when the list still has the length it had when
# the batch was decided (one key: fine on a cluster).
_GUARDED_RPUSH = """
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
return 1
"""


class Lease:
    """This process's hold on the decider lease of one key prefix (re-entrant within a process)."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl_ms: int = LEASE_TTL_MS) -> None:
        self.client = client
        self.keys = keys
        self.ttl_ms = ttl_ms
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.token = ""
        self.valid_until = 0.0
        self.depth = 0
        self._lock = threading.RLock()
        self._acquire = client.register_script(_ACQUIRE)
        self._journal = client.register_script(_JOURNAL)
        self._clear = client.register_script(_CLEAR)
        self._release = client.register_script(_RELEASE)
        self._keys = [lease_key(keys), fence_key(keys), journal_key(keys), queue_key(keys)]
        self._changes = changes_key(keys)
        self.batches = 0
        """Batches journalled in the current hold (the changes stream's entry ids)."""

    def _try(self, queue: bool = False) -> tuple[bool, bytes]:
        started = time.monotonic()
        result = self._acquire(keys=[*self._keys, self._changes],
                               args=[self.owner, self.token, self.ttl_ms, int(queue), QUEUE_MS, CHANGES_KEPT,
                                     CHANGES_TTL_MS])
        if int(result[0]) != 1:
            return False, b""
        self.token = result[1].decode() if isinstance(result[1], bytes) else str(result[1])
        self.valid_until = started + self.ttl_ms / 1000
        return True, result[2] or b""

    def acquire(self, replay: Callable[[bytes], None], timeout: float | None = None) -> None:
        """Take the lease (waiting with backoff while another process holds it); a journal a process
        left is applied first (replay)."""
        self._lock.acquire()
        if self.depth:
            self.depth += 1
            try:
                if self.remaining() < self.ttl_ms / 2000:
                    self.renew()
            except BaseException:
                self.depth -= 1
                self._lock.release()
                raise
            return
        waiting = time.monotonic()
        deadline = None if timeout is None else waiting + timeout
        delay = 0.002
        try:
            while True:
                ok, leftover = self._try(queue=time.monotonic() - waiting >= QUEUE_AFTER_S)
                if ok:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    self._release(keys=self._keys[3:], args=[self.owner])  # our place in the queue, if any
                    raise TimeoutError("the decider lease is held by another process")
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.1)
            self.depth = 1
            self.batches = 0
            if leftover:
                log.warning("decider: applying the writes of a batch another process journalled and left")
                replay(leftover)
                self.clear()
        except BaseException:
            try:
                if self.depth:
                    self.depth = 0
                    self._release(keys=self._keys[:1], args=[self.token])
            except redis.RedisError:
                pass  # it expires on its own
            finally:
                self._lock.release()
            raise

    def release(self) -> None:
        try:
            self.depth -= 1
            if self.depth == 0:
                self.valid_until = 0.0
                try:
                    self._release(keys=self._keys[:1], args=[self.token])
                except redis.RedisError as exc:  # it expires on its own
                    log.warning("decider lease not released: %s", exc)
        finally:
            self._lock.release()

    def remaining(self) -> float:
        return self.valid_until - time.monotonic()

    def renew(self) -> None:
        ok, _ = self._try()
        if not ok:
            raise LeaseLost("the decider lease was taken over by another process")

    def journal(self, payload: bytes, changed: Iterable[str] = ()) -> None:
        """Journal a batch's write set (fenced); `changed`: the cacheable keys it writes, noted on the
        changes stream for the other processes' caches."""
        started = time.monotonic()
        note = "\n".join(changed).encode()
        if note:
            self.batches += 1
            keys = [self._keys[0], self._keys[2], self._changes]
            args = [self.token, payload, self.ttl_ms, f"{self.fence_number}-{self.batches}", note, CHANGES_KEPT,
                    CHANGES_TTL_MS]
        else:
            keys, args = [self._keys[0], self._keys[2]], [self.token, payload, self.ttl_ms]
        if not int(self._journal(keys=keys, args=args)):
            raise LeaseLost("the decider lease was taken over by another process: batch not written")
        self.valid_until = started + self.ttl_ms / 1000

    @property
    def fence_number(self) -> int:
        """The fencing number of the current hold (0: none, or a token without one)."""
        head = self.token.split(":", 1)[0]
        return int(head) if head.isdigit() else 0

    def changes_between(self, after: int, before: int) -> set[str] | None:
        """The cacheable keys the holds numbered after < n < before wrote (key names without the
        prefix), or None when that is not known: a hold with no entry of its own (`<n>-0`, noted when
        it was taken) was trimmed from the stream or taken by a version that notes nothing."""
        if before - after - 1 > CHANGES_KEPT:
            return None
        holds: set[int] = set()
        changed: set[str] = set()
        for entry_id, entry in self.client.xrange(self._changes, f"{after + 1}-0", f"{before - 1}-18446744073709551615"):
            number, batch = _str(entry_id).split("-", 1)
            if batch == "0":
                holds.add(int(number))
            note = entry.get(b"k") or entry.get("k") or b""
            changed.update(_str(note).split("\n"))
        if len(holds) != before - after - 1:
            return None
        changed.discard("")
        return changed

    def clear(self) -> None:
        self._clear(keys=[self._keys[0], self._keys[2]], args=[self.token])


def _string_writes(commands: list[tuple]) -> Iterable[tuple[str, bytes | None]]:
    """The string keys a write set sets (with their values) or deletes (None), in order."""
    for command in commands:
        if command[0] == b"SET":
            yield _str(command[1]), command[2]
        elif command[0] in (b"DEL", b"UNLINK"):
            for key in command[1:]:
                yield _str(key), None


_ENTRY_OVERHEAD = 160
"""Bytes a cached entry costs beyond its key's and value's lengths (two Python objects and a slot of
the ordered dict, measured with tracemalloc on CPython 3.11): the size counts what the process holds."""


class ValueCache:
    """Records and cluster values as Redis holds them, kept by the process that holds the decider
    lease, so that reading them again costs no round trip (an LRU bounded in bytes).

    Coherent because every write to those keys is a decider write set, applied under the lease: the
    cache takes in what its own process reads and applies; at a new hold whose fencing number is not
    the next after this process's last, it drops the keys the holds in between noted on the changes
    stream (everything if the stream no longer reaches back that far); and it is emptied when a
    journal left by a batch is replayed and when a batch fails (`clear`)."""

    def __init__(self, keys: Keys, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.fence: int | None = None
        self.hits = 0
        self.misses = 0
        self.resets = 0
        """Times the whole cache was dropped at a new hold (another process's writes not known)."""
        self.invalidations = 0
        """Times only the keys other processes wrote were dropped at a new hold."""
        self._values: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._prefix = keys.prefix
        self._prefixes = (f"{keys.prefix}a:", f"{keys.prefix}c:")

    def changed_keys(self, commands: list[tuple]) -> list[str]:
        """The cacheable keys a write set writes, without the prefix (for the changes stream: noted
        whether this process caches or not, since others may)."""
        start = len(self._prefix)
        return [key[start:] for key, _ in _string_writes(commands) if key.startswith(self._prefixes)]

    def hold(self, number: int, changes: Callable[[int, int], set[str] | None] | None = None) -> None:
        """A new hold of the lease, with this fencing number. If this process held it last (the number
        follows the one it had), the cache stays; if others held it since, the keys they wrote are
        dropped (`changes(after, before)`: the keys the holds between wrote, None if unknown), or
        everything when that is not known."""
        with self._lock:
            last = self.fence
            self.fence = number or None
        if not number or last is None or number <= last:
            self._forget_all()
        elif number > last + 1:
            changed = changes(last, number) if changes is not None and len(self._values) else set()
            if changed is None:
                self._forget_all()
            else:
                self.invalidations += 1
                for suffix in changed:
                    self.put(self._prefix + suffix, None)

    def _forget_all(self) -> None:
        with self._lock:
            if self._values:
                self.resets += 1
            self._clear()

    def clear(self) -> None:
        """Forget everything, and the hold: the next hold starts empty."""
        with self._lock:
            self._clear()
            self.fence = None

    def _clear(self) -> None:
        self._values.clear()
        self.size = 0

    def cacheable(self, key: str) -> bool:
        return self.max_bytes > 0 and key.startswith(self._prefixes)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._values.get(key)
            if value is None:
                self.misses += 1
                return None
            self._values.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: bytes | None) -> None:
        """What Redis holds at key now (None: nothing)."""
        if not self.cacheable(key):
            return
        with self._lock:
            old = self._values.pop(key, None)
            if old is not None:
                self.size -= len(old) + len(key) + _ENTRY_OVERHEAD
            if value is None:
                return
            self._values[key] = value
            self.size += len(value) + len(key) + _ENTRY_OVERHEAD
            while self.size > self.max_bytes and self._values:
                evicted_key, evicted = self._values.popitem(last=False)
                self.size -= len(evicted) + len(evicted_key) + _ENTRY_OVERHEAD

    def applied(self, commands: list[tuple]) -> None:
        """A write set applied: the values it SET and the keys it DELeted."""
        for key, value in _string_writes(commands):
            self.put(key, value)

    def __len__(self) -> int:
        return len(self._values)


# The write set: a list of commands (tuples of bytes), journalled packed as sent (pack/unpack).


def apply(client: redis.Redis, commands: list[tuple], packed: bytes | None = None) -> None:
    """Run a write set in one round trip (non-transactional); a stream entry already added is skipped."""
    if not commands:
        return
    for command, result in zip(commands, run(client, commands, packed), strict=True):
        if isinstance(result, Exception):
            if command[0] == b"XADD" and "equal or smaller" in str(result):
                continue  # added by the run that journalled it: a replay adds nothing twice
            raise result


def _value(reply: object) -> bytes | None:
    if isinstance(reply, Exception):
        raise reply
    return reply  # type: ignore[return-value]


def _b(value: str | int | float) -> bytes:
    return str(value).encode()


@dataclass
class StreamEvent:
    fields: list[tuple[str, str]]
    deferred: bool = False
    """Its canonical is an older member: queued after the batch's own, if still canonical then."""
    cluster: bytes = b""
    canonical: bytes = b""
    entry_id: str = ""
    """The stream entry id it is added with (set when the write set is built)."""
    text_of: bytes = b""
    """The article whose text this event carries and whose record keeps only this entry's id in
    place of its text (record.TEXT_STREAM): the article just decided, queued as a canonical."""


@dataclass
class Store:
    """Reads through one overlay for a batch; records what the batch writes (final values only)."""

    client: redis.Redis
    keys: Keys
    values: dict[str, bytes | None] = field(default_factory=dict)
    fields: dict[tuple[str, bytes], bytes | None] = field(default_factory=dict)
    facts: dict[bytes, Facts | None] = field(default_factory=dict)
    dirty_records: dict[bytes, None] = field(default_factory=dict)
    dirty_values: dict[str, None] = field(default_factory=dict)
    dirty_fields: dict[tuple[str, bytes], None] = field(default_factory=dict)
    stats: dict[str, int] | None = None
    dirty_stats: dict[str, None] = field(default_factory=dict)
    appends: dict[str, list[bytes]] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)
    zadds: dict[str, dict[bytes, int]] = field(default_factory=dict)
    srems: dict[str, list[bytes]] = field(default_factory=dict)
    hdels: list[tuple[str, bytes]] = field(default_factory=list)
    extra: list[list[bytes]] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    stream_last: tuple[int, int] | None = None
    texts: dict[str, str | None] = field(default_factory=dict)
    """Texts of canonical stream entries read (None: the entry was trimmed)."""
    reads: int = 0
    """Round trips made for values not prefetched (a measure of how well prefetching works)."""
    cache: ValueCache | None = None
    """Values known without a read (only for a Store used under the lease: see ValueCache)."""

    # Reading

    def prefetch(self, keys: Iterable[str], fields: Iterable[tuple[str, bytes]] = ()) -> None:
        """Read these keys and hash fields in one pipeline (those not read yet)."""
        wanted = self.not_known(keys)
        wanted_fields = [f for f in dict.fromkeys(fields) if f not in self.fields]
        if not wanted and not wanted_fields:
            return
        results = run(self.client, [(b"GET", key) for key in wanted] +
                      [(b"HGET", key, name) for key, name in wanted_fields])
        for key, value in zip(wanted, results, strict=False):
            self.read(key, _value(value))
        for pair, value in zip(wanted_fields, results[len(wanted):], strict=True):
            self.fields[pair] = _value(value)

    def prefetch_records(self, ids: Iterable[bytes]) -> None:
        self.prefetch(self.keys.article(i.hex()) for i in ids if i not in self.facts)

    def not_known(self, keys: Iterable[str]) -> list[str]:
        """Of these keys, those neither read yet nor in the ValueCache (whose values are taken in)."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self.values]
        if self.cache is None:
            return wanted
        missing = []
        for key in wanted:
            value = self.cache.get(key)
            if value is None:
                missing.append(key)
            else:
                self.values[key] = value
        return missing

    def read(self, key: str, value: bytes | None) -> None:
        """A value read from Redis (kept in the ValueCache too)."""
        self.values[key] = value
        if self.cache is not None and value is not None:
            self.cache.put(key, value)

    def get(self, key: str) -> bytes | None:
        if self.not_known([key]):
            self.reads += 1
            self.read(key, self.client.get(key))
        return self.values[key]

    def hget(self, key: str, name: bytes) -> bytes | None:
        pair = (key, name)
        if pair not in self.fields:
            self.reads += 1
            self.fields[pair] = self.client.hget(key, name)
        return self.fields[pair]

    def record(self, article_id: bytes) -> Facts | None:
        if article_id in self.facts:
            return self.facts[article_id]
        raw = self.get(self.keys.article(article_id.hex()))
        facts = None
        if raw:
            try:
                facts = Facts(article_id, raw)
            except ValueError:
                log.error("record %s unreadable: left out", article_id.hex())
        self.facts[article_id] = facts
        return facts

    def prefetch_texts(self, entry_ids: Iterable[str]) -> None:
        """Read the texts of these canonical stream entries in one pipeline (those not read yet)."""
        wanted = [e for e in dict.fromkeys(entry_ids) if e and e not in self.texts]
        if not wanted:
            return
        stream = self.keys.canonical_stream.encode()
        results = run(self.client, [(b"XRANGE", stream, e.encode(), e.encode(), b"COUNT", b"1") for e in wanted])
        for entry_id, reply in zip(wanted, results, strict=True):
            entries = _value(reply) or []
            self.texts[entry_id] = _entry_text(entries[0]) if entries else None

    def text(self, facts: Facts) -> str | None:
        """The clean text of a stored record: decompressed, read from the canonical stream entry that
        carries it, or rebuilt from its delta base; None once that entry or base is gone (expired)."""
        form, data = rec.text_section(facts.raw)
        if form == rec.TEXT_NONE:
            return ""
        if form == rec.TEXT_ZLIB:
            return zlib.decompress(data).decode("utf-8", "replace")
        if form == rec.TEXT_STREAM:
            entry_id = data.decode("ascii", "replace")
            if entry_id not in self.texts:
                self.reads += 1
                self.prefetch_texts([entry_id])
            return self.texts[entry_id]
        if form == rec.TEXT_DELTA and len(data) >= 8:
            base = self.record(data[:8])
            if base is None or rec.text_section(base.raw)[0] == rec.TEXT_DELTA:
                return None
            base_text = self.text(base)
            if base_text is None:
                return None
            try:
                return rec.undelta(data[8:], base_text)
            except zlib.error:
                log.error("article %s: its text delta does not match its base %s", facts.id.hex(), data[:8].hex())
        return None

    def cluster(self, cluster_id: bytes) -> ClusterValue | None:
        raw = self.get(self.keys.cluster(cluster_id.hex()))
        return ClusterValue.parse(raw) if raw else None

    def stat(self, name: str) -> int:
        if self.stats is None:
            self.stats = {k.decode(): int(v) for k, v in self.client.hgetall(self.keys.stats).items()}
        return self.stats.get(name, 0)

    # Writing (to the overlay; `commands` turns it into the write set)

    def put_record(self, facts: Facts) -> None:
        self.facts[facts.id] = facts
        self.dirty_records[facts.id] = None

    def drop_record(self, article_id: bytes) -> None:
        self.facts[article_id] = None
        self.values[self.keys.article(article_id.hex())] = None
        self.dirty_records[article_id] = None

    def set(self, key: str, value: bytes | None) -> None:
        self.values[key] = value
        self.dirty_values[key] = None

    def put_cluster(self, cluster_id: bytes, value: ClusterValue | None) -> None:
        self.set(self.keys.cluster(cluster_id.hex()), value.pack() if value else None)

    def hset(self, key: str, name: bytes, value: bytes | None) -> None:
        self.fields[(key, name)] = value
        self.dirty_fields[(key, name)] = None

    def incr(self, name: str, by: int = 1) -> None:
        value = self.stat(name) + by
        assert self.stats is not None
        self.stats[name] = value
        self.dirty_stats[name] = None

    def rpush(self, key: str, value: bytes) -> None:
        self.appends.setdefault(key, []).append(value)

    def commands(self, stream_maxlen: int) -> list[tuple]:
        """The batch's write set: absolute values, in an order a replay can repeat."""
        stream = self._stream_commands(stream_maxlen)
        for event in self.events:
            owner = self.facts.get(event.text_of) if event.text_of and event.entry_id else None
            if owner is not None and event.text_of in self.dirty_records and \
                    rec.text_section(owner.raw)[0] == rec.TEXT_ZLIB:
                # The stream entry carries the text: the record keeps the entry's id (the id this write
                # set assigns, journalled with it: a replay writes the same).
                owner.raw = rec.with_text(owner.to_bytes(), rec.TEXT_STREAM, event.entry_id.encode())
        out: list[tuple] = []
        for key, members in self.zadds.items():
            if members:
                out.append((b"ZADD", key.encode(), b"NX", *(x for m, s in members.items() for x in (_b(s), m))))
        for key, values in self.appends.items():
            out.append((b"EVAL", _GUARDED_RPUSH.encode(), b"1", key.encode(), _b(self.lengths[key]), *values))
        for article_id in self.dirty_records:
            facts = self.facts.get(article_id)
            key = self.keys.article(article_id.hex()).encode()
            out.append((b"SET", key, facts.to_bytes()) if facts else (b"DEL", key))
        for key in self.dirty_values:
            value = self.values[key]
            out.append((b"SET", key.encode(), value) if value is not None else (b"DEL", key.encode()))
        for key, name in self.dirty_fields:
            value = self.fields[(key, name)]
            out.append((b"HSET", key.encode(), name, value) if value is not None else
                       (b"HDEL", key.encode(), name))
        if self.dirty_stats:
            assert self.stats is not None
            out.append((b"HSET", self.keys.stats.encode(),
                        *(x for name in self.dirty_stats for x in (name.encode(), _b(self.stats[name])))))
        for key, members in self.srems.items():
            out.append((b"SREM", key.encode(), *members))
        for key, name in self.hdels:
            out.append((b"HDEL", key.encode(), name))
        out.extend(tuple(command) for command in self.extra)
        out.extend(stream)
        return out

    def _stream_commands(self, maxlen: int) -> list[tuple]:
        """Stream entries with explicit ids after the stream's last: a replay's XADD is refused."""
        events = [e for e in self.events if not e.deferred]
        for event in self.events:
            if event.deferred:
                # Queued after the batch only if its canonical is still the cluster's canonical then.
                value = self.get(self.keys.cluster(event.cluster.hex()))
                current = value[:8] if value else event.cluster
                if current == event.canonical and self.record(event.canonical) is not None:
                    events.append(event)
        if not events:
            return []
        if self.stream_last is None:
            self.stream_last = last_stream_id(self.client, self.keys)
        ms, seq = self.stream_last
        out = []
        for event in events:
            now = int(time.time() * 1000)
            if now > ms:
                ms, seq = now, 0
            else:
                seq += 1
            trim = (b"MAXLEN", b"~", _b(maxlen)) if maxlen > 0 else ()
            event.entry_id = f"{ms}-{seq}"
            out.append((b"XADD", self.keys.canonical_stream.encode(), *trim, event.entry_id.encode(),
                        *(x.encode("utf-8", "replace") for pair in event.fields for x in pair)))
        self.stream_last = (ms, seq)
        return out


def _str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _last_id(info: object) -> tuple[int, int]:
    """The last-generated-id of an XINFO STREAM reply ((0, 0) for an error: no stream yet)."""
    if isinstance(info, Exception) or not info:
        return 0, 0
    if isinstance(info, dict):
        last = info.get("last-generated-id") or info.get(b"last-generated-id") or b"0-0"
    else:
        flat = list(info)  # type: ignore[call-overload]
        pairs = dict(zip(map(_str, flat[::2]), flat[1::2], strict=True))
        last = pairs.get("last-generated-id") or b"0-0"
    ms, _, seq = _str(last).partition("-")
    return int(ms), int(seq or 0)


def last_stream_id(client: redis.Redis, keys: Keys) -> tuple[int, int]:
    """The last id the canonical stream generated ((0, 0) when it does not exist)."""
    return _last_id(run(client, [(b"XINFO", b"STREAM", keys.canonical_stream)])[0])


def event_fields(event: str, event_id: str, canonical_hex: str, url: str, title: str, text: str, published: str,
                 source: str, cluster_hex: str, replaces_hex: str | None) -> list[tuple[str, str]]:
    fields = [("event", event), ("event_id", event_id), ("id", canonical_hex), ("url", url), ("title", title),
              ("text", text), ("published", published), ("source", source), ("cluster", cluster_hex)]
    if replaces_hex:
        fields.append(("replaces", replaces_hex))
    return fields


def _entry_text(entry: object) -> str:
    fields = entry[1]  # type: ignore[index]
    if isinstance(fields, dict):
        value = fields.get(b"text", b"")
    else:
        flat = list(fields)
        value = dict(zip(flat[::2], flat[1::2], strict=True)).get(b"text", b"")
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def stored_event(store: Store, event: str, event_id: str, canonical: Facts, cluster: bytes,
                 replaces: bytes | None) -> StreamEvent:
    """A stream event whose canonical is a stored member: its text read from the record (or from the
    stream entry or delta base holding it); queued with text_expired=1 when that text is gone."""
    stored = rec.unpack(canonical.id.hex(), canonical.to_bytes())
    published = stored.published_at.isoformat() if stored.published_at else ""
    text = store.text(canonical)
    fields = event_fields(event, event_id, canonical.id.hex(), stored.url, stored.title, text or "", published,
                          stored.source, cluster.hex(), replaces.hex() if replaces else None)
    if text is None:
        fields.insert(9, ("text_expired", "1"))  # after cluster, as emit.lua put it
    return StreamEvent(fields, deferred=True, cluster=cluster, canonical=canonical.id)


def members_of(store: Store, cluster_id: bytes) -> tuple[ClusterValue | None, list[bytes]]:
    value = store.cluster(cluster_id)
    if value is None:
        return None, [cluster_id]
    return value, value.ids


def sealed(store: Store, cluster_id: bytes) -> bool:
    """A cluster an operator split off: its founder carries SPLIT and still names it."""
    founder = store.record(cluster_id)
    return founder is not None and founder.has(rec.SPLIT) and founder.cluster == cluster_id


def relabel(store: Store, records: list[Facts], canonical: Facts, excerpt_ratio: float,
            fresh: bytes | None) -> None:
    """Every record's relation to the canonical rewritten where it changed, the counters following
    each change; `fresh` names the article being decided (always written, only counted in)."""
    for r in records:
        kind, similarity, containment, target = policy.KIND_CANONICAL, 0.0, 0.0, rec.NO_ID
        if r.id != canonical.id:
            kind, similarity, containment = policy.relation(r, canonical, excerpt_ratio)
            target = canonical.id
        counted = r.id != fresh
        if not counted or kind != r.kind or target != r.duplicate_of:
            before = r.kind
            r.kind = kind
            r.similarity = policy.score_bits(similarity)
            r.containment = policy.score_bits(containment)
            r.duplicate_of = target
            store.put_record(r)
            if counted:
                store.incr(policy.stat_kind(before), -1)
            store.incr(policy.stat_kind(kind), 1)


def inflate(s: Store, r: Facts) -> None:
    """A record whose text is a delta gets its whole text back (compressed) in the write set; left as
    it is when its base's own text expired (nothing left to rebuild it from)."""
    text = s.text(r)
    if text is None:
        return
    r.raw = rec.with_text(r.to_bytes(), rec.TEXT_ZLIB, zlib.compress(text.encode("utf-8", "replace"), 1))
    s.put_record(r)


def keep_base_beside(s: Store, r: Facts, members: set[bytes]) -> None:
    """A delta whose base is not among its cluster's members gets its whole text back: forgetting a
    base inflates only the members of the base's cluster (Decider.inflate_dependents)."""
    form, data = rec.text_section(r.raw)
    if form == rec.TEXT_DELTA and data[:8] not in members:
        inflate(s, r)

def _stored_text(s: Store, c: Facts) -> Callable[[], str]:
    """A stored article's text (from its record, its canonical stream entry or its delta base), read
    when called (the verifier's cache may have its profile); "" once expired."""
    return lambda: s.text(c) or ""


def bucket_ids(value: bytes | None) -> list[bytes]:
    if not value:
        return []
    return [value[pos : pos + 8] for pos in range(0, len(value) - 7, 8)]


def bucket_has(value: bytes, article_id: bytes) -> bool:
    return any(value[pos : pos + 8] == article_id for pos in range(0, len(value) - 7, 8))


def bucket_without(value: bytes, article_id: bytes) -> bytes:
    return b"".join(other for other in bucket_ids(value) if other != article_id)


@dataclass
class Outcome:
    """What deciding one article did (the engine turns it into a Decision)."""

    status: str
    """"known", "thin", "new" or "dup"."""
    cluster: bytes
    canonical: bytes
    kind: int
    similarity: int
    containment: int
    duplicate_of: bytes
    replaced: bytes = b""
    events: list[StreamEvent] = field(default_factory=list)
    reason: int = 0
    candidates: int = 0
    adopted: tuple[bytes, ...] = ()
    """Thin pages decided before that this article repeats (Decider.adopt)."""


@dataclass
class Article:
    """One article to decide, as the engine prepared it."""

    id: bytes
    packed: bytes
    bucket_key: str
    text: str
    published_iso: str
    slot_keys: list[str]
    slot_fields: bytes
    _slots: tuple[list[tuple[str, bytes]], tuple[str, bytes]] | None = field(default=None, repr=False, compare=False)

    def slots(self) -> tuple[list[tuple[str, bytes]], tuple[str, bytes]]:
        """The LSH slots (shard key, field) of its bands and spin keys (see lsh_and_spin), and its
        content-hash slot (worked out once: a decision asks several times)."""
        if self._slots is None:
            self._slots = self._make_slots()
        return self._slots

    def _make_slots(self) -> tuple[list[tuple[str, bytes]], tuple[str, bytes]]:
        pairs = list(zip(self.slot_keys, split_fields(self.slot_fields, rec.header(self.packed).content_hash),
                         strict=True))
        return pairs[:-1], pairs[-1]


def lsh_and_spin(slots: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """An article's band slots split into its LSH bands and its spin keys (band numbers from
    dedup.index.SPIN_BAND on, after the LSH bands)."""
    for i, (_, name) in enumerate(slots):
        if name[0] >= SPIN_BAND:
            return slots[:i], slots[i:]
    return slots, []


@dataclass
class Settings:
    """What decisions depend on beyond the stored data."""

    thresholds: object
    stream_maxlen: int
    slots_of: Callable[[Facts, str | None], tuple[list[str], bytes]]
    """The shard keys and band fields of a stored record (dedup.index.slots)."""
    spin: SpinVerifier | None = None
    """The spin stage's verifier (None: the stage is off)."""
    thin_copies: bool = True
    """Thin pages with MIN_TOKENS words or more are indexed (their bands) and compared with articles
    on other sites (policy.verify_thin): one that repeats an article is decided like one. Off: thin
    pages are recorded only, the policy before it (tests/test_differential.py's reference)."""


class Decider:
    """The decision path: decide a batch, peek, forget, all on one Store per call."""

    def __init__(self, client: redis.Redis, keys: Keys, settings: Settings, cache_bytes: int = 0) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self.t = settings.thresholds
        self.cache = ValueCache(keys, cache_bytes)
        self._deltas: RecentTexts[bytes] = RecentTexts()

    def store(self, cached: bool = True) -> Store:
        """A Store for one call. cached: it may read through the ValueCache (only under the lease)."""
        return Store(self.client, self.keys, cache=self.cache if cached and self.cache.max_bytes > 0 else None)

    # Candidates

    def lookup(self, s: Store, a: Facts, bands: list[tuple[str, bytes]], exact: tuple[str, bytes],
               ) -> tuple[list[bytes], set[bytes], bytes | None]:
        """The content-hash slot first (the exact fast path), then, only when it holds nothing, the LSH
        bands; never the article itself. Candidate ids in lookup order, the ids sharing the content
        hash, and the content-hash slot's value."""
        limit = self.t.max_candidates  # type: ignore[attr-defined]
        seen = {a.id}
        candidates: list[bytes] = []
        exact_ids: set[bytes] = set()
        exact_value = s.hget(*exact)
        for other in bucket_ids(exact_value):
            if other not in seen:
                seen.add(other)
                exact_ids.add(other)
                candidates.append(other)
        if not candidates:
            for key, name in bands:
                for other in bucket_ids(s.hget(key, name)):
                    if other not in seen and len(candidates) < limit:
                        seen.add(other)
                        candidates.append(other)
        return candidates, exact_ids, exact_value

    def spun(self, s: Store, a: Facts, text: str, spin: list[tuple[str, bytes]], exact_ids: set[bytes]) -> list[bytes]:
        """The spin stage (dedup.spin): the articles under SPIN_MIN_SHARED or more of this one's spin
        keys, on other sites, not thin, whose estimated Jaccard and shared keys make them worth
        profiling (dedup.spin.worth_profiling; a Jaccard from the near threshold up is for the rules),
        the SPIN_MAX_VERIFIED highest first (then by id), that the verifier judges spun copies of it
        (sentence alignment), in that order. None for an exact copy (it joins its copy by the rules). Read through the store like the bands: an
        article sees those decided before it in its batch, so every process decides alike."""
        verifier = self.settings.spin
        if verifier is None or not spin or exact_ids:
            return []
        counts: dict[bytes, int] = {}
        for key, name in spin:
            for other in bucket_ids(s.hget(key, name)):
                counts[other] = counts.get(other, 0) + 1
        window: list[tuple[float, bytes, Facts]] = []
        for other, shared in counts.items():
            if shared < SPIN_MIN_SHARED or other == a.id:
                continue
            c = s.record(other)
            if c is None or c.has(rec.THIN) or c.site == a.site:
                continue
            # Only the full signature (Facts.signature would decode both openings' too).
            j = jaccard(a.signature, signature_values(rec.signatures(c.raw)[0]))
            if worth_profiling(j, shared, self.t.near):  # type: ignore[attr-defined]
                window.append((j, other, c))
        window.sort(key=lambda entry: (-entry[0], entry[1]))
        own_key = a.id.hex() + a.content.hex()
        return [other for _, other, c in window[:SPIN_MAX_VERIFIED]
                if verifier.verify(own_key, text, other.hex() + c.content.hex(), _stored_text(s, c))]

    def comparable_thin(self, r: Facts) -> bool:
        """A thin page long enough to be compared with articles (Settings.thin_copies)."""
        return self.settings.thin_copies and r.has(rec.THIN) and r.head.n_tokens >= MIN_TOKENS

    def verify_all(self, s: Store, a: Facts, candidates: list[bytes], exact_ids: set[bytes],
                   spun: Iterable[bytes] = ()) -> list[policy.Scored]:
        """The candidates verified against a (best first). Two thin pages are never compared; a thin
        page and an article only by policy.verify_thin."""
        spun = set(spun)
        scored = []
        a_thin = a.has(rec.THIN)
        for other in candidates:
            if other == a.id:
                continue
            c = s.record(other)
            if c is None:
                continue
            if c.has(rec.THIN):
                if not a_thin and self.comparable_thin(c):
                    scored.append(policy.verify_thin(a, c, self.t, other in exact_ids))  # type: ignore[arg-type]
            elif a_thin:
                scored.append(policy.verify_thin(a, c, self.t, other in exact_ids))  # type: ignore[arg-type]
            else:
                scored.append(policy.verify(a, c, self.t, other in exact_ids, other in spun))  # type: ignore[arg-type]
        return policy.ranked(scored)

    def thin_followers(self, s: Store, a: Facts, candidates: list[bytes], matches: list[policy.Scored]
                       ) -> list[policy.Scored]:
        """Thin pages that repeat a thin page this decision finds to be an article (a itself, or a
        stored thin page among its matches), by policy.verify_thin: articles too, one step on (two thin
        pages are compared only once one of them is known to repeat an article). Looked for among a's
        candidates, and in the stored page's band buckets (read here: adoptions are rare)."""
        if not self.settings.thin_copies:
            return []
        sources: list[tuple[Facts, list[bytes]]] = []
        if a.has(rec.THIN):
            sources.append((a, candidates))
        for x in matches:
            r = x.record
            if r.has(rec.THIN):
                keys, fields = self.settings.slots_of(r, None)
                bands = list(zip(keys, split_fields(fields, r.content), strict=True))[:-1]
                s.prefetch((), bands)
                sources.append((r, list(dict.fromkeys(i for pair in bands for i in bucket_ids(s.hget(*pair))))))
        seen = {a.id, *(x.record.id for x in matches)}
        found: list[policy.Scored] = []
        for r, ids in sources:
            s.prefetch_records(i for i in ids if i not in seen)
            for other in ids:
                c = s.record(other) if other not in seen else None
                if c is not None and self.comparable_thin(c):
                    scored = policy.verify_thin(r, c, self.t, False)  # type: ignore[arg-type]
                    if scored.kind is not None:
                        seen.add(other)
                        found.append(scored)
        return found

    def adopt(self, s: Store, r: Facts) -> None:
        """A thin page found to repeat an article becomes an article: the canonical of a cluster of
        its own (which the article deciding it joins at once), counted as one."""
        r.flags = (r.flags & ~rec.THIN) | rec.THIN_COPY
        r.kind = policy.KIND_CANONICAL
        s.put_record(r)
        s.incr("thin", -1)
        s.incr("clusters")
        s.incr("canonicals")

    def add_bands(self, s: Store, article_id: bytes, bands: list[tuple[str, bytes]]) -> None:
        """The article's id added to these band buckets (up to the bucket cap)."""
        cap = self.t.bucket_cap * 8  # type: ignore[attr-defined]
        for key, name in bands:
            value_now = s.hget(key, name)
            if not value_now:
                s.hset(key, name, article_id)
            elif len(value_now) < cap and not bucket_has(value_now, article_id):
                s.hset(key, name, value_now + article_id)

    def candidates(self, s: Store, a: Facts, text: str, item: Article
                   ) -> tuple[list[bytes], set[bytes], bytes | None, list[bytes], list[tuple[str, bytes]]]:
        """lookup, then the spin stage's verified ids added to the candidates (after the bands').
        Also returns the LSH band slots."""
        bands, exact = item.slots()
        lsh, spin = lsh_and_spin(bands)
        candidates, exact_ids, exact_value = self.lookup(s, a, lsh, exact)
        spun = self.spun(s, a, text, spin, exact_ids)
        listed = set(candidates)
        candidates += [other for other in spun if other not in listed]
        return candidates, exact_ids, exact_value, spun, lsh

    def join_plan(self, s: Store, matches: list[policy.Scored]
                  ) -> tuple[bytes, ClusterValue | None, list[bytes], list[tuple[bytes, bytes, list[bytes], ClusterValue | None]], dict[bytes, bytes]]:
        """Where an article with these matches (best first) goes: the best match's cluster, plus up to
        max_merge other matched clusters it bridges (never a sealed one, nor into a sealed one)."""
        cluster_id = matches[0].record.cluster
        value, members = members_of(s, cluster_id)
        members = list(members)
        old_canonicals = {value.canonical if value else cluster_id: cluster_id}
        bridged: list[tuple[bytes, bytes, list[bytes], ClusterValue | None]] = []
        in_cluster = set(members)
        own_sealed = None
        for match in matches:
            other = match.record.cluster
            if other != cluster_id and match.record.id not in in_cluster and len(bridged) < self.t.max_merge:  # type: ignore[attr-defined]
                if own_sealed is None:
                    own_sealed = sealed(s, cluster_id)
                if not own_sealed and not sealed(s, other):
                    other_value, other_members = members_of(s, other)
                    added = [m for m in other_members if m not in in_cluster]
                    members.extend(added)
                    in_cluster.update(added)
                    other_canonical = other_value.canonical if other_value else other
                    bridged.append((other, other_canonical, added, other_value))
                    old_canonicals[other_canonical] = other
        return cluster_id, value, members, bridged, old_canonicals

    # Deciding

    def prefetch(self, s: Store, items: list[Article]) -> None:
        """Read what a batch's decisions need in four pipelines (records and buckets, candidates,
        their clusters and founders, the clusters' canonicals)."""
        record_keys = [self.keys.article(item.id.hex()) for item in items]
        slot_pairs: list[tuple[str, bytes]] = []
        for item in items:
            bands, exact = item.slots()
            slot_pairs.append(exact)
            slot_pairs.extend(bands)
        slot_pairs = [p for p in dict.fromkeys(slot_pairs) if p not in s.fields]
        list_keys = list(dict.fromkeys(item.bucket_key for item in items))
        record_keys = s.not_known(record_keys)
        commands: list[tuple] = [(b"GET", key) for key in record_keys]
        commands += [(b"HGET", key, name) for key, name in slot_pairs]
        commands += [(b"LLEN", key) for key in list_keys]
        commands += [(b"HGETALL", self.keys.stats), (b"XINFO", b"STREAM", self.keys.canonical_stream)]
        results = run(self.client, commands)
        for key, value in zip(record_keys, results, strict=False):
            s.read(key, _value(value))
        pos = len(record_keys)
        for pair, value in zip(slot_pairs, results[pos:], strict=False):
            s.fields[pair] = _value(value)
        pos += len(slot_pairs)
        for key, value in zip(list_keys, results[pos:], strict=False):
            s.lengths[key] = int(_value(value))  # type: ignore[arg-type]
        pos += len(list_keys)
        flat = _value(results[pos]) or []
        if isinstance(flat, dict):
            s.stats = {_str(k): int(v) for k, v in flat.items()}
        else:
            s.stats = {_str(k): int(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
        s.stream_last = _last_id(results[pos + 1])
        # Candidates: the content-hash slot's ids, else the bands' (as lookup reads them), and the
        # spin keys' (their clusters are read only for the few the spin stage verifies).
        wanted: list[bytes] = []
        spin_wanted: list[bytes] = []
        for item in items:
            bands, exact = item.slots()
            ids = bucket_ids(s.fields.get(exact))
            if not ids:
                lsh, spin = lsh_and_spin(bands)
                for pair in lsh:
                    ids.extend(bucket_ids(s.fields.get(pair)))
                for pair in spin:
                    spin_wanted.extend(bucket_ids(s.fields.get(pair)))
            wanted.extend(ids)
        s.prefetch_records(dict.fromkeys(wanted + spin_wanted))
        found = [s.record(i) for i in dict.fromkeys(wanted)]
        clusters = {f.cluster for f in found if f is not None}
        s.prefetch([self.keys.cluster(c.hex()) for c in clusters] +
                   [self.keys.article(c.hex()) for c in clusters if c not in s.facts])
        canonicals = []
        for c in clusters:
            raw = s.values.get(self.keys.cluster(c.hex()))
            canonicals.append(raw[:8] if raw else c)
        s.prefetch_records(canonicals)
        # The texts of those canonicals kept in the stream: a copy's text is stored as a delta against them.
        refs = []
        for c in canonicals:
            facts = s.record(c)
            if facts is not None:
                form, data = rec.text_section(facts.raw)
                if form == rec.TEXT_STREAM:
                    refs.append(data.decode("ascii", "replace"))
        s.prefetch_texts(refs)

    def decide(self, s: Store, items: list[Article]) -> list[Outcome]:
        self.prefetch(s, items)
        return [self.decide_one(s, item) for item in items]

    def decide_one(self, s: Store, item: Article) -> Outcome:
        t = self.t
        existing = s.record(item.id)
        if existing is not None:
            value = s.get(self.keys.cluster(existing.cluster.hex()))
            canonical = value[:8] if value else existing.cluster
            return Outcome("known", existing.cluster, canonical, existing.kind, existing.similarity,
                           existing.containment, existing.duplicate_of)
        a = Facts(item.id, item.packed)
        s.rpush(item.bucket_key, item.id)
        bands, exact = item.slots()  # the LSH bands and spin keys: both are indexed
        candidates, exact_ids, exact_value, spun, lsh = self.candidates(s, a, item.text, item)
        if a.has(rec.THIN):
            matches = []
            if self.comparable_thin(a):
                matches = [x for x in self.verify_all(s, a, candidates, exact_ids) if x.kind is not None]
            if not matches:
                s.put_record(a)
                s.incr("thin")
                if self.comparable_thin(a):
                    # Findable by an article arriving later (never by another thin page's decision:
                    # verify_all compares no two thin pages); the content-hash slot stays the articles'.
                    self.add_bands(s, a.id, lsh)
                return Outcome("thin", item.id, item.id, policy.KIND_THIN, 0, 0, rec.NO_ID)
        else:
            matches = [x for x in self.verify_all(s, a, candidates, exact_ids, spun) if x.kind is not None]
        if matches:
            matches += self.thin_followers(s, a, candidates, matches)
            plan = self.join_plan(s, matches)
            # Thin pages the article joins become articles (never queued before: nothing to replace).
            joined = set(plan[2])
            adopted = {x.record.id for x in matches if x.record.has(rec.THIN) and x.record.id in joined}
            for x in matches:
                if x.record.id in adopted:
                    self.adopt(s, x.record)
            if a.has(rec.THIN):
                a.flags = (a.flags & ~rec.THIN) | rec.THIN_COPY
                a.kind = policy.KIND_CANONICAL
        else:
            adopted = set()
        events: list[StreamEvent] = []
        replaced = b""

        def own_event(event: str, cluster: bytes, replaces: bytes | None) -> None:
            event_id = f"{event}:{cluster.hex()}:{a.id.hex()}" + (f":{replaces.hex()}" if replaces else "")
            url, title, _, source = rec.strings_of(a.raw)
            events.append(StreamEvent(event_fields(event, event_id, a.id.hex(), url, title, item.text,
                                                   item.published_iso, source, cluster.hex(),
                                                   replaces.hex() if replaces else None),
                                      text_of=a.id))

        if not matches:
            cluster_id, canonical, reason = item.id, a, policy.REASON_SINGLE
            s.put_record(a)
            s.incr("clusters")
            s.incr("canonicals")
            own_event("new", item.id, None)
        else:
            cluster_id, value, members, bridged, old_canonicals = plan
            parts: list[bytes] = []
            if value is not None:
                parts.append(value.table)
            else:
                founder = s.record(cluster_id)
                if founder is not None:
                    parts.append(policy.pack_member(founder))
            for other_id, _, added, other_value in bridged:
                entries = ({m.id: policy.pack_member(m) for m in other_value.members} if other_value else {})
                for m in added:
                    r = s.record(m)
                    if r is not None:
                        r.cluster = cluster_id
                        s.put_record(r)
                        parts.append(entries.get(m) or policy.pack_member(r))
                s.put_cluster(other_id, None)
                s.incr("clusters", -1)
            a.cluster = cluster_id
            s.put_record(a)
            parts.append(policy.pack_member(a))
            table = b"".join(parts)
            best, reason = policy.choose_in_table(table, t.excerpt_ratio)  # type: ignore[attr-defined]
            canonical_id = policy.table_id(table, best)
            old_canonical = next(iter(old_canonicals))
            if canonical_id == old_canonical and not bridged:
                # The canonical stays: only the newcomer is related to it (a hot story's 500th copy
                # costs what its 5th does).
                canonical = a if canonical_id == a.id else s.record(canonical_id)
                assert canonical is not None
                relabel(s, [a], canonical, t.excerpt_ratio, a.id)  # type: ignore[attr-defined]
            else:
                ids = ClusterValue(b"", 0, table).ids
                s.prefetch_records(ids)
                records = [r for r in (a if m == a.id else s.record(m) for m in ids) if r is not None]
                if len(records) != len(ids):
                    table = b"".join(policy.pack_member(r) for r in records)
                    best, reason = policy.choose_in_table(table, t.excerpt_ratio)  # type: ignore[attr-defined]
                canonical = records[best]
                relabel(s, records, canonical, t.excerpt_ratio, a.id)  # type: ignore[attr-defined]
            s.put_cluster(cluster_id, ClusterValue(canonical.id, reason, table))
            if all(old_id in adopted for old_id in old_canonicals):
                # Nothing of this story reached consumers yet (only thin pages it repeats).
                if canonical.id == a.id:
                    own_event("new", cluster_id, None)
                else:
                    events.append(stored_event(s, "new", f"new:{cluster_id.hex()}:{canonical.id.hex()}",
                                               canonical, cluster_id, None))
            for old_id in old_canonicals:
                if old_id != canonical.id and old_id not in adopted:
                    if canonical.id == a.id:
                        own_event("replaced", cluster_id, old_id)
                    else:
                        event_id = f"replaced:{cluster_id.hex()}:{canonical.id.hex()}:{old_id.hex()}"
                        events.append(stored_event(s, "replaced", event_id, canonical, cluster_id, old_id))
                    if not replaced:
                        replaced = old_id

        if matches and a.kind in (policy.KIND_EXACT, policy.KIND_NEAR, policy.KIND_EXCERPT):
            self.store_as_delta(s, a, item.text)
        # Index the article, unless it is a near-identical copy of a member with the same opening.
        if not exact_value:
            s.hset(exact[0], exact[1], a.id)
        if policy.adds_reach(a, matches, t.reach):  # type: ignore[attr-defined]
            self.add_bands(s, a.id, bands)
        s.events.extend(events)
        return Outcome("new" if not matches else "dup", cluster_id, canonical.id, a.kind, a.similarity,
                       a.containment, a.duplicate_of, replaced, events, reason, len(candidates),
                       tuple(sorted(adopted)))

    def store_as_delta(self, s: Store, a: Facts, text: str) -> None:
        """A copy's text stored as a delta against the text of the canonical it was related to
        (record.TEXT_DELTA: zlib with that text as preset dictionary) when that is smaller: a near copy
        then costs a few hundred bytes, an excerpt or an exact copy a few dozen. One level at most:
        never against a base that is a delta itself. Part of the decision's write set."""
        base = s.record(a.duplicate_of)
        if base is None or base.id == a.id:
            return
        form, data = rec.text_section(a.raw)
        base_form, base_data = rec.text_section(base.raw)
        if form != rec.TEXT_ZLIB or base_form == rec.TEXT_DELTA:
            return

        def compute(_: list[int]) -> list[bytes]:
            base_text = s.text(base)
            return [rec.delta_of(text, base_text) if base_text else b""]

        # A pure function of the two texts, the base's named by its text section as stored (compressed, or
        # the id of the stream entry that carries it): a page met again under another URL is stored against
        # the same canonical with the same delta, worked out once. b"": the base has no text (any more).
        compressed = self._deltas.many([(text, base_form, base_data)], [len(text) + len(base_data)], compute)[0]
        if not compressed:
            return
        delta = base.id + compressed
        if len(delta) < len(data):
            a.raw = rec.with_text(a.to_bytes(), rec.TEXT_DELTA, delta)
            s.put_record(a)

    def inflate_dependents(self, s: Store, gone: bytes, members: list[bytes], leaving: set[bytes]) -> None:
        """Members stored as a delta against an article about to be forgotten (and not leaving with it)
        get their whole text back (compressed) in the same write set: their base is in their cluster
        (or was when they were decided)."""
        for m in members:
            r = s.record(m) if m not in leaving else None
            if r is None:
                continue
            form, data = rec.text_section(r.raw)
            if form != rec.TEXT_DELTA or data[:8] != gone:
                continue
            inflate(s, r)

    # Reading only

    def peek(self, s: Store, item: Article, limit: int) -> dict[str, object]:
        """What decide would do with this article now, and every candidate it would verify."""
        t = self.t
        a = Facts(item.id, item.packed)
        result: dict[str, object] = {
            "status": "new", "cluster": item.id.hex(), "canonical": item.id.hex(), "kind": "canonical",
            "similarity": 0, "containment": 0, "reason": policy.REASON_SINGLE, "replaces": [], "candidates": 0,
            "matches": [], "known": False,
        }
        stored = s.record(item.id)
        if stored is not None:
            result["known"] = True
            value = s.get(self.keys.cluster(stored.cluster.hex()))
            kind_name = policy.KIND_NAMES.get(stored.kind) or ("thin" if stored.kind == policy.KIND_THIN
                                                              else "canonical")
            result["stored"] = {"cluster": stored.cluster.hex(),
                                "canonical": (value[:8] if value else stored.cluster).hex(), "kind": kind_name}
        if a.has(rec.THIN) and not self.comparable_thin(a):
            result["status"] = result["kind"] = "thin"
            return result
        candidates, exact_ids, _, spun, bands = self.candidates(s, a, item.text, item)
        s.prefetch_records(candidates)
        scored = self.verify_all(s, a, candidates, exact_ids, spun)
        matches = [x for x in scored if x.kind is not None]
        if a.has(rec.THIN) and not matches:
            result["status"] = result["kind"] = "thin"
            return result
        listed = scored
        if exact_ids:
            seen = {a.id, *candidates}
            more: list[bytes] = []
            for key, name in bands:
                for other in bucket_ids(s.hget(key, name)):
                    if other not in seen and len(more) < t.max_candidates:  # type: ignore[attr-defined]
                        seen.add(other)
                        more.append(other)
            s.prefetch_records(more)
            listed = policy.ranked(scored + self.verify_all(s, a, more, set()))
        result["candidates"] = len(listed)
        shown = []
        for x in listed[:limit]:
            value = s.get(self.keys.cluster(x.record.cluster.hex()))
            shown.append({"id": x.record.id.hex(), "cluster": x.record.cluster.hex(),
                          "canonical": (value[:8] if value else x.record.cluster).hex(),
                          "kind": policy.KIND_NAMES.get(x.kind, "") if x.kind else "", "score": x.score,
                          "jaccard": x.jaccard, "containment": x.containment,
                          "same_site": x.record.site == a.site, "split": x.record.has(rec.SPLIT)})
        result["matches"] = shown
        if not matches:
            return result
        cluster_id, _, members, _, _ = self.join_plan(s, matches)
        s.prefetch_records(members)
        records: list[Facts] = []
        old_canonicals: list[bytes] = []
        for m in members:
            if m != a.id:
                r = s.record(m)
                if r is not None:
                    records.append(r)
                    if r.kind == policy.KIND_CANONICAL:
                        old_canonicals.append(r.id)
        records.append(a)
        best, reason = policy.choose_canonical(records, t.excerpt_ratio)  # type: ignore[attr-defined]
        canonical = records[best]
        result.update(status="dup", cluster=cluster_id.hex(), canonical=canonical.id.hex(), reason=reason)
        if canonical.id == a.id:
            result["replaces"] = [old.hex() for old in old_canonicals]
        else:
            kind, similarity, containment = policy.relation(a, canonical, t.excerpt_ratio)  # type: ignore[attr-defined]
            result.update(kind=policy.KIND_NAMES[kind], similarity=similarity, containment=containment)
        return result

    # Retention

    def forget(self, s: Store, article_ids: list[bytes]) -> int:
        """Remove articles from the index and store; their clusters re-elect a canonical quietly. The
        new canonicals are indexed in the same write set (copies identical to an indexed member were
        not indexed themselves: the story stays findable once this article is gone)."""
        ratio = self.t.excerpt_ratio  # type: ignore[attr-defined]
        s.prefetch_records(article_ids)
        doomed = set(article_ids)
        survivors: dict[bytes, None] = {}
        removed = 0
        # Their texts first (the spin keys are computed from them): a copy's text may be a delta
        # against a member forgotten before it in this loop.
        texts: dict[bytes, str | None] = {}
        if self.settings.spin is not None:
            kept = [r for r in (s.record(i) for i in article_ids) if r is not None and not r.has(rec.THIN)]
            s.prefetch_texts(data.decode("ascii", "replace") for form, data in map(rec.text_section, (r.raw for r in kept))
                             if form == rec.TEXT_STREAM)  # one round trip, not one per canonical
            for r in kept:
                texts[r.id] = s.text(r)
        for article_id in article_ids:
            r = s.record(article_id)
            if r is None:
                continue
            removed += 1
            if not r.has(rec.THIN):
                self.remove_slots(s, r, texts.get(article_id))
                s.incr(policy.stat_kind(r.kind), -1)
                value_c, members = members_of(s, r.cluster)
                if value_c is not None:
                    s.prefetch_records(members)
                    self.inflate_dependents(s, article_id, members, doomed)
                if value_c is None:
                    s.incr("clusters", -1)
                else:
                    s.prefetch_records(members)
                    records = [o for o in (s.record(m) for m in members if m != article_id) if o is not None]
                    if not records:
                        s.put_cluster(r.cluster, None)
                        s.incr("clusters", -1)
                    else:
                        best, reason = policy.choose_canonical(records, ratio)
                        canonical = records[best]
                        survivors[canonical.id] = None
                        relabel(s, records, canonical, ratio, None)
                        if len(records) == 1:
                            s.put_cluster(r.cluster, None)
                            records[0].cluster = records[0].id
                            s.put_record(records[0])
                        else:
                            s.put_cluster(r.cluster, ClusterValue.of(canonical.id, reason, records))
            else:
                if self.comparable_thin(r):
                    self.remove_slots(s, r, None)
                s.incr("thin", -1)
            s.drop_record(article_id)
            survivors.pop(article_id, None)
            s.srems.setdefault(self.keys.reindex, []).append(article_id.hex().encode())
        for survivor in sorted(survivors, key=bytes.hex):
            self.index(s, survivor)
        return removed

    def remove_slots(self, s: Store, r: Facts, text: str | None) -> None:
        """The article's id taken out of every index slot it may be in."""
        keys, fields = self.settings.slots_of(r, text)
        slots = list(zip(keys, split_fields(fields, r.content), strict=True))
        s.prefetch((), slots)
        for key, name in slots:
            value = s.hget(key, name)
            if value and bucket_has(value, r.id):
                s.hset(key, name, bucket_without(value, r.id) or None)

    def index(self, s: Store, article_id: bytes) -> bool:
        """Put a stored article's LSH slots (content hash included) in the index (idempotent)."""
        r = s.record(article_id)
        if r is None or r.has(rec.THIN):
            return False
        keys, fields = self.settings.slots_of(r, s.text(r))
        slots = list(zip(keys, split_fields(fields, r.content), strict=True))
        s.prefetch((), slots)
        self.add_bands(s, article_id, slots)
        return True


__all__ = ["Article", "Decider", "Lease", "LeaseLost", "Outcome", "Settings", "Store", "apply", "pack", "run",
           "unpack"]
