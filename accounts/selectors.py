"""Reads on accounts: what a user (or the whole platform, for staff) has used."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.emails import InvalidEmail, email_normalize
from accounts.models import ApiKey, DailyUsage, ModelCall, User
from accounts.quotas import daily_quota_of, quota_resets_at
from core.errors import NotFound

_TOKENS = {
    "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
    "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
}


def user_by_email(*, email: str) -> User | None:
    """The account of this mailbox, however the address is spelt (accounts/emails.py)."""
    try:
        return User.objects.filter(email=email_normalize(email)).first()
    except InvalidEmail:
        return None


def calls_today(*, user: User) -> int:
    """Model calls charged to the user today, answers still streaming included (000 `/usage`)."""
    counter = DailyUsage.objects.filter(user=user, day=timezone.localdate()).values_list("requests", flat=True)
    return next(iter(counter), 0)


def _totals(calls: int, tokens: dict[str, int]) -> dict[str, int]:
    prompt, completion = tokens["prompt_tokens"], tokens["completion_tokens"]
    return {
        "requests": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def usage_summary(*, user: User) -> dict[str, Any]:
    """Today's and this month's model calls and tokens, the quota, and the month by surface and model."""
    today = timezone.localdate()
    month_start = today.replace(day=1)
    counters = DailyUsage.objects.filter(user=user, day__gte=month_start).aggregate(
        month=Coalesce(Sum("requests"), 0), today=Coalesce(Sum("requests", filter=Q(day=today)), 0)
    )
    month_calls = ModelCall.objects.filter(user=user, day__gte=month_start)
    today_tokens = month_calls.filter(day=today).aggregate(**_TOKENS)
    month_tokens = month_calls.aggregate(**_TOKENS)
    quota = daily_quota_of(user)

    def breakdown(field: str) -> list[dict[str, Any]]:
        rows = month_calls.values(field).annotate(calls=Count("id"), **_TOKENS).order_by("-calls", field)
        return [{field: row[field], **_totals(row["calls"], row)} for row in rows]

    return {
        "usage": counters["today"],
        "today": {
            "date": today.isoformat(),
            **_totals(counters["today"], today_tokens),
            "quota": quota,
            "remaining": None if quota is None else max(0, quota - counters["today"]),
            "resets_at": quota_resets_at(today).isoformat(),
        },
        "month": {"start": month_start.isoformat(), **_totals(counters["month"], month_tokens)},
        "by_surface": breakdown("surface"),
        "by_model": breakdown("model"),
    }


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: datetime.date
    requests: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def platform_usage_by_day(*, days: int = 30) -> list[DayUsage]:
    """Every user's model calls and tokens per day over the last `days` days, oldest first, no gaps."""
    today = timezone.localdate()
    first = today - datetime.timedelta(days=days - 1)
    calls = dict(
        DailyUsage.objects.filter(day__gte=first).values("day").annotate(n=Sum("requests")).values_list("day", "n")
    )
    tokens = {
        row["day"]: row
        for row in ModelCall.objects.filter(day__gte=first).values("day").annotate(**_TOKENS).order_by("day")
    }
    result = []
    for offset in range(days):
        day = first + datetime.timedelta(days=offset)
        row = tokens.get(day, {})
        result.append(
            DayUsage(
                day=day,
                requests=calls.get(day) or 0,
                prompt_tokens=row.get("prompt_tokens", 0),
                completion_tokens=row.get("completion_tokens", 0),
            )
        )
    return result


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def api_key_get(*, user: User, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(user=user, pk=key_id).first()
    if key is None:
        raise NotFound(_("API key not found."), code="api_key_not_found")
    return key
