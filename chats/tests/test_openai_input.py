"""`/v1` refuses text the database cannot store (NUL, lone surrogates) as OpenAI 400s naming the field,
and its authentication errors carry a plain message (issue 12)."""

import pytest
from django.test import AsyncClient

from accounts.models import ModelCall
from bots.models import Bot, ModelConfig
from chats.models import Chat
from chats.tests.test_bot_chat import bearer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model(user) -> str:
    bot = Bot.objects.create(owner=user, name="Echo")
    ModelConfig.objects.create(bot=bot, provider="custom", model_id="fake-echo", task_type="general")
    return f"bot-{bot.pk}"


def body(model: str, **changes) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hola"}], **changes}


BAD_TEXT = [("\x00", "Null characters are not allowed."), ("\ud800", "Surrogate characters are not allowed: U+D800.")]


def cases(model: str, bad: str) -> list[tuple[dict, str]]:
    return [
        (body(model, messages=[{"role": "user", "content": f"a{bad}b"}]), "messages[0].content"),
        (
            body(
                model,
                messages=[
                    {"role": "system", "content": "ok"},
                    {"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": bad}]},
                ],
            ),
            "messages[1].content[1].text",
        ),
        (body(model, stop=["END", f"x{bad}"]), "stop[1]"),
        (body(model, stop=bad), "stop"),
        (body(model, user=f"end-user{bad}"), "user"),
        (body(f"{model}{bad}"), "model"),
    ]


@pytest.mark.parametrize(("bad", "message"), BAD_TEXT, ids=["nul", "lone-surrogate"])
async def test_text_the_database_cannot_store_is_an_openai_400_naming_the_field(user, model, upstream, bad, message):
    for payload, param in cases(model, bad):
        response = await AsyncClient().post(
            "/v1/chat/completions", data=payload, content_type="application/json", headers=bearer(user)
        )
        assert response.status_code == 400, (param, response.content)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_value"
        assert error["param"] == param and error["message"] == f"{param}: {message}"
    assert upstream.requests == []
    assert await Chat.objects.acount() == 0 and await ModelCall.objects.acount() == 0


async def test_other_bad_bodies_still_name_their_field_as_param(user, model):
    response = await AsyncClient().post(
        "/v1/chat/completions", data=body(model, n=3), content_type="application/json", headers=bearer(user)
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "n"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions", "/v1/embeddings"])
@pytest.mark.parametrize("token", ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln"])
async def test_a_bad_bearer_token_is_a_401_with_a_plain_message(path, token):
    headers = {"Authorization": f"Bearer {token}"}
    if path == "/v1/models":
        response = await AsyncClient().get(path, headers=headers)
    else:
        payload = {"model": "x", "input": "a", "messages": [{"role": "user", "content": "a"}]}
        response = await AsyncClient().post(path, data=payload, content_type="application/json", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["message"] == "Given token not valid for any token type"
    assert error["type"] == "invalid_request_error"
