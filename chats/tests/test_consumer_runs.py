"""Runs on the chat-session socket (003 and widget): resuming an answer on a new socket, the run named in
the greeting, stopping from any socket of the session, and runs a socket may not read."""

import uuid
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import Client

from bots.models import Bot, ModelConfig
from chats.models import Chat, Message, MessageStatus, Run, RunStatus, Surface
from chats.notifications import session_group
from chats.runs.log import RedisLog
from core.redis_clients import redis_configured, sync_redis
from tests.helpers import metric_total, runs_ended, ws_answer, ws_session, ws_session_path, ws_text, ws_text_until

PAGE = "https://shop.example.com"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _thread_connections_closed():
    yield
    await runs_ended()
    await database_sync_to_async(lambda: None)()  # so PostgreSQL's test database can be dropped


def session_with(user, model_id: str | None = None) -> Chat:
    bot = None
    if model_id:
        bot = Bot.objects.create(owner=user, name=model_id)
        ModelConfig.objects.create(bot=bot, provider="custom", model_id=model_id, task_type="general")
    return Chat.objects.create(owner=user, bot=bot, surface=Surface.SESSIONS)


async def path_for(chat: Chat, user) -> str:
    return await sync_to_async(ws_session_path)(chat, user)


def assert_numbered(frames: list[dict]) -> None:
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    assert len({frame["run_id"] for frame in frames}) == 1


async def answered(socket, content: str = "hola") -> list[dict]:
    """Ask and read the whole answer: the socket still works."""
    await socket.send_json_to({"type": "message", "content": content})
    frames = await ws_answer(socket)
    assert frames[-1]["type"] == "done", frames
    return frames


async def finished_run(user) -> tuple[Chat, list[dict]]:
    """A session of `user` with one answer written to its end, and its frames."""
    chat = await sync_to_async(session_with)(user)
    async with ws_session(await path_for(chat, user)) as socket:
        frames = await answered(socket, "secret question")
    return chat, frames


# -- resume ----------------------------------------------------------------------------------------


async def test_a_socket_that_drops_mid_answer_resumes_it_on_a_new_socket_without_gap_or_repeat(user, upstream):
    chat = await sync_to_async(session_with)(user, "fake-tokens-100-25")
    first = ws_session(await path_for(chat, user))
    async with first as socket:
        assert "run_id" not in first.greeting  # nothing is being written yet
        await socket.send_json_to({"type": "message", "content": "go"})
        before = await ws_text_until(socket, lambda text: text.startswith("t0 t1 t2 "))
    run_id = before[0]["run_id"]
    resumes = metric_total("bytchat_run_resumes_total", transport="websocket")
    second = ws_session(await path_for(chat, user))
    async with second as socket:
        assert second.greeting["run_id"] == run_id  # the answer still being written, to resume
        # Not followed until asked: a socket opened mid-answer gets nothing unasked.
        assert await socket.receive_nothing(timeout=0.1)
        await socket.send_json_to({"type": "resume", "run_id": run_id, "after": before[-1]["seq"]})
        after = await ws_answer(socket)
        assert await socket.receive_nothing(timeout=0.2)
    frames = before + after
    assert_numbered(frames)
    done = frames[-1]
    assert done["type"] == "done" and done["finish_reason"] == "stop"
    assert {frame["type"] for frame in after[:-1]} <= {"chunk"}
    answer = await Message.objects.aget(chat=chat, role="assistant")
    assert answer.status == MessageStatus.COMPLETE
    assert ws_text(frames[:-1]) == done["content"] == answer.content == " ".join(f"t{i}" for i in range(100)) + " "
    assert upstream.completed == 1 and upstream.disconnects == 0
    assert metric_total("bytchat_run_resumes_total", transport="websocket") == resumes + 1


async def test_a_finished_run_is_replayed_from_its_log_then_from_the_stored_text_once_the_log_is_gone(user, settings):
    chat, frames = await finished_run(user)
    run_id = frames[-1]["run_id"]
    session = ws_session(await path_for(chat, user))
    async with session as socket:
        assert "run_id" not in session.greeting
        await socket.send_json_to({"type": "resume", "run_id": run_id, "after": 0})
        assert await ws_answer(socket) == frames
        # After its last frame there is nothing left to send.
        await socket.send_json_to({"type": "resume", "run_id": run_id, "after": frames[-1]["seq"]})
        assert await socket.receive_nothing(timeout=0.3)
        # The log expired: the stored text stands in for the events the client lacks, as one snapshot.
        settings.RUN_LOG_TTL_SECONDS = 0
        if redis_configured():
            await sync_to_async(sync_redis().delete)(RedisLog(run_id).key)
        await socket.send_json_to({"type": "resume", "run_id": run_id, "after": 1})
        replayed = await ws_answer(socket)
    assert [frame["type"] for frame in replayed] == ["snapshot", "done"]
    assert [frame["seq"] for frame in replayed] == [frames[-1]["seq"] - 1, frames[-1]["seq"]]
    assert ws_text([frames[0], *replayed[:-1]]) == replayed[-1]["content"] == frames[-1]["content"]
    assert replayed[-1]["message_id"] == frames[-1]["message_id"]


