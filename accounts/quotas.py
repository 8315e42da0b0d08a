"""Per-user limits on model use. Parallel streams now; daily quotas arrive with the usage issue."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from config.errors import DomainError


class TooManyStreams(DomainError):
    status_code = 429
    code = "too_many_streams"


def _stream_key(user_id: int) -> str:
    return f"streams:{user_id}"


def stream_slot_acquire(*, user_id: int) -> None:
    """Take one of the user's parallel-answer slots, or refuse with 429 (RELIABILITY C7).

    An atomic counter in the cache (Redis INCR in production); its TTL frees the slots of a
    process that died mid-answer.
    """
    key = _stream_key(user_id)
    cache.add(key, 0, timeout=int(settings.LLM_TOTAL_TIMEOUT) + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=int(settings.LLM_TOTAL_TIMEOUT) + 60)
        count = 1
    if count > settings.CHAT_PARALLEL_STREAMS:
        stream_slot_release(user_id=user_id)
        raise TooManyStreams(
            _("You already have %(n)d answers streaming; wait for one to finish.")
            % {"n": settings.CHAT_PARALLEL_STREAMS},
            headers={"Retry-After": "5"},
        )


def stream_slot_release(*, user_id: int) -> None:
    try:
        if cache.decr(_stream_key(user_id)) < 0:
            cache.delete(_stream_key(user_id))
    except ValueError:
        pass
