"""Slots held by a live process: at most `limit` per key, each one renewed while its holder lives.

A slot is a member with an expiry (RUN_LEASE_SECONDS from its last renewal). The process that took
it renews it on its lease keeper's beat (chats/runs/keeper.py), so the slots of a process that died
are free within seconds instead of at a long TTL (docs/reliability.md E12). On Redis a slot table
is a sorted set scored by expiry, taken and counted in one Lua script; without Redis (one process)
it is a dictionary in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from django.conf import settings

from core.redis_clients import redis_configured, sync_redis
from core.shared_state import shared_state_best_effort, shared_state_required

# KEYS[1] the table; ARGV: member, limit, ttl in ms. The server's clock, so processes never disagree.
_TAKE = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""
_RENEW = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
for i, member in ipairs(ARGV) do
  if i > 1 then
    redis.call('ZADD', KEYS[i - 1], 'XX', ms + tonumber(ARGV[1]), member)
    redis.call('PEXPIRE', KEYS[i - 1], tonumber(ARGV[1]))
  end
end
return 1
"""

_lock = threading.Lock()
# Slots this process holds, renewed by its keeper: (key, member).
_held: set[tuple[str, str]] = set()
# Without Redis: key -> member -> expiry (monotonic seconds).
_tables: dict[str, dict[str, float]] = {}


def _prefixed(key: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:slots:{key}"


def _ttl() -> float:
    return float(settings.RUN_LEASE_SECONDS)


def slot_take(key: str, member: str, *, limit: int) -> bool:
    """Take a slot for `member` under `key` (again, if it holds one); False when `limit` are taken.
    Redis being down is a 503 (core/shared_state.py)."""
    if redis_configured():
        with shared_state_required():
            taken = bool(sync_redis().eval(_TAKE, 1, _prefixed(key), member, limit, int(_ttl() * 1000)))
    else:
        with _lock:
            now = time.monotonic()
            table = {m: expiry for m, expiry in _tables.get(key, {}).items() if expiry > now}
            taken = member in table or len(table) < limit
            if taken:
                table[member] = now + _ttl()
            _tables[key] = table
    if taken:
        with _lock:
            _held.add((key, member))
    return taken


def slot_give_back(key: str, member: str) -> None:
    with _lock:
        _held.discard((key, member))
        if not redis_configured():
            _tables.get(key, {}).pop(member, None)
            return
    with shared_state_best_effort():
        sync_redis().zrem(_prefixed(key), member)


def slots_held() -> list[tuple[str, str]]:
    with _lock:
        return sorted(_held)


def slots_renew(slots: Iterable[tuple[str, str]] | None = None) -> None:
    """Push back the expiry of the slots this process holds (all of them by default)."""
    slots = slots_held() if slots is None else list(slots)
    if not slots:
        return
    if not redis_configured():
        with _lock:
            now = time.monotonic()
            for key, member in slots:
                if member in _tables.get(key, {}):
                    _tables[key][member] = now + _ttl()
        return
    with shared_state_best_effort():
        keys = [_prefixed(key) for key, _member in slots]
        sync_redis().eval(_RENEW, len(keys), *keys, int(_ttl() * 1000), *(member for _key, member in slots))