async def test_runs_the_socket_may_not_read_are_run_not_found_and_the_socket_stays_open(user, other_user):
    _theirs, their_frames = await finished_run(other_user)
    _other_session, my_frames = await finished_run(user)
    chat = await sync_to_async(session_with)(user)
    async with ws_session(await path_for(chat, user)) as socket:
        for run_id in (their_frames[-1]["run_id"], my_frames[-1]["run_id"], str(uuid.uuid4())):
            await socket.send_json_to({"type": "resume", "run_id": run_id, "after": 0})
            error = await socket.receive_json_from(timeout=10)
            assert error["type"] == "error" and error["code"] == "run_not_found" and error["content"]
            assert "secret" not in error["content"]
        frames = await answered(socket)
    assert "secret" not in ws_text(frames) + frames[-1]["content"]
    assert await Message.objects.filter(chat=chat).acount() == 2


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param({"type": "resume"}, "invalid_run_id", id="no-run-id"),
        pytest.param({"type": "resume", "run_id": "run-1", "after": 0}, "invalid_run_id", id="not-a-uuid"),
        pytest.param({"type": "resume", "run_id": 42, "after": 0}, "invalid_run_id", id="run-id-number"),
        pytest.param({"type": "resume", "run_id": None, "after": 0}, "invalid_run_id", id="run-id-null"),
        pytest.param({"type": "resume", "run_id": "{uuid}", "after": -1}, "invalid_after", id="negative-after"),
        pytest.param({"type": "resume", "run_id": "{uuid}", "after": True}, "invalid_after", id="bool-after"),
        pytest.param({"type": "resume", "run_id": "{uuid}", "after": "3"}, "invalid_after", id="text-after"),
        pytest.param({"type": "resume", "run_id": "{uuid}", "after": 1.5}, "invalid_after", id="fraction-after"),
        pytest.param({"type": "resume", "run_id": "{uuid}", "after": 2**31}, "invalid_after", id="huge-after"),
        pytest.param({"type": "resume", "run_id": "{uuid}", "since": 3}, "unknown_field", id="unknown-field"),
        pytest.param({"type": "resume", "run_id": "{uuid}", "content": "hi"}, "unknown_field", id="message-field"),
        pytest.param({"type": "stop", "run_id": "{uuid}"}, "unknown_field", id="stop-with-run-id"),
    ],
)
async def test_an_invalid_resume_frame_gets_an_error_frame_that_says_what_is_wrong(user, frame, code):
    chat = await sync_to_async(session_with)(user)
    frame = {key: str(uuid.uuid4()) if value == "{uuid}" else value for key, value in frame.items()}
    async with ws_session(await path_for(chat, user)) as socket:
        await socket.send_json_to(frame)
        error = await socket.receive_json_from(timeout=10)
        assert error["type"] == "error" and error["code"] == code, error
        words = {"invalid_run_id": "run_id", "invalid_after": "after", "unknown_field": "Unknown field"}
        assert words[code] in error["content"]
        await answered(socket)


async def test_a_late_notice_of_a_run_the_socket_already_read_is_not_replayed(user):
    chat, frames = await finished_run(user)
    run_id = frames[-1]["run_id"]
    async with ws_session(await path_for(chat, user)) as socket:
        await socket.send_json_to({"type": "resume", "run_id": run_id, "after": 0})
        assert await ws_answer(socket) == frames
        # The `session.run` notice a socket gets when another socket of the session starts an answer, late.
        notice = {"type": "session.run", "run_id": run_id, "sender": "another socket"}
        await get_channel_layer().group_send(session_group(chat.pk), notice)
        assert await socket.receive_nothing(timeout=0.3)
    async with ws_session(await path_for(chat, user)) as socket:
        await get_channel_layer().group_send(session_group(chat.pk), notice)
        assert await ws_answer(socket) == frames  # a socket that has not read it follows it from the start


