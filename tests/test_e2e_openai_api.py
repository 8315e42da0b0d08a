"""The OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`) driven by the official openai SDK
(sync and async, streaming and not) against a real server with the fake upstream: the SDK's own
types parse every response and its usual exceptions come out of every error."""

import asyncio

import httpx
import openai
import pytest

from tests.live_server import LiveServer, new_user_auth, upstream_env

pytestmark = pytest.mark.e2e


QUOTA = 12


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("openai"),
        upstream_env(
            fake_openai_server,
            QUOTA_DAILY_FREE=str(QUOTA),
            EMBEDDINGS_PROVIDER="custom",
            EMBEDDINGS_MODEL="fake-embeddings",
        ),
    ).start()
    yield live
    live.stop()


def bot_with(http: httpx.Client, headers: dict[str, str], name: str, model_id: str, prompt: str = "") -> str:
    config = {"provider": "custom", "model_id": model_id, "task_type": "general"}
    body = {"name": name, "system_prompt": prompt, "initial_configs": [config]}
    response = http.post("/bots/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def account(server):
    """A user with two bots (echo, and one whose upstream drops mid-answer) and a personal API key."""
    with httpx.Client(base_url=server.url, timeout=15) as http:
        headers = new_user_auth(http)
        bots = [
            bot_with(http, headers, "Echo", "fake-echo", prompt="You echo."),
            bot_with(http, headers, "Dropper", "fake-drop-3"),
        ]
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


def test_a_completion_is_a_chat_completion_with_usage_and_the_clients_history(server, account, fake_openai_server):
    key, bots, _headers = account
    fake_openai_server.reset()
    completion = client(server, key).chat.completions.create(
        model=f"bot-{bots[0]}",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
        temperature=0.2,
        max_tokens=50,
        stop=["END"],
        user="end-user-1",
    )
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    # `model` names the model that answered, as OpenAI names the snapshot behind an alias.
    assert completion.model == "fake-echo" and completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Echo: second question"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    sent = fake_openai_server.requests[-1].body
    assert [m["role"] for m in sent["messages"]] == ["system", "system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"].startswith("You echo.")  # the bot's prompt comes first
    assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0.2, 50, ["END"])


def test_a_stream_is_chat_completion_chunks_ending_with_usage(server, account):
    key, bots, _headers = account
    stream = client(server, key).chat.completions.create(
        model=f"bot-{bots[0]}",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(isinstance(chunk, openai.types.chat.ChatCompletionChunk) for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Echo: one two three four"
    finishing = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert [chunk.choices[0].finish_reason for chunk in finishing] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_a_stream_relays_the_text_as_the_model_writes_it(server, account):
    # Tokens written 40 ms apart arrive as separate chunks; tokens closer than RUN_COALESCE_MS (15 ms),
    # like fake-echo's, are coalesced into fewer chunks (docs/runs.md).
    key, _bots, headers = account
    with httpx.Client(base_url=server.url, timeout=15) as http:
        slow = bot_with(http, headers, "Slow", "fake-tokens-5-40")
    stream = client(server, key).chat.completions.create(
        model=f"bot-{slow}", messages=[{"role": "user", "content": "count"}], stream=True
    )
    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    assert pieces == ["t0 ", "t1 ", "t2 ", "t3 ", "t4 "]


def test_the_async_sdk_streams_and_completes_too(server, account):
    key, bots, _headers = account

    async def both() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0) as sdk:
            whole = await sdk.chat.completions.create(
                model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "async whole"}]
            )
            stream = await sdk.chat.completions.create(
                model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "async stream"}], stream=True
            )
            parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
            return whole.choices[0].message.content, "".join(parts)

    assert asyncio.run(both()) == ("Echo: async whole", "Echo: async stream")


def test_completion_errors_are_the_sdks_own_exceptions(server, account):
    key, bots, _headers = account
    sdk = client(server, key)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.chat.completions.create(model=f"bot-{bots[0]}", messages=[{"role": "assistant", "content": "hi"}])
    assert "last message" in bad.value.message
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "hi"}], n=2)
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model=f"bot-{bots[0]}", messages=[])
    with pytest.raises(openai.AuthenticationError):
        client(server, "byt_nope").chat.completions.create(
            model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "hi"}]
        )
    # The upstream drops after three chunks: the stream ends with an error the SDK raises.
    stream = sdk.chat.completions.create(
        model=f"bot-{bots[1]}", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _chunk in stream:
            pass


def test_past_the_quota_the_sdk_raises_rate_limit_error(server):
    with httpx.Client(base_url=server.url, timeout=15) as http:
        headers = new_user_auth(http)
        bot = bot_with(http, headers, "Echo", "fake-echo")
        key = http.post("/api-keys", json={"name": "quota"}, headers=headers).json()["key"]
    sdk = client(server, key)
    for index in range(QUOTA):
        sdk.chat.completions.create(model=f"bot-{bot}", messages=[{"role": "user", "content": f"q{index}"}])
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model=f"bot-{bot}", messages=[{"role": "user", "content": "one more"}])
    assert refused.value.code == "quota_exceeded" and int(refused.value.response.headers["Retry-After"]) > 0
    with httpx.Client(base_url=server.url, timeout=15) as http:
        assert http.post("/usage", json={}, headers=headers).json() == {"usage": QUOTA}
        # Each call is a record of its own, not one of the user's conversations.
        assert http.get("/conversations", headers=headers).json() == []


