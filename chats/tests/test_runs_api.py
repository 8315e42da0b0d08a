"""`/runs/{run_id}`, its events and its stop: the owner's runs only (docs/runs.md; docs/reliability.md A1)."""

import datetime
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.services import api_key_create
from chats.models import Message, Run
from chats.services import turn_start
from chats.visitors import visitor_new, visitor_token_issue
from tests.helpers import parse_sse, read_stream

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.bot(models=[("general", "custom", "fake-echo")])]


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


async def answered(user, bot, query: str = "hello") -> tuple[str, list]:
    response = await AsyncClient().post(
        f"/chat/{bot.id}?query={query}", headers={**bearer(user), "Accept": "text/event-stream"}
    )
    return response["X-Run-Id"], parse_sse(await read_stream(response))


async def test_the_owner_reads_a_runs_state_and_replays_its_events_from_any_position(user, bot, upstream):
    run_id, events = await answered(user, bot)
    detail = await AsyncClient().get(f"/runs/{run_id}", headers=bearer(user))
    assert detail.status_code == 200
    body = detail.json()
    assert (body["status"], body["seq"], body["content"]) == ("complete", len(events), "Echo: hello")
    assert body["message_id"] == events[-1][1]["message_id"] and body["chat_id"] == events[-1][1]["chat_id"]
    # With ?after=N, or Last-Event-ID as the stream sent it, the events after N.
    for headers, query in (({}, "?after=1"), ({"Last-Event-ID": f"{run_id}:1"}, ""), ({"Last-Event-ID": "1"}, "")):
        replay = await AsyncClient().get(f"/runs/{run_id}/events{query}", headers={**bearer(user), **headers})
        assert replay.status_code == 200 and replay["Content-Type"].startswith("text/event-stream")
        assert parse_sse(await read_stream(replay)) == events[1:]
    # With an API key too; at the end, nothing more (204, which stops an EventSource reconnecting).
    _key, raw = await sync_to_async(api_key_create)(user=user, name="cli")
    end = await AsyncClient().get(
        f"/runs/{run_id}/events?after={len(events)}", headers={"Authorization": f"Bearer {raw}"}
    )
    assert end.status_code == 204


async def test_another_users_run_is_a_404_on_every_run_endpoint(user, other_user, bot, upstream):
    run_id, _events = await answered(user, bot)
    for method, path in (("get", ""), ("get", "/events"), ("post", "/stop")):
        for who in (bearer(other_user), {}):
            response = await getattr(AsyncClient(), method)(f"/runs/{run_id}{path}", headers=who)
            expected = 404 if who else 401
            assert response.status_code == expected, (method, path, response.content)
            assert response.json()["detail"]
        missing = await getattr(AsyncClient(), method)(f"/runs/{uuid.uuid4()}{path}", headers=bearer(user))
        assert missing.status_code == 404 and missing.json()["code"] == "run_not_found"
    # Nothing was stopped by the attempt.
    assert (await Run.objects.aget(pk=run_id)).status == "complete"


async def test_a_visitor_reaches_only_the_runs_of_its_own_chats(user, bot, upstream):
    run_id, _events = await answered(user, bot)
    visitor = visitor_new(bot)
    token = visitor_token_issue(visitor)
    response = await AsyncClient().get(f"/runs/{run_id}", headers={"Authorization": f"Visitor {token}"})
    assert response.status_code == 404
    forged = await AsyncClient().get(f"/runs/{run_id}", headers={"Authorization": "Visitor not-a-token"})
    assert forged.status_code == 404


async def test_bad_positions_are_a_400_naming_the_problem(user, bot, upstream):
    run_id, _events = await answered(user, bot)
    for headers, query in (
        ({"Last-Event-ID": "not a position"}, ""),
        ({}, "?after=-1"),
        ({}, "?after=x"),
        ({"Last-Event-ID": f"{uuid.uuid4()}:1"}, ""),  # another run's position
    ):
        response = await AsyncClient().get(f"/runs/{run_id}/events{query}", headers={**bearer(user), **headers})
        assert response.status_code == 400, (headers, query)
        assert response.json()["code"] == "invalid_last_event_id" and "Last-Event-ID" in response.json()["detail"]


async def test_stopping_a_run_that_ended_changes_nothing(user, bot, upstream):
    run_id, events = await answered(user, bot)
    response = await AsyncClient().post(f"/runs/{run_id}/stop", headers=bearer(user))
    assert response.status_code == 200
    assert response.json()["status"] == "complete" and response.json()["content"] == events[-1][1]["content"]
    wrong = await AsyncClient().get(f"/runs/{run_id}/stop", headers=bearer(user))
    assert wrong.status_code == 405 and json.loads(wrong.content)["detail"]


async def test_a_run_whose_process_died_reads_as_interrupted_and_a_stop_finds_it_ended(user, bot, upstream):
    # Written by a process that is gone (its lease lapsed), and no keeper runs here to notice.
    reply, _task_type = await sync_to_async(turn_start)(user=user, prompt="hello", bot=bot)
    await Message.objects.filter(pk=reply.run.message_id).aupdate(content="Half an ans")
    await Run.objects.filter(pk=reply.run.pk).aupdate(
        seq=3, lease_holder="gone:1:x", lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    detail = (await AsyncClient().get(f"/runs/{reply.run.pk}", headers=bearer(user))).json()
    assert (detail["status"], detail["error_code"], detail["seq"]) == ("interrupted", "interrupted", 4)
    assert detail["content"] == "Half an ans"
    stopped = await AsyncClient().post(f"/runs/{reply.run.pk}/stop", headers=bearer(user))
    assert stopped.status_code == 200 and stopped.json()["status"] == "interrupted"
