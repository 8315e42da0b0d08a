"""The 000 `/chat`: answers grounded in the caller's own knowledge, with the seed's body token."""

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from chats.models import Chat, Message
from knowledge.services import document_ingest_text, knowledge_base_get_or_create
from tests.helpers import assert_error, read_stream

pytestmark = pytest.mark.django_db(transaction=True)


def learn(user, text: str, name: str = "biology") -> None:
    base = knowledge_base_get_or_create(owner=user, name=name)
    document_ingest_text(knowledge_base=base, filename=f"{name}.txt", text=text)


async def chat(body: dict, headers: dict | None = None):
    return await AsyncClient().post("/chat", data=body, content_type="application/json", headers=headers or {})


def body_for(caller, **fields) -> dict:
    return {"user": caller.email, "token": str(AccessToken.for_user(caller)), "type_user": "free", **fields}


async def test_answers_from_the_callers_documents_with_the_token_in_the_body(user, other_user):
    await sync_to_async(learn)(user, "Mitochondria produce most of the cell's energy as ATP.")
    await sync_to_async(learn)(other_user, "Mitochondria hold the secret canary-42 of another user.")
    response = await chat(body_for(user, text="What do mitochondria produce?", temperature=0.2, max_tokens=200))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = (await read_stream(response)).decode()
    assert "ATP" in text
    assert "canary-42" not in text
    stored = await Message.objects.aget(chat_id=response["X-Chat-Id"], role="assistant")
    assert stored.content == text
    assert stored.citations and stored.citations[0]["filename"] == "biology.txt"
    assert (await Chat.objects.aget(pk=response["X-Chat-Id"])).surface == "learnyourown"


async def test_temperature_and_token_limit_reach_the_model(user, upstream, settings):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", "fake-echo"
    response = await chat(body_for(user, text="hello", temperature=0.7, max_tokens=33))
    assert (await read_stream(response)).decode() == "Echo: hello"
    sent = upstream.requests[-1].body
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 33


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"temperature": 99}, "temperature"),
        ({"temperature": -1}, "temperature"),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"text": ""}, "text"),
        ({"text": "x" * 20_000}, "text"),
        ({"n": 50}, "n"),
    ],
)
async def test_out_of_range_values_are_refused_before_any_model_call(user, upstream, settings, fields, named):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", "fake-echo"
    response = await chat(body_for(user, **{"text": "hello", **fields}))
    assert_error(response, 400, named)
    assert upstream.requests == []
    assert await Chat.objects.acount() == 0


async def test_identity_comes_from_the_token_not_the_user_field(user, other_user):
    response = await chat(body_for(user, text="hello", user=other_user.email))
    assert_error(response, 403, "user")
    assert await Chat.objects.acount() == 0


async def test_missing_or_bad_tokens_are_401(user):
    assert_error(await chat({"user": user.email, "text": "hello"}), 401)
    assert_error(await chat({"user": user.email, "token": "garbage", "text": "hello"}), 401)
    refresh = str(await sync_to_async(RefreshToken.for_user)(user))
    assert_error(await chat({"user": user.email, "token": refresh, "text": "hello"}), 401)


async def test_header_token_works_too_and_a_chat_can_be_continued(user, upstream, settings):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", "fake-echo"
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}
    first = await chat({"text": "first"}, headers)
    await read_stream(first)
    second = await chat({"text": "second", "chat_id": first["X-Chat-Id"]}, headers)
    await read_stream(second)
    assert second["X-Chat-Id"] == first["X-Chat-Id"]
    sent = [m["content"] for m in upstream.requests[-1].body["messages"][1:]]
    assert sent == ["first", "Echo: first", "second"]
