"""Daily quotas of model calls (docs/reliability.md C4, C5): atomic, charged only when the model answers."""

import asyncio
import datetime
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.test import AsyncClient
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts import selectors
from accounts.models import CallOutcome, DailyUsage, ModelCall
from accounts.quotas import QuotaCharge, QuotaExceeded, daily_quota_of, quota_refund, quota_take
from bots.models import Bot, ModelConfig
from chats.models import Chat, Message, MessageStatus, Run, Surface
from tests.helpers import (
    asgi_body,
    asgi_request,
    assert_error,
    parse_sse,
    read_stream,
    ws_answer,
    ws_session,
    ws_session_path,
)

pytestmark = pytest.mark.django_db(transaction=True)


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def calls_today(user) -> int:
    return selectors.calls_today(user=user)


def with_quota(user, quota: int | None):
    user.daily_quota = quota
    user.save(update_fields=["daily_quota"])
    return user


def bot_with(user, model_id: str, provider: str = "custom") -> Bot:
    bot = Bot.objects.create(owner=user, name=model_id)
    ModelConfig.objects.create(bot=bot, provider=provider, model_id=model_id, task_type="general")
    return bot


def test_quota_per_user_type_staff_unlimited_and_a_users_own_quota_wins(make_user, settings):
    settings.QUOTA_DAILY_FREE, settings.QUOTA_DAILY_PRO = 100, 2000
    assert daily_quota_of(make_user()) == 100
    assert daily_quota_of(make_user(user_type="pro")) == 2000
    assert daily_quota_of(make_user(is_staff=True)) is None
    assert daily_quota_of(make_user(user_type="pro", daily_quota=7)) == 7
    assert daily_quota_of(make_user(is_staff=True, daily_quota=0)) == 0
    settings.QUOTA_DAILY_STAFF = 10_000
    assert daily_quota_of(make_user(is_staff=True)) == 10_000


def test_past_the_quota_a_call_is_refused_with_when_it_resets(user):
    with_quota(user, 2)
    quota_take(user=user)
    quota_take(user=user)
    with pytest.raises(QuotaExceeded) as refused:
        quota_take(user=user)
    assert refused.value.status_code == 429
    tomorrow = timezone.make_aware(datetime.datetime.combine(timezone.localdate(), datetime.time.min))
    tomorrow += datetime.timedelta(days=1)
    seconds = int(refused.value.headers["Retry-After"])
    assert abs(seconds - (tomorrow - timezone.now()).total_seconds()) < 5
    assert "2 model calls" in refused.value.message and "resets" in refused.value.message
    assert calls_today(user) == 2  # the refused call was not charged


def test_staff_are_counted_but_never_refused(make_user):
    staff = make_user(is_staff=True)
    for _ in range(300):
        quota_take(user=staff)
    assert calls_today(staff) == 300


def test_a_refund_goes_back_to_the_day_the_call_was_charged_to(user):
    with_quota(user, 5)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    DailyUsage.objects.create(user=user, day=yesterday, requests=3)
    charge = quota_take(user=user)
    quota_refund(QuotaCharge(user_id=user.pk, day=yesterday, limit=5))
    assert DailyUsage.objects.get(user=user, day=yesterday).requests == 2
    assert calls_today(user) == 1
    quota_refund(charge)
    quota_refund(charge)  # never below zero
    assert calls_today(user) == 0


def test_twenty_parallel_takes_with_five_left_charge_exactly_five(user):
    """The race of docs/reliability.md C4 on the counter itself, from 20 threads with their own connections."""
    with_quota(user, 8)
    for _ in range(3):
        quota_take(user=user)
    barrier = threading.Barrier(20)
    results: list[str] = []

    def take() -> None:
        try:
            barrier.wait()
            quota_take(user=user)
            results.append("ok")
        except QuotaExceeded:
            results.append("429")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["429"] * 15 + ["ok"] * 5
    assert calls_today(user) == 8


