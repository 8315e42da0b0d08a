"""Model failover (issue 12): a model that fails before its first token hands the answer to the bot's
next config, then the platform default; the client sees one answer, charged once, from the model named."""

import socket

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from accounts.models import DailyUsage, ModelCall
from bots.models import Bot, ModelConfig
from chats.models import Message
from chats.tests.test_bot_chat import bearer
from tests.helpers import parse_sse, read_stream

pytestmark = pytest.mark.django_db(transaction=True)

COMPLEX = "Explain why the sea is salty"  # routed to the `complex` config (bots/routing.py)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def bot_with(user, *configs: tuple[str, str, str]) -> Bot:
    bot = Bot.objects.create(owner=user, name="Failover")
    for task_type, provider, model_id in configs:
        ModelConfig.objects.create(bot=bot, task_type=task_type, provider=provider, model_id=model_id)
    return bot


async def ask(user, bot, query: str = COMPLEX):
    response = await AsyncClient().post(
        f"/chat/{bot.id}",
        data={"query": query},
        content_type="application/json",
        headers={**bearer(user), "Accept": "text/event-stream"},
    )
    events = parse_sse(await read_stream(response)) if response.status_code == 200 else []
    return response, events


def unreachable_custom(settings) -> None:
    providers = {name: dict(config) for name, config in settings.LLM_PROVIDERS.items()}
    providers["custom"]["base_url"] = closed_port_url()
    settings.LLM_PROVIDERS = providers


@pytest.mark.parametrize("failure", ["fake-status-503", "fake-status-429", "fake-status-401", "refused"])
async def test_a_model_failing_before_its_first_token_hands_the_answer_to_the_general_config(
    user, upstream, settings, failure
):
    if failure == "refused":
        unreachable_custom(settings)
    chosen = ("complex", "custom", "fake-echo" if failure == "refused" else failure)
    bot = await sync_to_async(bot_with)(user, chosen, ("general", "openai", "fake-echo"))
    response, events = await ask(user, bot)
    assert response.status_code == 200
    assert response["X-Bytchat-Model"] == "openai/fake-echo"
    assert [kind for kind, _data in events][-1] == "done"
    done = events[-1][1]
    assert done["content"] == f"Echo: {COMPLEX}" and done["model"] == "fake-echo"
    assert "".join(data["content"] for kind, data in events if kind == "chunk") == done["content"]
    reply = await Message.objects.aget(role="assistant")
    assert (reply.model, reply.status, reply.content) == ("fake-echo", "complete", done["content"])
    # The user pays for one answer: one unit of the quota, one call recorded, the one that answered.
    assert (await DailyUsage.objects.aget(user=user)).requests == 1
    assert [(c.model, c.outcome) async for c in ModelCall.objects.filter(user=user)] == [("fake-echo", "complete")]
    tried = [request.body["model"] for request in upstream.requests]
    assert tried == (["fake-echo"] if failure == "refused" else [failure, "fake-echo"])


async def test_the_platform_default_answers_when_the_bots_configs_fail(user, upstream, settings):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "openai", "fake-echo"
    bot = await sync_to_async(bot_with)(
        user, ("complex", "custom", "fake-status-500"), ("general", "custom", "fake-status-503")
    )
    response, events = await ask(user, bot)
    assert response["X-Bytchat-Model"] == "openai/fake-echo" and events[-1][1]["model"] == "fake-echo"
    assert [r.body["model"] for r in upstream.requests] == ["fake-status-500", "fake-status-503", "fake-echo"]
    assert await ModelCall.objects.filter(user=user).acount() == 1


async def test_every_model_failing_gives_the_last_error_and_charges_nothing(user, upstream, settings):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", "fake-status-429"
    bot = await sync_to_async(bot_with)(
        user, ("complex", "custom", "fake-status-503"), ("general", "openai", "fake-status-500")
    )
    response, _events = await ask(user, bot)
    assert response.status_code == 503 and response.json()["code"] == "provider_rate_limited"
    assert response["Retry-After"] == "7"
    tried = [r.body["model"] for r in upstream.requests]
    assert tried == ["fake-status-503", "fake-status-500", "fake-status-429"]  # each once
    assert not await Message.objects.filter(role="assistant").aexists()
    assert (await DailyUsage.objects.aget(user=user)).requests == 0
    assert not await ModelCall.objects.filter(user=user).aexists()


async def test_a_request_the_provider_refuses_as_such_does_not_fail_over(user, upstream):
    bot = await sync_to_async(bot_with)(
        user, ("complex", "custom", "fake-status-400"), ("general", "openai", "fake-echo")
    )
    response, _events = await ask(user, bot)
    assert response.status_code == 502 and response.json()["code"] == "provider_refused"
    assert [r.body["model"] for r in upstream.requests] == ["fake-status-400"]


async def test_no_failover_once_a_token_was_relayed(user, upstream):
    bot = await sync_to_async(bot_with)(user, ("complex", "custom", "fake-drop-3"), ("general", "openai", "fake-echo"))
    _response, events = await ask(user, bot, query=f"{COMPLEX} a b c d e")
    assert {kind for kind, _data in events[:-1]} == {"chunk"} and events[-1][0] == "error"
    assert "".join(data["content"] for _kind, data in events[:-1]) == "Echo: Explain why "
    assert [r.body["model"] for r in upstream.requests] == ["fake-drop-3"]
    reply = await Message.objects.aget(role="assistant")
    assert (reply.model, reply.status) == ("fake-drop-3", "error")


async def test_failover_stays_within_the_total_time(user, upstream, settings):
    # The chosen model stalls past the whole answer's time: nothing is left for another one.
    settings.LLM_TOTAL_TIMEOUT = 0.5
    bot = await sync_to_async(bot_with)(user, ("complex", "custom", "fake-stall"), ("general", "openai", "fake-echo"))
    response, _events = await ask(user, bot)
    assert response.status_code == 504 and response.json()["code"] == "provider_timeout"
    assert [r.body["model"] for r in upstream.requests] == ["fake-stall"]
