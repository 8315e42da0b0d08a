"""Per-user limits on model use: parallel streams and request rates; daily quotas arrive with the usage issue."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from config.errors import DomainError
from config.shared_state import shared_state_best_effort, shared_state_required


class TooManyStreams(DomainError):
    status_code = 429
    code = "too_many_streams"


def _counter_incr(key: str, *, timeout: int) -> int:
    """One atomic increment of a counter that starts at 0 and expires after `timeout` seconds."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def slot_take(key: str, *, limit: int, ttl: int) -> bool:
    """Take one of `limit` slots counted under `key`; False (nothing taken) when all are taken.

    An atomic counter in the cache shared by every process (Redis INCR in production); its TTL
    frees the slots of a process that died holding them. The cache being down is a 503.
    """
    with shared_state_required():
        count = _counter_incr(key, timeout=ttl)
    if count > limit:
        slot_give_back(key)
        return False
    return True


def slot_give_back(key: str) -> None:
    with shared_state_best_effort():
        try:
            if cache.decr(key) < 0:
                cache.delete(key)
        except ValueError:  # already expired
            pass


def _stream_key(user_id: int) -> str:
    return f"streams:{user_id}"


def stream_slot_acquire(*, user_id: int) -> None:
    """Take one of the user's parallel-answer slots, or refuse with 429 (RELIABILITY C7)."""
    if not slot_take(
        _stream_key(user_id), limit=settings.CHAT_PARALLEL_STREAMS, ttl=int(settings.LLM_TOTAL_TIMEOUT) + 60
    ):
        raise TooManyStreams(
            _("You already have %(n)d answers streaming; wait for one to finish.")
            % {"n": settings.CHAT_PARALLEL_STREAMS},
            headers={"Retry-After": "5"},
        )


def stream_slot_release(*, user_id: int) -> None:
    slot_give_back(_stream_key(user_id))


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`"50/hour"` -> (50, 3600); the same spelling as DRF's throttle rates."""
    count, _slash, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


def rate_limit_take(*, user_id: int, scope: str, rate: str) -> None:
    """Count one request in the current fixed window, or refuse with 429 and `Retry-After`.

    Unlike DRF's throttles (read, modify, write), the count is one atomic cache increment,
    so parallel requests cannot all slip under the limit (RELIABILITY P6, C6).
    """
    limit, period = parse_rate(rate)
    now = int(time.time())
    window = now // period
    with shared_state_required():
        count = _counter_incr(f"rate:{scope}:{user_id}:{window}", timeout=period + 5)
    if count > limit:
        retry_after = (window + 1) * period - now
        raise RateLimited(
            _("Rate limit exceeded: %(limit)d requests per %(period)s. Try again in %(seconds)d seconds.")
            % {"limit": limit, "period": rate.partition("/")[2], "seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
