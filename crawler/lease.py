"""Per-source leases in Redis: each scheduled crawl runs on one instance, and a dead one's lease expires."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import redis

from dedup.keys import Keys

log = logging.getLogger(__name__)

# Acquire when free, or when the holder is a dead process on this host (a kill -9 before restart),
# and only when no crawl of the source completed within min_gap (another instance did this slot).
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[5] then
  return {'busy', holder}
end
local finished = tonumber(redis.call('HGET', KEYS[2], 'last_completed') or '0')
if finished > tonumber(ARGV[3]) - tonumber(ARGV[4]) then
  return {'recent', tostring(finished)}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'last_started', ARGV[3], 'holder', ARGV[1])
return {'ok', ''}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
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

    def acquire(self, source: str, min_gap: float = 0.0) -> tuple[str | None, str]:
        """(token, "ok") when this instance may crawl now; (None, "busy"|"recent", detail) otherwise."""
        token = self._token()
        lease_key = self.keys.source_lease(source)
        stale = self._dead_local_holder(lease_key)
        status, detail = self._acquire(
            keys=[lease_key, self.keys.source_state(source)],
            args=[token, self.ttl_ms, f"{time.time():.3f}", f"{min_gap:.3f}", stale or ""],
        )
        status = _text(status)
        if status == "ok":
            if stale:
                log.info("source=%s: took over the lease of dead process %s", source, stale)
            return token, "ok"
        return None, f"{status} {_text(detail)}".strip()

    def renew(self, source: str, token: str) -> bool:
        return bool(self._renew(keys=[self.keys.source_lease(source)], args=[token, self.ttl_ms]))

    def release(self, source: str, token: str) -> bool:
        return bool(self._release(keys=[self.keys.source_lease(source)], args=[token]))

    def holder(self, source: str) -> str | None:
        value = self.client.get(self.keys.source_lease(source))
        return _text(value) if value else None

    def _dead_local_holder(self, lease_key: str) -> str | None:
        """The lease value when it names a process on this host with this name that has died."""
        value = self.client.get(lease_key)
        if not value:
            return None
        holder = _text(value)
        name, _, rest = holder.rpartition(":")
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


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
