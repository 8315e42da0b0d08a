"""Per-user limits on model use: daily quotas of model calls, parallel streams and request rates.

Charging rule (docs/reliability.md C4, C5): a model call takes one unit of the day's quota before it is
made, in one conditional UPDATE, so parallel requests can never overrun it. A call that is refused,
or fails or is abandoned before the model's first token, gives its unit back. A call that fails or
is cancelled after the first token stays charged: the provider has produced (and billed) tokens.
The day is TIME_ZONE's; a call is charged to the day it started.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import DailyUsage, User, UserType
from core import metrics
from core.errors import DomainError
from core.shared_state import shared_state_required
from core.slots import slot_give_back, slot_take


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


def _stream_key(holder: int | str) -> str:
    return f"streams:{holder}"


def stream_slot_acquire(*, user_id: int | str, member: str) -> None:
    """Take one of the user's (or a widget visitor's: a string id) parallel-answer slots for the
    answer `member`, or refuse with 429 (docs/reliability.md C7). The slot lives as long as the
    process answering renews it (core/slots.py), not a fixed TTL."""
    if not slot_take(_stream_key(user_id), member, limit=settings.CHAT_PARALLEL_STREAMS):
        raise TooManyStreams(
            _("You already have %(n)d answers streaming; wait for one to finish.")
            % {"n": settings.CHAT_PARALLEL_STREAMS},
            headers={"Retry-After": "5"},
        )


def stream_slot_release(*, user_id: int | str, member: str) -> None:
    slot_give_back(_stream_key(user_id), member)


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`"50/hour"` -> (50, 3600); the same spelling as DRF's throttle rates."""
    count, _slash, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


def rate_limit_take(*, key: int | str, scope: str, rate: str) -> None:
    """Count one request in the current fixed window, or refuse with 429 and `Retry-After`.

    Unlike DRF's throttles (read, modify, write), the count is one atomic cache increment,
    so parallel requests cannot all slip under the limit (docs/reliability.md C6).
    """
    limit, period = parse_rate(rate)
    now = int(time.time())
    window = now // period
    with shared_state_required():
        count = _counter_incr(f"rate:{scope}:{key}:{window}", timeout=period + 5)
    if count > limit:
        retry_after = (window + 1) * period - now
        raise RateLimited(
            _("Rate limit exceeded: %(limit)d requests per %(period)s. Try again in %(seconds)d seconds.")
            % {"limit": limit, "period": rate.partition("/")[2], "seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


class QuotaExceeded(DomainError):
    status_code = 429
    code = "quota_exceeded"


@dataclass(frozen=True, slots=True)
class QuotaCharge:
    """One model call charged to `day`; `limit` is the user's quota when it was taken (None: unlimited)."""

    user_id: int
    day: datetime.date
    limit: int | None


def daily_quota_of(user: User) -> int | None:
    """Model calls a day for this user; None is unlimited. A quota set on the user wins."""
    if user.daily_quota is not None:
        return user.daily_quota
    if user.is_staff:
        return settings.QUOTA_DAILY_STAFF
    if user.user_type == UserType.PRO:
        return settings.QUOTA_DAILY_PRO
    return settings.QUOTA_DAILY_FREE


def plan_label(user: User) -> str:
    """The user's plan as a metric label (core/metrics.py): never the user."""
    return "staff" if user.is_staff else user.user_type


def quota_resets_at(day: datetime.date) -> datetime.datetime:
    """The start of the next day in TIME_ZONE, when a day's quota is renewed."""
    return timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))


def _charge(user_id: int, day: datetime.date, limit: int | None) -> bool:
    counter = DailyUsage.objects.filter(user_id=user_id, day=day)
    if limit is not None:
        counter = counter.filter(requests__lt=limit)
    return bool(counter.update(requests=F("requests") + 1))


def _charge_taken(user_id: int, day: datetime.date, limit: int | None) -> bool:
    """One conditional UPDATE: atomic on PostgreSQL (row lock, condition re-checked) and SQLite (one writer)."""
    if _charge(user_id, day, limit):
        return True
    # The day's first call: create its counter (a parallel request may have), then try again.
    DailyUsage.objects.bulk_create([DailyUsage(user_id=user_id, day=day)], ignore_conflicts=True)
    return _charge(user_id, day, limit)


def quota_take(*, user: User) -> QuotaCharge:
    """Charge one model call to today's quota, or refuse with 429 saying when the quota resets."""
    day = timezone.localdate()
    limit = daily_quota_of(user)
    if not _charge_taken(user.pk, day, limit):
        metrics.quota_refusals.labels(plan_label(user)).inc()
        raise _exceeded(limit or 0, day)
    return QuotaCharge(user_id=user.pk, day=day, limit=limit)


def quota_take_another(charge: QuotaCharge) -> QuotaCharge | None:
    """One more call for the same request (an autocontinuation), or None when the quota is used up."""
    day = timezone.localdate()
    if not _charge_taken(charge.user_id, day, charge.limit):
        return None
    return QuotaCharge(user_id=charge.user_id, day=day, limit=charge.limit)


def quota_refund(charge: QuotaCharge) -> None:
    """Give back a call that produced nothing, to the day it was charged to."""
    DailyUsage.objects.filter(user_id=charge.user_id, day=charge.day, requests__gt=0).update(requests=F("requests") - 1)


def _exceeded(limit: int, day: datetime.date) -> QuotaExceeded:
    resets_at = quota_resets_at(day)
    seconds = max(1, int((resets_at - timezone.now()).total_seconds()))
    return QuotaExceeded(
        _(
            "You have used your %(limit)d model calls for today. "
            "The quota resets at %(time)s (in %(hours)d h %(minutes)d min)."
        )
        % {
            "limit": limit,
            "time": formats.date_format(timezone.localtime(resets_at), "DATETIME_FORMAT") + f" {settings.TIME_ZONE}",
            "hours": seconds // 3600,
            "minutes": seconds % 3600 // 60,
        },
        headers={"Retry-After": str(seconds)},
    )
