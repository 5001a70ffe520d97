"""Per-source leases in Redis: each scheduled crawl runs on one instance, and a dead one's lease expires."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping

import redis

from crawler.logs import about
from dedup.keys import Keys

log = logging.getLogger(__name__)

# Acquire when free, or when the holder is a dead process on this host (a kill -9 before restart);
# a scheduled crawl only when no crawl was started for its slot (the time up to its tick: instances
# tick together, the first one crawls), the start-up crawl only when none completed within min_gap.
# The source's state names the holder: the crawl that holds the lease writes the state, no other.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[5] then
  return {'busy', holder}
end
if ARGV[6] ~= '' then
  local slot = tonumber(redis.call('HGET', KEYS[2], 'last_slot') or '0')
  if slot >= tonumber(ARGV[6]) then
    return {'crawled', redis.call('HGET', KEYS[2], 'holder') or ''}
  end
end
local finished = tonumber(redis.call('HGET', KEYS[2], 'last_completed') or '0')
if finished > tonumber(ARGV[3]) - tonumber(ARGV[4]) then
  return {'recent', tostring(finished)}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'last_started', ARGV[3], 'holder', ARGV[1])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[2], 'last_slot', ARGV[6])
end
return {'ok', ''}
"""
# A crawl's `last_slot` (see Leases.release) only ever moves forward.
# Ours while the key holds our token, or while it has expired and nobody acquired it since (the
# state still names us as holder): then it is taken back. Another holder means it is lost.
_HELD = """
local function held()
  local current = redis.call('GET', KEYS[1])
  if current then
    return current == ARGV[1]
  end
  return redis.call('HGET', KEYS[2], 'holder') == ARGV[1]
end
"""
_RENEW = _HELD + """
if not held() then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = _HELD + """
if not held() then
  return 0
end
for i = 2, #ARGV - 1, 2 do
  if ARGV[i] == 'last_slot' then
    if tonumber(ARGV[i + 1]) > tonumber(redis.call('HGET', KEYS[2], 'last_slot') or '0') then
      redis.call('HSET', KEYS[2], 'last_slot', ARGV[i + 1])
    end
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
redis.call('DEL', KEYS[1])
return 1
"""


class Leases:
    """Acquire, renew and release source leases; values name the holder (host:pid:token)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, ttl: float, name: str = "") -> None:
        self.client = client
        self.keys = keys
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.name = name or socket.gethostname()
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _token(self) -> str:
        return f"{self.name}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def acquire(self, source: str, min_gap: float = 0.0, slot: float | None = None) -> tuple[str | None, str]:
        """(token, "ok") when this instance may crawl now; (None, "busy|crawled|recent detail") otherwise.

        A scheduled crawl gives its `slot` (the time of the next tick: all instances agree on it) and is
        refused when a crawl for that slot or a later one was started anywhere; `min_gap` refuses when a
        crawl completed that recently.
        """
        token = self._token()
        lease_key = self.keys.source_lease(source)
        stale = self._dead_local_holder(lease_key)
        status, detail = self._acquire(
            keys=[lease_key, self.keys.source_state(source)],
            args=[token, self.ttl_ms, f"{time.time():.3f}", f"{min_gap:.3f}", stale or "",
                  "" if slot is None else f"{slot:.3f}"],
        )
        status = _text(status)
        if status == "ok":
            if stale:
                log.info("took over the lease of dead process %s", stale, extra=about(source))
            return token, "ok"
        return None, f"{status} {_text(detail)}".strip()

    def renew(self, source: str, token: str) -> bool:
        """Extend our lease (taking it back if it expired and nobody took it); False when another has it."""
        return bool(self._renew(keys=[self.keys.source_lease(source), self.keys.source_state(source)],
                                args=[token, self.ttl_ms]))

    def release(self, source: str, token: str, state: Mapping[str, str] | None = None) -> bool:
        """Write the crawl's `state` into the source's state and release the lease, only while it is ours.
        A `last_slot` in it is written only when later than the one recorded (the slot the crawl served)."""
        fields = [value for pair in (state or {}).items() for value in pair]
        return bool(self._release(keys=[self.keys.source_lease(source), self.keys.source_state(source)],
                                  args=[token, *fields]))

    def holder(self, source: str) -> str | None:
        value = self.client.get(self.keys.source_lease(source))
        return _text(value) if value else None

    def _dead_local_holder(self, lease_key: str) -> str | None:
        """The lease value when it names a process on this host with this name that has died."""
        value = self.client.get(lease_key)
        if not value:
            return None
        holder = _text(value)
        name = holder.rpartition(":")[0]
        host, _, pid = name.rpartition(":")
        if host != self.name or not pid.isdigit() or int(pid) == os.getpid():
            return None
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return holder
        except PermissionError:
            return None
        return None


class LeaseKeeper:
    """Renews the leases this process holds from a thread of its own, every ttl/3.

    Not from the event loop, nor through the shared thread pool: a loop stalled by a busy machine, or
    a pool full of blocking Redis reads, let a running crawl's lease expire, and a second instance
    crawled the same source in the same tick. A thread is only stopped by what stops the process.
    """

    def __init__(self, leases: Leases, interval: float | None = None) -> None:
        self.leases = leases
        self.interval = interval if interval is not None else max(0.2, leases.ttl_ms / 3000)
        self._held: dict[tuple[str, str], Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def hold(self, source: str, token: str, on_lost: Callable[[], None]) -> None:
        """Keep renewing this lease until `drop`; `on_lost` (called from the keeper's thread) when another
        instance has it."""
        with self._lock:
            self._held[(source, token)] = on_lost
            if self._thread is None or not self._thread.is_alive():
                self._stopped = False
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, source: str, token: str) -> None:
        with self._lock:
            self._held.pop((source, token), None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._wake.wait(self.interval):
            with self._lock:
                if self._stopped:
                    return
                held = list(self._held.items())
            for (source, token), on_lost in held:
                try:
                    kept = self.leases.renew(source, token)
                except redis.RedisError as exc:  # Redis away: try again next round; the TTL covers a while
                    log.warning("lease renewal failed: %s", exc, extra=about(source))
                    continue
                if not kept:
                    with self._lock:
                        still = self._held.pop((source, token), None)
                    if still is not None:
                        still()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
