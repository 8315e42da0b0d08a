"""Approvals on the chat-session socket (003): shown on every socket of the session, decided from a second
socket or after a reconnect (docs/tools.md; docs/reliability.md N3)."""

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from bots.models import Bot, ModelConfig
from chats.models import Chat, Surface
from tests.helpers import runs_ended, ws_answer, ws_session, ws_session_path
from tools.models import Tool, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _thread_connections_closed():
    yield
    await runs_ended()
    await database_sync_to_async(lambda: None)()


def tooled_session(user) -> Chat:
    bot = Bot.objects.create(owner=user, name="tools")
    ModelConfig.objects.create(bot=bot, provider="custom", model_id="fake-tools", task_type="general")
    Tool.objects.create(bot=bot, name="knowledge_search", policy="ask")
    return Chat.objects.create(owner=user, bot=bot, surface=Surface.SESSIONS)


async def frames_until(socket, kind: str) -> list[dict]:
    frames = []
    while not frames or frames[-1]["type"] != kind:
        frames.append(await socket.receive_json_from(timeout=10))
        assert frames[-1]["type"] not in ("done", "error") or kind in ("done", "error"), frames
    return frames


async def test_an_approval_request_is_decided_from_a_second_socket(user, upstream):
    chat = await sync_to_async(tooled_session)(user)
    async with ws_session(await sync_to_async(ws_session_path)(chat)) as first:
        await first.send_json_to({"type": "message", "content": 'call knowledge_search {"query": "x"}'})
        request = (await frames_until(first, "approval_request"))[-1]
        assert request["tool"] == "knowledge_search" and request["arguments"] == {"query": "x"}
        opened = ws_session(await sync_to_async(ws_session_path)(chat))
        async with opened as second:
            # The second socket's greeting names the run and the approval it waits on.
            assert [a["approval_id"] for a in opened.greeting["approvals"]] == [request["approval_id"]]
            await second.send_json_to({"type": "approval", "approval_id": "nope", "decision": "approve"})
            bad = await second.receive_json_from(timeout=10)
            assert bad["type"] == "error" and bad["code"] == "invalid_approval_id"
            await second.send_json_to(
                {"type": "approval", "approval_id": request["approval_id"], "decision": "approve", "extra": 1}
            )
            assert (await second.receive_json_from(timeout=10))["code"] == "unknown_field"
            await second.send_json_to(
                {"type": "approval", "approval_id": request["approval_id"], "decision": "approve"}
            )
        frames = await ws_answer(first)
        kinds = [f["type"] for f in frames]
        assert kinds.index("approval_decided") < kinds.index("tool_result") < kinds.index("done")
        assert frames[-1]["content"].startswith("Checking. Tool said:")
    call = await ToolCall.objects.aget()
    assert (call.status, call.decided_by, call.decided_by_user_id) == ("done", "user", user.pk)


async def test_a_reconnecting_socket_is_told_of_the_pending_approval_and_decides_it(user, upstream):
    chat = await sync_to_async(tooled_session)(user)
    session = ws_session(await sync_to_async(ws_session_path)(chat))
    async with session as first:
        await first.send_json_to({"type": "message", "content": 'call knowledge_search {"query": "x"}'})
        request = (await frames_until(first, "approval_request"))[-1]
    # The tab reloads: the new socket's greeting names the run and its pending approval.
    again = ws_session(await sync_to_async(ws_session_path)(chat))
    async with again as socket:
        assert again.greeting["run_id"] == request["run_id"]
        assert [a["approval_id"] for a in again.greeting["approvals"]] == [request["approval_id"]]
        await socket.send_json_to({"type": "resume", "run_id": request["run_id"], "after": request["seq"]})
        await socket.send_json_to({"type": "approval", "approval_id": request["approval_id"], "decision": "reject"})
        frames = await ws_answer(socket)
        assert frames[0]["type"] == "approval_decided" and frames[0]["decision"] == "reject"
        assert "rejected this call" in frames[-1]["content"]
    assert (await ToolCall.objects.aget()).status == "rejected"