async def test_twenty_parallel_chat_requests_with_five_calls_left_answer_five(user, upstream, settings):
    """C4 through a chat surface: 5 answers stream, 15 get 429 + Retry-After, 5 calls stored."""
    settings.CHAT_PARALLEL_STREAMS = 20
    await sync_to_async(with_quota)(user, 5)
    bot = await sync_to_async(bot_with)(user, "fake-echo")
    client = AsyncClient()
    responses = await asyncio.gather(
        *(client.post(f"/chat/{bot.id}?query=question+{i}", headers=bearer(user)) for i in range(20))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 5 + [429] * 15
    for refused in (r for r in responses if r.status_code == 429):
        assert int(refused["Retry-After"]) > 0
        assert "model calls for today" in refused.json()["detail"]
    for answered in (r for r in responses if r.status_code == 200):
        assert (await read_stream(answered)).decode().startswith("Echo: question")
    assert await sync_to_async(calls_today)(user) == 5
    assert await ModelCall.objects.filter(user=user).acount() == 5
    assert await Message.objects.filter(chat__owner=user, role="user").acount() == 5  # refusals stored nothing


async def test_a_call_that_fails_before_its_first_token_is_not_charged(user, upstream, settings):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", "fake-status-500"  # no model left to fail over to
    bot = await sync_to_async(bot_with)(user, "fake-status-500")
    response = await AsyncClient().post(f"/chat/{bot.id}?query=hi", headers=bearer(user))
    assert response.status_code == 502
    assert await sync_to_async(calls_today)(user) == 0
    assert not await ModelCall.objects.filter(user=user).aexists()


async def test_a_call_that_fails_midway_is_charged_once_with_estimated_tokens(user, upstream):
    bot = await sync_to_async(bot_with)(user, "fake-drop-3")
    response = await AsyncClient().post(
        f"/chat/{bot.id}", data={"query": "a b c d e f"}, content_type="application/json", headers=bearer(user)
    )
    assert response.status_code == 200
    await read_stream(response)
    assert await sync_to_async(calls_today)(user) == 1
    call = await ModelCall.objects.aget(user=user)
    assert (call.outcome, call.estimated, call.surface, call.model) == (
        CallOutcome.ERROR,
        True,
        Surface.BYTCHAT,
        "fake-drop-3",
    )
    assert call.completion_tokens > 0 and call.prompt_tokens > 0


async def test_an_answer_stopped_before_the_first_token_is_not_charged_after_it_is(user, upstream):
    stalled = await sync_to_async(bot_with)(user, "fake-stall")
    authorization = (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())
    early = asgi_request("POST", f"/chat/{stalled.id}", query=b"query=hi", headers=[authorization])
    await early.send_input({"type": "http.request", "body": b"", "more_body": False})
    assert await sync_to_async(upstream.wait_for)(lambda: len(upstream.requests) == 1)
    assert await sync_to_async(calls_today)(user) == 1  # charged while the call is made
    await early.send_input({"type": "http.disconnect"})
    await early.wait(timeout=5)
    assert await sync_to_async(calls_today)(user) == 1  # leaving does not stop the answer, so it stays charged
    run_id = await Run.objects.values_list("pk", flat=True).aget(status="running")
    stopped = await AsyncClient().post(f"/runs/{run_id}/stop", headers=bearer(user))
    assert stopped.json()["status"] == "cancelled"
    assert await sync_to_async(calls_today)(user) == 0

    slow = await sync_to_async(bot_with)(user, "fake-tokens-200-20")
    late = asgi_request("POST", f"/chat/{slow.id}", query=b"query=hi", headers=[authorization])
    await late.send_input({"type": "http.request", "body": b"", "more_body": False})
    await late.receive_output(timeout=5)
    received = b""
    while received.count(b" ") < 3:
        received += (await late.receive_output(timeout=5)).get("body", b"")
    await late.send_input({"type": "http.disconnect"})
    await late.wait(timeout=5)
    run_id = await Run.objects.values_list("pk", flat=True).aget(status="running")
    stopped = await AsyncClient().post(f"/runs/{run_id}/stop", headers=bearer(user))
    assert stopped.json()["status"] == "cancelled"
    assert await sync_to_async(calls_today)(user) == 1
    call = await ModelCall.objects.aget(user=user)
    assert call.outcome == CallOutcome.CANCELLED


async def test_autocontinue_charges_each_call_and_stops_when_the_quota_is_used(user, upstream, settings):
    settings.LLM_CHAT_MODELS = ["custom/fake-length-5"]
    await sync_to_async(with_quota)(user, 3)
    response = await AsyncClient().post(
        "/conversations/new",
        data={"prompt": "go", "model": "custom/fake-length-5", "autocontinue": True},
        content_type="application/json",
        headers=bearer(user),
    )
    assert response.status_code == 201, response.content
    answer = response.json()["response"]
    assert answer["message"].count("Part") == 3 and answer["finish_details"] == "length"
    assert len(upstream.requests) == 3  # the fourth call was never made
    assert await sync_to_async(calls_today)(user) == 3
    calls = [c async for c in ModelCall.objects.filter(user=user)]
    assert [c.surface for c in calls] == [Surface.CONVERSATIONS] * 3
    refused = await AsyncClient().post(
        "/conversations/new", data={"prompt": "more"}, content_type="application/json", headers=bearer(user)
    )
    assert_error(refused, 429, "model calls")


async def test_every_chat_surface_refuses_past_the_quota_and_stores_nothing(user, settings):
    """001, 000, 002, 004 answer 429 with `Retry-After`; a 003 socket gets an error frame and stays open."""
    await sync_to_async(with_quota)(user, 0)
    bot = await sync_to_async(Bot.objects.create)(owner=user, name="b")
    client = AsyncClient()
    json_type = "application/json"
    refusals = [
        await client.post(f"/chat/{bot.id}?query=hi", headers=bearer(user)),
        await client.post("/chat", data={"text": "hi"}, content_type=json_type, headers=bearer(user)),
        await client.post("/conversations/new", data={"prompt": "hi"}, content_type=json_type, headers=bearer(user)),
    ]
    chat = (await client.post("/chats/create", data={"name": "c"}, content_type=json_type, headers=bearer(user))).json()
    human = {"chat_id": chat["id"], "role": "Human", "message": "hi"}
    await client.post("/conversations/create", data=human, content_type=json_type, headers=bearer(user))
    refusals.append(await client.get(f"/conversations/inference/{chat['id']}", headers=bearer(user)))
    refusals.append(await client.get(f"/conversations/inference_internet/{chat['id']}", headers=bearer(user)))
    for response in refusals:
        assert_error(response, 429, "model calls")
        assert int(response["Retry-After"]) > 0
    session = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    async with ws_session(await sync_to_async(ws_session_path)(session)) as socket:
        await socket.send_json_to({"type": "message", "content": "hi"})
        frames = await ws_answer(socket)
        assert frames[-1]["type"] == "error" and "model calls" in frames[-1]["content"]
        assert await socket.receive_nothing(timeout=0.2)  # still open
    assert await Message.objects.filter(chat__owner=user, role="assistant").acount() == 0
    assert await Message.objects.filter(chat__owner=user).acount() == 1  # only the 004 Human turn written by hand
    assert await sync_to_async(calls_today)(user) == 0


async def test_sse_answers_record_the_calls_surface_and_provider_usage(user, upstream):
    bot = await sync_to_async(bot_with)(user, "fake-echo")
    response = await AsyncClient().post(
        f"/chat/{bot.id}",
        data={"query": "one two three"},
        content_type="application/json",
        headers={**bearer(user), "Accept": "text/event-stream"},
    )
    done = parse_sse(await read_stream(response))[-1][1]
    call = await ModelCall.objects.aget(user=user)
    assert (call.prompt_tokens, call.completion_tokens, call.estimated) == (
        done["usage"]["prompt_tokens"],
        done["usage"]["completion_tokens"],
        False,
    )
    assert (call.model, call.outcome, call.day) == ("fake-echo", CallOutcome.COMPLETE, timezone.localdate())
    stored = await Message.objects.aget(role="assistant")
    assert stored.status == MessageStatus.COMPLETE


async def test_a_chat_deleted_mid_answer_records_its_call_once(user, upstream):
    """The answer cannot be stored, but the call was made: charged and recorded once, not twice."""
    bot = await sync_to_async(bot_with)(user, "fake-tokens-30-20")
    authorization = (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())
    stream = asgi_request("POST", f"/chat/{bot.id}", query=b"query=hi", headers=[authorization])
    await stream.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await stream.receive_output(timeout=5)
    assert start["status"] == 200
    await Chat.objects.filter(owner=user).adelete()
    body = await asgi_body(stream)
    assert b"Chat not found" in body  # the stream says why the answer was not kept
    assert await sync_to_async(calls_today)(user) == 1
    assert [c.outcome async for c in ModelCall.objects.filter(user=user)] == [CallOutcome.COMPLETE]


async def test_a_continuation_that_fails_before_its_first_token_is_given_back(user, upstream, settings):
    settings.LLM_CHAT_MODELS = ["custom/fake-length-then-fail"]
    response = await AsyncClient().post(
        "/conversations/new",
        data={"prompt": "go", "model": "custom/fake-length-then-fail", "autocontinue": True},
        content_type="application/json",
        headers=bearer(user),
    )
    assert response.status_code == 502
    assert len(upstream.requests) == 2
    assert await sync_to_async(calls_today)(user) == 1  # the first call wrote "Part 1."; the second nothing
    assert [c.outcome async for c in ModelCall.objects.filter(user=user)] == [CallOutcome.COMPLETE]
    stored = await Message.objects.aget(role="assistant")
    assert (stored.status, stored.content) == (MessageStatus.ERROR, "Part 1. ")


def _yesterdays_turn(user, model_id: str):
    """A turn whose quota unit was charged yesterday, as for an answer that runs past midnight."""
    import dataclasses

    from chats.services import bot_chat_start

    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    reply, _task_type = bot_chat_start(user=user, bot_id=str(bot_with(user, model_id).pk), query="late")
    DailyUsage.objects.filter(user=user).update(day=yesterday)
    lease = dataclasses.replace(reply.lease, charge=dataclasses.replace(reply.lease.charge, day=yesterday))
    return dataclasses.replace(reply, lease=lease), yesterday


@pytest.mark.parametrize(("model_id", "charged"), [("fake-echo", 1), ("fake-status-500", 0)])
async def test_an_answer_past_midnight_is_charged_and_recorded_on_the_day_it_started(
    user, upstream, settings, model_id, charged
):
    from chats.runs.runner import run_launch

    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", model_id  # no model left to fail over to
    reply, yesterday = await sync_to_async(_yesterdays_turn)(user, model_id)
    live = run_launch(reply)
    await live.task
    assert live.log.events[-1].event.type == ("done" if charged else "error")
    assert (await DailyUsage.objects.aget(user=user, day=yesterday)).requests == charged
    assert await sync_to_async(calls_today)(user) == 0
    assert [c.day async for c in ModelCall.objects.filter(user=user)] == [yesterday] * charged
