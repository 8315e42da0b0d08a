"""`POST /chat/{bot_id}` (001) through Django's ASGI handler: streaming, errors, persistence."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from rest_framework_simplejwt.tokens import AccessToken

from bots.models import Bot, ModelConfig
from chats.models import Chat, Message, MessageStatus, Run
from knowledge.services import bot_home_base, document_ingest_text
from tests.helpers import asgi_request, metric_total, parse_sse, read_stream

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.bot(name="Pirate", system_prompt="You are a pirate robot."),
]


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def with_model(bot, model_id, provider="custom", task_type="general"):
    ModelConfig.objects.create(bot=bot, provider=provider, model_id=model_id, task_type=task_type)
    return bot


async def test_local_bot_streams_plain_text_from_its_documents_and_stores_the_turn(user, bot):
    await sync_to_async(document_ingest_text)(
        knowledge_base=await sync_to_async(bot_home_base)(bot=bot),
        filename="log.txt",
        text="Pirates bury their treasure on remote islands.",
    )
    response = await AsyncClient().post(f"/chat/{bot.id}?query=Where+do+pirates+bury+treasure", headers=bearer(user))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["X-Bytchat-Model"] == "local/bytchat-local"
    text = (await read_stream(response)).decode()
    assert "Pirates bury their treasure on remote islands." in text
    chat = await Chat.objects.aget(pk=response["X-Chat-Id"])
    assert chat.bot_id == bot.id and chat.owner_id == user.id
    messages = [m async for m in Message.objects.filter(chat=chat).order_by("created_at")]
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "complete")]
    assert messages[1].content == text
    assert messages[1].parent_id == messages[0].id
    assert messages[1].model == "bytchat-local"
    assert messages[1].completion_tokens > 0


async def test_sse_stream_sends_chunks_then_done_with_metadata(user, bot, upstream):
    await sync_to_async(with_model)(bot, "fake-echo")
    response = await AsyncClient().post(
        f"/chat/{bot.id}",
        data={"query": "hello there friend"},
        content_type="application/json",
        headers={**bearer(user), "Accept": "text/event-stream"},
    )
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["X-Accel-Buffering"] == "no"
    events = parse_sse(await read_stream(response))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"chunk"} and len(kinds) > 2
    done = events[-1][1]
    assert done["content"] == "".join(data["content"] for _, data in events[:-1]) == "Echo: hello there friend"
    assert done["model"] == "fake-echo" and done["finish_reason"] == "stop"
    # The provider's own count: one token per word of the echo, whatever the chunks were coalesced into.
    assert done["usage"]["completion_tokens"] == len(done["content"].split())
    # Every event names the run and its position: 1, 2, 3 ... with no gap, the same run throughout.
    assert [data["seq"] for _, data in events] == list(range(1, len(events) + 1))
    assert {data["run_id"] for _, data in events} == {response["X-Run-Id"]}
    sent = upstream.requests[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": bot.system_prompt}
    assert sent[-1] == {"role": "user", "content": "hello there friend"}


async def test_continuing_a_chat_sends_its_history(user, bot, upstream):
    await sync_to_async(with_model)(bot, "fake-echo")
    client = AsyncClient()
    first = await client.post(f"/chat/{bot.id}?query=first+question", headers=bearer(user))
    await read_stream(first)
    second = await client.post(
        f"/chat/{bot.id}", {"query": "second question", "chat_id": first["X-Chat-Id"]}, headers=bearer(user)
    )
    await read_stream(second)
    assert second["X-Chat-Id"] == first["X-Chat-Id"]
    roles_and_text = [(m["role"], m["content"]) for m in upstream.requests[-1].body["messages"][1:]]
    assert roles_and_text == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
    ]


async def test_router_header_reports_the_model_for_the_task(user, bot, upstream):
    await sync_to_async(with_model)(bot, "fake-echo")
    await sync_to_async(with_model)(bot, "fake-length", task_type="complex")
    response = await AsyncClient().post(f"/chat/{bot.id}?query=Explain+why+ships+float", headers=bearer(user))
    await read_stream(response)
    assert response["X-Bytchat-Task-Type"] == "complex"
    assert response["X-Bytchat-Model"] == "custom/fake-length"
    response = await AsyncClient().post(
        f"/chat/{bot.id}?query=Explain+why+ships+float&task_type=general", headers=bearer(user)
    )
    await read_stream(response)
    assert response["X-Bytchat-Model"] == "custom/fake-echo"


@pytest.mark.parametrize(
    ("query_string", "field"),
    [
        ("", "query"),
        ("?query=", "query"),
        ("?query=%20%20", "query"),
        ("?query=hi&temperature=99", "temperature"),
        ("?query=hi&temperature=warm", "temperature"),
        ("?query=hi&max_tokens=1000000000", "max_tokens"),
        ("?query=hi&task_type=poetry", "task_type"),
        ("?query=hi&chat_id=not-a-uuid", "chat_id"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_calls_no_model(user, bot, upstream, query_string, field):
    await sync_to_async(with_model)(bot, "fake-echo")
    response = await AsyncClient().post(f"/chat/{bot.id}{query_string}", headers=bearer(user))
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert upstream.requests == []


async def test_oversized_query_and_body_are_refused(user, bot, settings):
    response = await AsyncClient().post(f"/chat/{bot.id}?query=" + "a" * 16_001, headers=bearer(user))
    assert response.status_code == 400 and "query" in response.json()["detail"]
    response = await AsyncClient().post(
        f"/chat/{bot.id}",
        data=json.dumps({"query": "x" * (2 * 1024 * 1024)}),
        content_type="application/json",
        headers=bearer(user),
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


async def test_invalid_json_body_is_400(user, bot):
    for body in ("{not json", "[1, 2]"):
        response = await AsyncClient().post(
            f"/chat/{bot.id}", data=body, content_type="application/json", headers=bearer(user)
        )
        assert response.status_code == 400
        assert "JSON" in response.json()["detail"]


async def test_chat_needs_a_valid_bearer_token(bot):
    response = await AsyncClient().post(f"/chat/{bot.id}?query=hi")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    response = await AsyncClient().post(f"/chat/{bot.id}?query=hi", headers={"Authorization": "Bearer garbage"})
    assert response.status_code == 401 and response.json()["detail"]


async def test_other_users_bot_and_chat_are_404(user, other_user, bot):
    response = await AsyncClient().post(f"/chat/{bot.id}?query=hi", headers=bearer(other_user))
    assert response.status_code == 404
    assert response.json()["code"] == "bot_not_found"
    first = await AsyncClient().post(f"/chat/{bot.id}?query=hi", headers=bearer(user))
    await read_stream(first)
    their_bot = await Bot.objects.acreate(owner=other_user, name="theirs")
    response = await AsyncClient().post(
        f"/chat/{their_bot.id}?query=hi&chat_id={first['X-Chat-Id']}", headers=bearer(other_user)
    )
    assert response.status_code == 404
    assert await Message.objects.filter(chat_id=first["X-Chat-Id"]).acount() == 2


async def test_provider_without_key_is_503_naming_it_and_stores_nothing(user, bot, settings):
    providers = {name: dict(config) for name, config in settings.LLM_PROVIDERS.items()}
    providers["google"]["api_key"] = ""
    settings.LLM_PROVIDERS = providers
    await sync_to_async(with_model)(bot, "gemini-1.5-flash-latest", provider="google")
    response = await AsyncClient().post(f"/chat/{bot.id}?query=hi", headers=bearer(user))
    assert response.status_code == 503
    assert "google" in response.json()["detail"]
    assert await Chat.objects.acount() == 0


@pytest.mark.parametrize(("model", "status"), [("fake-status-401", 502), ("fake-status-429", 503), ("fake-stall", 504)])
async def test_upstream_failure_before_first_token_is_a_json_error(user, bot, upstream, settings, model, status):
    settings.LLM_READ_TIMEOUT = 0.5
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", model  # no model left to fail over to
    await sync_to_async(with_model)(bot, model)
    response = await AsyncClient().post(f"/chat/{bot.id}?query=hi", headers=bearer(user))
    assert response.status_code == status
    body = response.json()
    assert "custom" in body["detail"] and "test-provider-key" not in json.dumps(body)
    if status == 503:
        assert response["Retry-After"] == "7"
    # The question is kept; no empty assistant message is stored.
    assert await Message.objects.filter(role="assistant").acount() == 0
    assert await Message.objects.filter(role="user").acount() == 1


async def test_stream_dropped_midway_saves_partial_as_error_and_tells_client(user, bot, upstream):
    await sync_to_async(with_model)(bot, "fake-drop-3")
    plain = await AsyncClient().post(f"/chat/{bot.id}?query=a+b+c+d+e", headers=bearer(user))
    text = (await read_stream(plain)).decode()
    assert text.startswith("Echo: a b ")
    assert text.rstrip().endswith("was lost.") and "\n\n[error] " in text
    sse = await AsyncClient().post(
        f"/chat/{bot.id}?query=a+b+c+d+e", headers={**bearer(user), "Accept": "text/event-stream"}
    )
    events = parse_sse(await read_stream(sse))
    assert {kind for kind, _ in events[:-1]} == {"chunk"} and events[-1][0] == "error"
    assert "".join(data["content"] for _, data in events[:-1]) == "Echo: a b "
    assert events[-1][1]["code"] == "stream_interrupted"
    stored = [m async for m in Message.objects.filter(role="assistant")]
    assert [(m.status, m.content) for m in stored] == [("error", "Echo: a b ")] * 2


async def test_a_client_that_leaves_does_not_stop_the_answer_it_is_stored_complete(user, bot, upstream):
    await sync_to_async(with_model)(bot, "fake-tokens-30-20")
    communicator = start_stream(bot, user)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=5)
    assert start["status"] == 200
    run_id = {name.lower(): value for name, value in start["headers"]}[b"x-run-id"].decode()
    received = b""
    while received.count(b" ") < 3:
        message = await communicator.receive_output(timeout=5)
        received += message.get("body", b"")
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=5)
    # The answer runs on to its end on the server: upstream is read to the end and the whole text is stored.
    assert upstream.wait_for(lambda: upstream.completed == 1)
    assert upstream.disconnects == 0
    run = await wait_for_run_end(run_id)
    assert run.status == "complete"
    stored = await Message.objects.aget(role="assistant")
    assert stored.status == MessageStatus.COMPLETE
    assert stored.content.startswith(received.decode()) and len(stored.content.split()) == 30


async def wait_for_run_end(run_id: str, seconds: float = 10.0) -> Run:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        run = await Run.objects.aget(pk=run_id)
        if run.status != "running":
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still running after {seconds} s")


def start_stream(bot, user, query: bytes = b"query=count"):
    authorization = (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())
    return asgi_request("POST", f"/chat/{bot.id}", query=query, headers=[authorization])


async def test_get_on_the_chat_endpoint_is_a_json_405(user, bot):
    response = await AsyncClient().get(f"/chat/{bot.id}?query=hi", headers=bearer(user))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["detail"]


async def test_parallel_streams_per_user_are_capped_and_released(user, bot, upstream, settings):
    settings.CHAT_PARALLEL_STREAMS = 1
    refusals = metric_total("bytchat_stream_slot_refusals_total", user_type="free")
    await sync_to_async(with_model)(bot, "fake-tokens-200-20")
    first = start_stream(bot, user)
    await first.send_input({"type": "http.request", "body": b"", "more_body": False})
    assert (await first.receive_output(timeout=5))["status"] == 200
    await first.receive_output(timeout=5)
    refused = await AsyncClient().post(f"/chat/{bot.id}?query=again", headers=bearer(user))
    assert refused.status_code == 429
    assert refused["Retry-After"] == "5"
    assert "streaming" in refused.json()["detail"]
    assert await Message.objects.filter(content="again").acount() == 0
    # Leaving does not free the slot (the answer goes on); stopping the answer does.
    await first.send_input({"type": "http.disconnect"})
    await first.wait(timeout=5)
    still = await AsyncClient().post(f"/chat/{bot.id}?query=again", headers=bearer(user))
    assert still.status_code == 429
    # Counted by the user's plan, never by user (docs/observability.md).
    assert metric_total("bytchat_stream_slot_refusals_total", user_type="free") == refusals + 2
    run_id = await Run.objects.values_list("pk", flat=True).aget(status="running")
    stopped = await AsyncClient().post(f"/runs/{run_id}/stop", headers=bearer(user))
    assert stopped.status_code == 200 and stopped.json()["status"] == "cancelled"
    await sync_to_async(ModelConfig.objects.filter(bot=bot).update)(model_id="fake-echo")
    allowed = await AsyncClient().post(f"/chat/{bot.id}?query=again", headers=bearer(user))
    assert allowed.status_code == 200
    await read_stream(allowed)


async def test_chat_deleted_mid_stream_ends_with_an_error_event(user, bot, upstream):
    await sync_to_async(with_model)(bot, "fake-tokens-20-30")
    response = await AsyncClient().post(
        f"/chat/{bot.id}?query=go", headers={**bearer(user), "Accept": "text/event-stream"}
    )
    chunks = aiter(response.streaming_content)
    first = await anext(chunks)
    assert first.startswith(f"id: {response['X-Run-Id']}:1\nevent: chunk".encode())
    await Chat.objects.filter(pk=response["X-Chat-Id"]).adelete()
    rest = b"".join([chunk async for chunk in chunks])
    events = parse_sse(first + rest)
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == "chat_not_found"


async def test_a_silent_model_gets_sse_heartbeats_and_the_answer_still_arrives_whole(user, bot, upstream, settings):
    settings.SSE_HEARTBEAT_SECONDS = 0.05
    await sync_to_async(with_model)(bot, "fake-tokens-3-300")
    response = await AsyncClient().post(
        f"/chat/{bot.id}?query=slow", headers={**bearer(user), "Accept": "text/event-stream"}
    )
    raw = await read_stream(response)
    assert b": keep-alive\n\n" in raw
    events = parse_sse(raw)
    assert [kind for kind, _ in events] == ["chunk", "chunk", "chunk", "done"]
    assert events[-1][1]["content"] == "t0 t1 t2 "
