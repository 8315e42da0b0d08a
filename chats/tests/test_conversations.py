"""The 002 conversations surface: documented shapes, the message tree, models, autocontinue, limits."""

import asyncio
import json

import pytest
from django.test import AsyncClient
from rest_framework_simplejwt.tokens import AccessToken

from chats.models import Chat, Message, MessageStatus
from tests.helpers import asgi_request, assert_error

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENTED_MESSAGE_KEYS = {
    "author",
    "message",
    "conversation_id",
    "parent_id",
    "model",
    "finish_details",
    "end_turn",
    "recipient",
    "citations",
}


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


@pytest.fixture
def fake_models(upstream, settings):
    settings.LLM_CHAT_MODELS = [
        "custom/fake-echo",
        "custom/fake-length",
        "custom/fake-length-1",
        "custom/fake-drop-3",
        "custom/fake-tokens-40-20",
        "custom/fake-tokens-200-20",
    ]
    return upstream


async def eventually(predicate, timeout: float = 5.0) -> bool:
    """Polls without leaving the event loop (the app under test needs Django's sync thread)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
    return True


async def stored_eventually(message_id, predicate, timeout: float = 5.0) -> bool:
    async with asyncio.timeout(timeout):
        while not predicate(await Message.objects.aget(pk=message_id)):
            await asyncio.sleep(0.02)
    return True


async def post(user, path: str, body: dict):
    return await AsyncClient().post(path, data=body, content_type="application/json", headers=bearer(user))


async def new(user, prompt: str = "hello there", **extra):
    return await post(user, "/conversations/new", {"prompt": prompt, **extra})


async def test_new_conversation_answers_with_the_documented_message(user, fake_models):
    response = await new(user, "What is a message tree?", model="custom/fake-echo")
    assert response.status_code == 201
    message = response.json()["response"]
    assert set(message) >= DOCUMENTED_MESSAGE_KEYS
    assert message["author"] == {"role": "assistant", "name": None, "metadata": {}}
    assert message["message"] == "Echo: What is a message tree?"
    assert message["model"] == "fake-echo"
    assert message["finish_details"] == "stop" and message["end_turn"] is True
    assert message["recipient"] == "all" and message["citations"] == []
    chat = await Chat.objects.aget(pk=message["conversation_id"])
    assert chat.owner_id == user.id and chat.surface == "conversations"
    assert chat.title == "What is a message tree?"  # made from the first prompt
    question = await Message.objects.aget(pk=message["parent_id"])
    assert question.role == "user" and question.content == "What is a message tree?"
    assert str(chat.current_node_id) == message["id"]


async def test_listing_shows_the_conversation_as_documented(user, fake_models, other_user):
    created = (await new(user, "first", title="My title", model="custom/fake-echo")).json()["response"]
    await new(other_user, "not yours", model="custom/fake-echo")
    response = await AsyncClient().get("/conversations", headers=bearer(user))
    assert response.status_code == 200
    (conversation,) = response.json()
    assert set(conversation) == {"id", "title", "create_time", "update_time", "mapping", "current_node"}
    assert conversation["id"] == created["conversation_id"]
    assert conversation["title"] == "My title"
    assert conversation["mapping"] is None
    assert conversation["current_node"] == created["id"]
    assert response["X-Total-Count"] == "1"


async def test_ask_continues_with_the_history_of_the_conversation(user, fake_models):
    first = (await new(user, "my name is Ana", model="custom/fake-echo")).json()["response"]
    response = await post(
        user, f"/conversations/{first['conversation_id']}/ask", {"prompt": "what is my name?", "model": "fake-echo"}
    )
    assert response.status_code == 201
    answer = response.json()["response"]
    assert answer["message"] == "Echo: what is my name?"
    sent = fake_models.requests[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "my name is Ana"),
        ("assistant", "Echo: my name is Ana"),
        ("user", "what is my name?"),
    ]


async def test_parent_id_answers_from_that_branch_and_makes_a_sibling(user, fake_models):
    root = (await new(user, "one", model="custom/fake-echo")).json()["response"]
    conversation = root["conversation_id"]
    second = (await post(user, f"/conversations/{conversation}/ask", {"prompt": "two", "model": "fake-echo"})).json()
    branch = await post(
        user,
        f"/conversations/{conversation}/ask",
        {"prompt": "two again", "parent_id": root["id"], "model": "fake-echo"},
    )
    assert branch.status_code == 201
    branched = branch.json()["response"]
    # The model saw the path to the chosen parent, not the other branch.
    sent = [(m["role"], m["content"]) for m in fake_models.requests[-1].body["messages"][1:]]
    assert sent == [("user", "one"), ("assistant", "Echo: one"), ("user", "two again")]
    # The new question is a sibling of the first "two".
    new_question = await Message.objects.aget(pk=branched["parent_id"])
    old_question = await Message.objects.aget(pk=second["response"]["parent_id"])
    assert str(new_question.parent_id) == str(old_question.parent_id) == root["id"]

    messages = (await AsyncClient().get(f"/conversations/{conversation}/messages", headers=bearer(user))).json()
    assert len(messages) == 6 and all(set(m) >= DOCUMENTED_MESSAGE_KEYS for m in messages)
    assert [m["message"] for m in messages if m["author"]["role"] == "user"] == ["one", "two", "two again"]
    tree = (await AsyncClient().get(f"/conversations/{conversation}", headers=bearer(user))).json()
    assert sorted(tree["mapping"][root["id"]]["children"]) == sorted([str(old_question.id), str(new_question.id)])
    assert tree["current_node"] == branched["id"]


async def test_unknown_model_is_a_400_and_nothing_is_stored(user, fake_models):
    response = await new(user, "hi", model="text-davinci-002-render-sha")
    assert_error(response, 400, "text-davinci-002-render-sha")
    assert await Chat.objects.filter(owner=user).acount() == 0
    assert fake_models.requests == []


async def test_autocontinue_keeps_generating_while_the_model_stops_for_length(user, fake_models):
    response = await new(user, "write a lot", model="custom/fake-length-1", autocontinue="true")
    message = response.json()["response"]
    assert message["message"] == "Part 1. Part 2. "
    assert message["finish_details"] == "stop" and message["end_turn"] is True
    assert len(fake_models.requests) == 2
    continued = fake_models.requests[-1].body["messages"]
    assert continued[-2] == {"role": "assistant", "content": "Part 1. "}
    assert continued[-1]["role"] == "user" and "Continue" in continued[-1]["content"]


async def test_without_autocontinue_an_answer_cut_for_length_says_so(user, fake_models):
    message = (await new(user, "write a lot", model="custom/fake-length-1", autocontinue="false")).json()["response"]
    assert message["message"] == "Part 1. "
    assert message["finish_details"] == "length" and message["end_turn"] is False
    assert len(fake_models.requests) == 1


async def test_autocontinue_stops_at_the_cap(user, fake_models, settings):
    settings.CHAT_AUTOCONTINUE_MAX = 2
    message = (await new(user, "never ends", model="custom/fake-length", autocontinue=True)).json()["response"]
    assert len(fake_models.requests) == 3
    assert message["finish_details"] == "length"


async def test_autocontinue_must_be_true_or_false(user, fake_models):
    assert_error(await new(user, "x", autocontinue="maybe"), 400, "autocontinue")


async def test_rate_limit_is_a_429_with_retry_after(user, fake_models, settings):
    settings.CONVERSATIONS_RATE = "2/hour"
    first = await new(user, "one", model="custom/fake-echo")
    conversation = first.json()["response"]["conversation_id"]
    assert (await post(user, f"/conversations/{conversation}/ask", {"prompt": "two"})).status_code == 201
    refused = await post(user, f"/conversations/{conversation}/ask", {"prompt": "three"})
    assert_error(refused, 429, "Rate limit")
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert_error(await new(user, "four"), 429)


async def test_failure_midway_returns_the_error_and_keeps_the_partial(user, fake_models):
    response = await new(user, "break this answer after three words please", model="custom/fake-drop-3")
    assert response.status_code == 502
    assert response.json()["detail"]
    partial = await Message.objects.aget(role="assistant", chat__owner=user)
    assert partial.status == MessageStatus.ERROR and partial.content


async def test_two_questions_at_once_on_one_conversation_never_interleave(user, fake_models):
    first = (await new(user, "start", model="custom/fake-echo")).json()["response"]
    path = f"/conversations/{first['conversation_id']}/ask"
    responses = await asyncio.gather(
        post(user, path, {"prompt": "slow one", "model": "fake-tokens-40-20"}),
        post(user, path, {"prompt": "slow two", "model": "fake-tokens-40-20"}),
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    refused = next(r for r in responses if r.status_code == 409)
    assert "already" in refused.json()["detail"]
    assert await Message.objects.filter(chat_id=first["conversation_id"]).acount() == 4


async def test_delete_one_and_all_touch_only_the_callers_conversations(user, other_user, fake_models):
    mine = [(await new(user, f"q{i}", model="fake-echo")).json()["response"]["conversation_id"] for i in range(3)]
    theirs = (await new(other_user, "theirs", model="fake-echo")).json()["response"]["conversation_id"]
    client = AsyncClient()
    assert (await client.delete(f"/conversations/{theirs}", headers=bearer(user))).status_code == 404
    assert (await client.delete(f"/conversations/{mine[0]}", headers=bearer(user))).status_code == 204
    assert (await client.delete(f"/conversations/{mine[0]}", headers=bearer(user))).status_code == 404
    assert (await client.delete("/conversations/all", headers=bearer(user))).status_code == 204
    assert await Chat.objects.filter(owner=user).acount() == 0
    assert await Chat.objects.filter(pk=theirs).aexists()


async def test_another_users_conversation_is_a_404_everywhere(user, other_user, fake_models):
    theirs = (await new(other_user, "secret plans", model="fake-echo")).json()["response"]
    conversation = theirs["conversation_id"]
    client = AsyncClient()
    assert_error(await client.get(f"/conversations/{conversation}/messages", headers=bearer(user)), 404)
    assert_error(await client.get(f"/conversations/{conversation}", headers=bearer(user)), 404)
    assert_error(await post(user, f"/conversations/{conversation}/ask", {"prompt": "leak?"}), 404)
    count = await Message.objects.filter(chat_id=conversation).acount()
    assert count == 2
    # A parent from another conversation cannot be grafted into mine.
    mine = (await new(user, "mine", model="fake-echo")).json()["response"]["conversation_id"]
    grafted = await post(user, f"/conversations/{mine}/ask", {"prompt": "x", "parent_id": theirs["id"]})
    assert_error(grafted, 404)


async def test_unauthenticated_and_malformed_requests_get_clear_errors(user, fake_models):
    client = AsyncClient()
    assert_error(await client.post("/conversations/new", data={"prompt": "x"}, content_type="application/json"), 401)
    assert_error(await post(user, "/conversations/new", {}), 400, "prompt")
    assert_error(await post(user, "/conversations/new", {"prompt": "x", "owner": 3}), 400, "owner")
    bad_json = await client.post(
        "/conversations/new", data="{not json", content_type="application/json", headers=bearer(user)
    )
    assert_error(bad_json, 400, "JSON")
    assert_error(await client.get("/conversations/new", headers=bearer(user)), 405)


async def test_client_leaving_during_ask_leaves_the_answer_running_to_its_end(user, fake_models, settings):
    settings.RUN_CHECKPOINT_SECONDS = 0.2
    first = (await new(user, "start", model="custom/fake-echo")).json()["response"]
    conversation = first["conversation_id"]
    body = json.dumps({"prompt": "long answer", "model": "fake-tokens-40-20"}).encode()
    communicator = asgi_request(
        "POST",
        f"/conversations/{conversation}/ask",
        headers=[
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode()),
        ],
    )
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    assert await eventually(lambda: len(fake_models.requests) == 2)
    await asyncio.sleep(0.3)  # a few tokens arrive
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=5)
    # The answer is written on: its row grows as it streams (checkpoints), and the chat is busy meanwhile.
    answer = await Message.objects.filter(chat_id=conversation, role="assistant").alatest("created_at")
    assert answer.status == MessageStatus.STREAMING
    assert await stored_eventually(answer.pk, lambda message: len(message.content.split()) >= 10)
    busy = await post(user, f"/conversations/{conversation}/ask", {"prompt": "still there?"})
    assert busy.status_code == 409 and busy.json()["code"] == "chat_busy"
    assert await eventually(lambda: fake_models.completed >= 2, timeout=10)
    assert fake_models.disconnects == 0
    assert await stored_eventually(
        answer.pk, lambda message: message.status == MessageStatus.COMPLETE and len(message.content.split()) == 40
    )
    # The chat is free again for the next question.
    again = await post(user, f"/conversations/{conversation}/ask", {"prompt": "still there?"})
    assert again.status_code == 201