# -- stop ------------------------------------------------------------------------------------------


async def test_stop_from_another_socket_of_the_session_stops_the_answer_for_every_socket(user, upstream):
    chat = await sync_to_async(session_with)(user, "fake-tokens-200-20")
    asker_path, other_path = await path_for(chat, user), await path_for(chat, user)
    async with ws_session(asker_path) as asker, ws_session(other_path) as other:
        await asker.send_json_to({"type": "message", "content": "go"})
        watched = await ws_text_until(other, lambda text: text.startswith("t0 t1 t2 "))
        await other.send_json_to({"type": "stop"})
        watched += await ws_answer(other)
        spoken = await ws_answer(asker)
        for frames in (spoken, watched):
            assert_numbered(frames)
            assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "cancelled"
            assert ws_text(frames[:-1]) == frames[-1]["content"]
        assert spoken == watched
        # The chat is free at once, for either socket.
        assert ws_text(await answered(other, "again")).startswith("t0 ")
    # The stop closed the upstream request (the session-wide fake server may also see other tests' strays).
    assert await sync_to_async(upstream.wait_for)(lambda: upstream.outcome_of("go") == ["disconnected"])
    assert await sync_to_async(upstream.wait_for)(lambda: upstream.outcome_of("again") == ["completed"])
    first = await Message.objects.filter(chat=chat, role="assistant").order_by("created_at").afirst()
    assert first.status == MessageStatus.CANCELLED and first.content == spoken[-1]["content"]
    run = await Run.objects.aget(pk=spoken[-1]["run_id"])
    assert run.status == RunStatus.CANCELLED


async def test_a_socket_opened_mid_answer_stops_it_without_resuming(user, upstream):
    # `stop` stops the session's running answer, whichever socket started it; the following sockets get `done`.
    chat = await sync_to_async(session_with)(user, "fake-tokens-200-20")
    async with ws_session(await path_for(chat, user)) as asker:
        await asker.send_json_to({"type": "message", "content": "go"})
        spoken = await ws_text_until(asker, lambda text: text.startswith("t0 "))
        late = ws_session(await path_for(chat, user))
        async with late as socket:
            assert late.greeting["run_id"] == spoken[0]["run_id"]
            await socket.send_json_to({"type": "stop"})
            spoken += await ws_answer(asker)
    assert spoken[-1]["type"] == "done" and spoken[-1]["finish_reason"] == "cancelled"
    assert_numbered(spoken)
    answer = await Message.objects.aget(chat=chat, role="assistant")
    assert answer.status == MessageStatus.CANCELLED and answer.content == ws_text(spoken[:-1])


# -- widget visitors -------------------------------------------------------------------------------


def widget_session(client: Client, bot: Bot, **body) -> dict:
    response = client.post(
        "/widget/sessions", {"bot_key": bot.public_key, **body}, content_type="application/json", HTTP_ORIGIN=PAGE
    )
    assert response.status_code in (200, 201), response.content
    return response.json()


def socket_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_a_visitor_resumes_only_runs_of_the_session_its_socket_is_on(user, make_bot):
    bot = await sync_to_async(make_bot)(owner=user, name="Helper", public=True, allowed_origins=[PAGE + "/"])
    _owners_chat, owner_frames = await finished_run(user)
    client = Client()
    first = await sync_to_async(widget_session)(client, bot)
    second = await sync_to_async(widget_session)(client, bot, visitor_token=first["visitor_token"])
    origin = [(b"origin", PAGE.encode())]
    async with ws_session(socket_path(first["websocket_url"]), origin) as socket:
        visitor_frames = await answered(socket)
        # The bot owner's run of another chat: as unknown to the visitor as a run that does not exist.
        await socket.send_json_to({"type": "resume", "run_id": owner_frames[-1]["run_id"], "after": 0})
        error = await socket.receive_json_from(timeout=10)
        assert error["type"] == "error" and error["code"] == "run_not_found"
        # Its own run, on the session it was written in, replays.
        await socket.send_json_to({"type": "resume", "run_id": visitor_frames[-1]["run_id"], "after": 0})
        assert await ws_answer(socket) == visitor_frames
    async with ws_session(socket_path(second["websocket_url"]), origin) as socket:
        # The same visitor's run, but of another of its sessions.
        await socket.send_json_to({"type": "resume", "run_id": visitor_frames[-1]["run_id"], "after": 0})
        error = await socket.receive_json_from(timeout=10)
        assert error["type"] == "error" and error["code"] == "run_not_found"
        await answered(socket)
