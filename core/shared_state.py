"""Counters and locks shared by every process live in the cache (Redis in production).

When it cannot be reached, anything that needs one (stream slots, rate windows, a chat's answer
lock) fails closed with 503 rather than running unmetered (docs/reliability.md J2); giving one back is
best effort, since each has a TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from core.errors import DomainError

logger = logging.getLogger(__name__)


class SharedStateUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"


def shared_state_unavailable(exc: BaseException) -> SharedStateUnavailable | None:
    """The 503 for a failure of the cache (or channel layer) itself, wherever it was raised
    (a throttle, a lock, a counter); None for any other failure."""
    if isinstance(exc, SharedStateUnavailable):
        return exc
    if not isinstance(exc, RedisError):
        return None
    logger.warning("shared state (cache) unavailable: %s", type(exc).__name__)
    return SharedStateUnavailable(
        _("The service is temporarily unavailable; try again in a few seconds."), headers={"Retry-After": "5"}
    )


@contextmanager
def shared_state_required() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise shared_state_unavailable(exc) from exc


@contextmanager
def shared_state_best_effort() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        logger.warning("could not release shared state (it will expire): %s", type(exc).__name__)
