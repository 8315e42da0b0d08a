"""`/usage`: 000's count of today's calls (POST) and the day's and month's figures (GET)."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import DailyUsage, ModelCall
from accounts.selectors import platform_usage_by_day
from conftest import client_for
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def charge(user, day, requests: int, *calls: tuple[str, str, int, int]) -> None:
    DailyUsage.objects.update_or_create(user=user, day=day, defaults={"requests": requests})
    for surface, model, prompt, completion in calls:
        ModelCall.objects.create(
            user=user, day=day, surface=surface, model=model, prompt_tokens=prompt, completion_tokens=completion
        )


def test_post_usage_counts_todays_calls_with_the_token_in_the_body(user, anon):
    assert anon.post("/usage", {"user": user.email, "token": ""}, format="json").status_code == 401
    token = str(client_for(user)._credentials["HTTP_AUTHORIZATION"]).removeprefix("Bearer ")
    response = anon.post("/usage", {"user": user.email, "token": token, "type_user": "pro"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"usage": 0}
    today = timezone.localdate()
    charge(user, today, 5)
    charge(user, today - datetime.timedelta(days=1), 40)
    assert anon.post("/usage", {"token": token}, format="json").json() == {"usage": 5}


def test_usage_names_only_the_caller_and_refuses_unknown_fields(api, user, other_user):
    charge(other_user, timezone.localdate(), 9)
    assert_error(api.post("/usage", {"user": other_user.email}, format="json"), 403, "user")
    assert_error(api.post("/usage", {"daily_quota": 1000}, format="json"), 400, "daily_quota")
    assert api.post("/usage", {}, format="json").json() == {"usage": 0}
    assert_error(api.get("/usage?user=" + other_user.email), 403)


def test_get_usage_returns_today_month_quota_and_breakdowns(api, user, other_user, settings):
    settings.QUOTA_DAILY_FREE = 100
    today = timezone.localdate()
    charge(user, today, 3, ("conversations", "gpt-a", 10, 5), ("conversations", "gpt-a", 20, 5), ("chats", "m2", 1, 1))
    earlier = today.replace(day=1) if today.day > 1 else None
    if earlier:
        charge(user, earlier, 2, ("bytchat", "gpt-a", 100, 50), ("bytchat", "gpt-a", 100, 50))
    charge(user, today.replace(day=1) - datetime.timedelta(days=1), 50, ("bytchat", "old", 999, 999))
    charge(other_user, today, 7, ("chats", "theirs", 1000, 1000))
    body = api.get("/usage").json()
    assert body["usage"] == 3
    assert body["today"] == {
        "date": today.isoformat(),
        "requests": 3,
        "prompt_tokens": 31,
        "completion_tokens": 11,
        "total_tokens": 42,
        "quota": 100,
        "remaining": 97,
        "resets_at": body["today"]["resets_at"],
    }
    assert datetime.datetime.fromisoformat(body["today"]["resets_at"]).date() == today + datetime.timedelta(days=1)
    month_calls = 5 if earlier else 3
    assert body["month"]["requests"] == month_calls
    assert body["month"]["total_tokens"] == 42 + (300 if earlier else 0)
    models = {row["model"]: row["requests"] for row in body["by_model"]}
    assert models == ({"gpt-a": 4, "m2": 1} if earlier else {"gpt-a": 2, "m2": 1})
    assert "old" not in models and "theirs" not in models


def test_staff_without_a_quota_see_null_quota_and_remaining(make_user):
    staff = make_user(is_staff=True)
    body = client_for(staff).get("/usage").json()
    assert body["today"]["quota"] is None and body["today"]["remaining"] is None


def test_platform_usage_by_day_has_thirty_days_without_gaps(user, other_user):
    today = timezone.localdate()
    charge(user, today, 2, ("chats", "m", 10, 20))
    charge(other_user, today, 1, ("chats", "m", 5, 5))
    charge(user, today - datetime.timedelta(days=3), 4)
    charge(user, today - datetime.timedelta(days=45), 99)
    days = platform_usage_by_day(days=30)
    assert len(days) == 30 and days[-1].day == today and days[0].day == today - datetime.timedelta(days=29)
    assert (days[-1].requests, days[-1].total_tokens) == (3, 40)
    assert days[-4].requests == 4
    assert sum(day.requests for day in days) == 7
