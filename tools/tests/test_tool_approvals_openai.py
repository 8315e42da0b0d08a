"""Approvals on `/v1/chat/completions`: a tool call the client answers, streamed or not
(docs/tools.md; docs/reliability.md N4)."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from bots.models import Bot, ModelConfig
from tests.helpers import read_stream
from tools.models import Tool, ToolCall
from tools.tests.test_tool_calls import bearer

pytestmark = pytest.mark.django_db(transaction=True)


def tooled_model(user) -> str:
    bot = Bot.objects.create(owner=user, name="tools")
    ModelConfig.objects.create(bot=bot, provider="custom", model_id="fake-tools", task_type="general")
    Tool.objects.create(bot=bot, name="knowledge_search", policy="ask")
    return f"bot-{bot.pk}"


QUESTION = 'call knowledge_search {"query": "kittens"}'


async def post(user, body: dict):
    return await AsyncClient().post("/v1/chat/completions", body, "application/json", headers=bearer(user))


def sse_chunks(raw: bytes) -> list[dict]:
    lines = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


async def test_an_approval_is_a_tool_call_the_client_answers(user, other_user, upstream):
    model = await sync_to_async(tooled_model)(user)
    messages = [{"role": "user", "content": QUESTION}]
    first = await post(user, {"model": model, "messages": messages})
    assert first.status_code == 200, first.content
    choice = first.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "knowledge_search", "arguments": '{"query": "kittens"}'}
    assert choice["message"]["content"] == "Checking. "
    answer = {"role": "tool", "tool_call_id": call["id"], "content": "approve"}
    follow = [*messages, choice["message"], answer]
    # Another user cannot answer it; a decision that is not one is named.
    assert (await post(other_user, {"model": model, "messages": follow})).status_code == 404
    bad = await post(user, {"model": model, "messages": [*follow[:-1], {**answer, "content": "perhaps"}]})
    assert bad.status_code == 400 and "decision" in bad.json()["error"]["message"]
    second = await post(user, {"model": model, "messages": follow})
    assert second.status_code == 200, second.content
    body = second.json()["choices"][0]
    assert body["finish_reason"] == "stop" and body["message"]["content"].startswith("Tool said:")
    assert (await ToolCall.objects.aget()).status == "done"


async def test_a_streamed_approval_ends_the_stream_with_its_tool_call_and_the_answer_goes_on(user, upstream):
    model = await sync_to_async(tooled_model)(user)
    messages = [{"role": "user", "content": QUESTION}]
    first = await post(user, {"model": model, "messages": messages, "stream": True})
    chunks = sse_chunks(await read_stream(first))
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    (call,) = chunks[-2]["choices"][0]["delta"]["tool_calls"]
    decision = json.dumps({"decision": "approve", "arguments": {"query": "puppies"}})
    answer = {"role": "tool", "tool_call_id": call["id"], "content": decision}
    second = await post(user, {"model": model, "messages": [*messages, answer], "stream": True})
    rest = sse_chunks(await read_stream(second))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in rest if c["choices"])
    assert text.startswith("Tool said:") and rest[-1]["choices"][0]["finish_reason"] == "stop"
    stored = await ToolCall.objects.aget()
    assert (stored.arguments, stored.arguments_edited) == ({"query": "puppies"}, True)
    # The same answer sent again (a retry after a lost response) reads the same rest of the answer;
    # another decision is refused.
    again = await post(user, {"model": model, "messages": [*messages, answer]})
    assert again.status_code == 200 and again.json()["choices"][0]["message"]["content"] == text
    other = {**answer, "content": "reject"}
    assert (await post(user, {"model": model, "messages": [*messages, other]})).status_code == 409
