"""`/v1/models` driven by the official openai SDK (sync and async) against a real daphne server:
the SDK's own types parse every response and its usual exceptions come out of every error."""

import asyncio

import httpx
import openai
import pytest

from tests.live_server import LiveServer, new_user_auth

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("openai"), {}).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def account(server):
    """A user with two bots and a personal API key: (api key, bot ids, JWT headers)."""
    with httpx.Client(base_url=server.url, timeout=15) as http:
        headers = new_user_auth(http)
        bots = [http.post("/bots/", json={"name": name}, headers=headers).json()["id"] for name in ("Tutor", "Pirate")]
        key = http.post("/api-keys", json={"name": "sdk"}, headers=headers).json()["key"]
    return key, bots, headers


def client(server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=10)


def test_the_sdk_lists_and_retrieves_the_callers_bots_as_models(server, account):
    key, bots, _headers = account
    models = client(server, key).models.list()
    assert sorted(model.id for model in models.data) == sorted(f"bot-{bot}" for bot in bots)
    assert all(isinstance(model, openai.types.Model) and model.owned_by == "bytchat" for model in models.data)
    one = client(server, key).models.retrieve(f"bot-{bots[0]}")
    assert one.id == f"bot-{bots[0]}" and one.created > 0


def test_a_jwt_works_as_the_api_key_too(server, account):
    _key, bots, headers = account
    jwt = headers["Authorization"].removeprefix("Bearer ")
    assert len(client(server, jwt).models.list().data) == len(bots)


def test_the_async_sdk_gets_the_same_models(server, account):
    key, bots, _headers = account

    async def listed() -> list[str]:
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0) as sdk:
            return [model.id async for model in sdk.models.list()]

    assert sorted(asyncio.run(listed())) == sorted(f"bot-{bot}" for bot in bots)


def test_errors_are_openai_error_objects_the_sdk_raises_as_its_own(server, account):
    key, bots, _headers = account
    with pytest.raises(openai.AuthenticationError) as refused:
        client(server, "byt_" + "x" * 43).models.list()
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(server, "not-a-token").models.list()
    with pytest.raises(openai.NotFoundError) as missing:
        client(server, key).models.retrieve("gpt-4o")
    assert missing.value.code == "model_not_found" and "gpt-4o" in missing.value.message
    with pytest.raises(openai.NotFoundError):
        client(server, key).models.retrieve("bot-00000000-0000-0000-0000-000000000000")
    # Another user's bot is no model of mine.
    with httpx.Client(base_url=server.url, timeout=15) as http:
        other = http.post("/api-keys", json={"name": "other"}, headers=new_user_auth(http)).json()["key"]
    with pytest.raises(openai.NotFoundError):
        client(server, other).models.retrieve(f"bot-{bots[0]}")
    assert client(server, other).models.list().data == []
