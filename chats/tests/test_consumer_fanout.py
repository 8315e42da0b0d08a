"""Answers fanned out to a session's other sockets: numbered frames read from the run's log, coalesced chunks.

The channel layer carries one notice per answer (`session.run`, no tokens); every socket then reads
the run's events itself, so frames cannot be lost in the layer (docs/reliability.md E9).
"""

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from bots.models import Bot, ModelConfig
from chats.models import Chat, Message, MessageStatus, Run, RunStatus, Surface
from tests.helpers import runs_ended, ws_answer, ws_session, ws_session_path, ws_text, ws_text_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _thread_connections_closed():
    yield
    await runs_ended()
    await database_sync_to_async(lambda: None)()  # so PostgreSQL's test database can be dropped


def session_with(user, model_id: str) -> Chat:
    bot = Bot.objects.create(owner=user, name=model_id)
    ModelConfig.objects.create(bot=bot, provider="custom", model_id=model_id, task_type="general")
    return Chat.objects.create(owner=user, bot=bot, surface=Surface.SESSIONS)


async def paths(chat: Chat, user, count: int) -> list[str]:
    return [await sync_to_async(ws_session_path)(chat, user) for _ in range(count)]


async def test_chunks_are_coalesced_per_interval_and_flushed_before_done(user, upstream, settings):
    # Chunks are coalesced by the run (RUN_COALESCE_MS), not per socket: the first goes at once, the
    # rest wait for the interval or the end, and every socket gets the same frames.
    settings.RUN_COALESCE_MS = 3_600_000
    chat = await sync_to_async(session_with)(user, "fake-tokens-5-10")
    speaker_path, watcher_path = await paths(chat, user, 2)
    async with ws_session(speaker_path) as speaker, ws_session(watcher_path) as watcher:
        await speaker.send_json_to({"type": "message", "content": "go"})
        spoken = await ws_answer(speaker)
        watched = await ws_answer(watcher)
    assert [(frame["type"], frame["content"], frame["seq"]) for frame in spoken] == [
        ("chunk", "t0 ", 1),
        ("chunk", "t1 t2 t3 t4 ", 2),
        ("done", "t0 t1 t2 t3 t4 ", 3),
    ]
    assert watched == spoken


async def test_a_watcher_gets_every_frame_even_where_the_layer_would_drop_them(user, upstream, settings):
    # channels-redis drops messages past its capacity; frames no longer travel the layer, only the notice.
    layer = {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 2}}
    settings.CHANNEL_LAYERS = {"default": layer}
    settings.RUN_COALESCE_MS = 0  # a frame per token
    chat = await sync_to_async(session_with)(user, "fake-tokens-60-0")
    speaker_path, watcher_path = await paths(chat, user, 2)
    async with ws_session(speaker_path) as speaker, ws_session(watcher_path) as watcher:
        await speaker.send_json_to({"type": "message", "content": "go"})
        spoken = await ws_answer(speaker)
        watched = await ws_answer(watcher)
    expected = " ".join(f"t{i}" for i in range(60)) + " "
    assert len(spoken) > 10 and [frame["seq"] for frame in spoken] == list(range(1, len(spoken) + 1))
    assert watched == spoken
    assert ws_text(watched[:-1]) == watched[-1]["content"] == expected


async def test_watchers_follow_the_answer_to_its_end_when_the_asking_socket_goes_away(user, upstream):
    # A socket that goes away no longer cancels the answer: the watchers read on to `done` and it is stored complete.
    chat = await sync_to_async(session_with)(user, "fake-tokens-40-20")
    speaker_path, watcher_path = await paths(chat, user, 2)
    async with ws_session(watcher_path) as watcher:
        async with ws_session(speaker_path) as speaker:
            await speaker.send_json_to({"type": "message", "content": "go"})
            await ws_text_until(speaker, lambda text: text.startswith("t0 t1 t2 "))
        frames = await ws_answer(watcher)
    done = frames[-1]
    assert done["type"] == "done" and done["finish_reason"] == "stop"
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    assert ws_text(frames[:-1]) == done["content"] == " ".join(f"t{i}" for i in range(40)) + " "
    answer = await Message.objects.aget(chat=chat, role="assistant")
    assert answer.status == MessageStatus.COMPLETE
    assert answer.content == done["content"]
    assert (await Run.objects.aget(chat=chat)).status == RunStatus.COMPLETE
    assert upstream.completed == 1 and upstream.disconnects == 0