def test_embeddings_come_back_as_the_sdks_vectors_in_either_encoding(server, account):
    key, _bots, _headers = account
    sdk = client(server, key)
    decoded = sdk.embeddings.create(model="fake-embeddings", input=["kitten", "cat", "dog"])  # base64 by default
    plain = sdk.embeddings.create(model="fake-embeddings", input="kitten", encoding_format="float")
    assert isinstance(decoded, openai.types.CreateEmbeddingResponse) and decoded.usage.total_tokens > 0
    kitten, cat, dog = (item.embedding for item in decoded.data)
    assert len(kitten) == 64 and kitten == cat != dog  # the fake maps kitten and cat to one dimension
    assert plain.data[0].embedding == kitten
    with pytest.raises(openai.NotFoundError):
        sdk.embeddings.create(model="text-embedding-3-large", input="x")
    with pytest.raises(openai.BadRequestError):
        sdk.embeddings.create(model="fake-embeddings", input=[])


def test_a_nul_character_is_a_bad_request_naming_the_field(server, account):
    key, bots, _headers = account
    sdk = client(server, key)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "a\x00b"}])
    assert refused.value.param == "messages[0].content" and "Null characters" in refused.value.message
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(
            model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "hi"}], stop=["END", "\x00"], stream=True
        )
    assert refused.value.param == "stop[1]" and refused.value.code == "invalid_value"
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(
            model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "hi"}], user="visitor\x00"
        )
    assert refused.value.param == "user"
    # The server still answers the same client afterwards.
    answer = sdk.chat.completions.create(model=f"bot-{bots[0]}", messages=[{"role": "user", "content": "still here"}])
    assert answer.choices[0].message.content == "Echo: still here"


def test_a_lone_surrogate_is_a_bad_request_naming_the_field(server, account):
    # The SDK cannot encode one, so the JSON escape goes as other clients send it.
    key, bots, _headers = account
    raw = '{"model": "bot-%s", "messages": [{"role": "user", "content": [{"type": "text", "text": "a\\ud800"}]}]}'
    with httpx.Client(base_url=server.url, timeout=15) as http:
        response = http.post(
            "/v1/chat/completions",
            content=(raw % bots[0]).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "messages[0].content[0].text: Surrogate characters are not allowed: U+D800.",
        "type": "invalid_request_error",
        "param": "messages[0].content[0].text",
        "code": "invalid_value",
    }


def test_a_bad_token_is_an_authentication_error_with_a_plain_message(server):
    with pytest.raises(openai.AuthenticationError) as refused:
        client(server, "not-a-token").models.list()
    assert refused.value.body["message"] == "Given token not valid for any token type"


def test_a_failing_model_hands_the_answer_to_the_next_config_and_model_names_it(server, fake_openai_server):
    with httpx.Client(base_url=server.url, timeout=15) as http:
        headers = new_user_auth(http)
        complex_config = {"provider": "custom", "model_id": "fake-status-503", "task_type": "complex"}
        general_config = {"provider": "custom", "model_id": "fake-echo", "task_type": "general"}
        body = {"name": "Failover", "initial_configs": [complex_config, general_config]}
        bot = http.post("/bots/", json=body, headers=headers).json()["id"]
        key = http.post("/api-keys", json={"name": "failover"}, headers=headers).json()["key"]
    sdk = client(server, key)
    question = [{"role": "user", "content": "Explain why the sea is salty"}]  # routed to `complex`
    fake_openai_server.reset()
    whole = sdk.chat.completions.create(model=f"bot-{bot}", messages=question)
    assert whole.model == "fake-echo" and whole.choices[0].message.content == "Echo: Explain why the sea is salty"
    chunks = list(sdk.chat.completions.create(model=f"bot-{bot}", messages=question, stream=True))
    assert {chunk.model for chunk in chunks} == {"fake-echo"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert [r.body["model"] for r in fake_openai_server.requests] == ["fake-status-503", "fake-echo"] * 2
    with httpx.Client(base_url=server.url, timeout=15) as http:
        assert http.post("/usage", json={}, headers=headers).json() == {"usage": 2}  # one unit an answer
