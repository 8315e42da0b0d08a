"""Answers fanned out to a session's other sockets: numbered frames, coalesced chunks, visible gaps."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer

from bots.models import Bot, ModelConfig
from chats.models import Chat, Message, MessageStatus, Surface
from chats.ws.groups import GroupRelay
from tests.helpers import ws_answer, ws_session, ws_session_path


async def until(predicate, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        await asyncio.sleep(0.005)
    return predicate()


async def watcher_on(layer, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def received(layer, channel: str, count: int) -> list[dict]:
    return [(await asyncio.wait_for(layer.receive(channel), 5))["frame"] for _ in range(count)]


async def test_frames_lost_past_the_layers_capacity_show_as_a_gap_and_done_has_the_full_text():
    layer = InMemoryChannelLayer(capacity=2)  # channels-redis drops past capacity the same way
    channel = await watcher_on(layer, "chat.gap")
    relay = GroupRelay(layer, "chat.gap", "speaker", interval=0)
    runner = relay.start()
    for seq, word in enumerate(["uno ", "dos ", "tres "], start=1):
        relay.chunk(word)
        assert await until(lambda seq=seq: relay.seq == seq)
    first = await received(layer, channel, 2)
    relay.finish({"type": "done", "content": "uno dos tres "})
    await asyncio.wait_for(runner, 5)
    [done] = await received(layer, channel, 1)
    assert [frame["seq"] for frame in first] == [1, 2]
    assert done["seq"] == 4, "the third frame was dropped: the watcher sees 2 then 4"
    assert done["content"] == "uno dos tres "


async def test_chunks_are_coalesced_per_interval_and_flushed_before_done():
    layer = InMemoryChannelLayer()
    channel = await watcher_on(layer, "chat.coalesce")
    relay = GroupRelay(layer, "chat.coalesce", "speaker", interval=3600)
    runner = relay.start()
    relay.chunk("a ")  # the first goes at once
    assert await until(lambda: relay.seq == 1)
    relay.chunk("b ")  # these wait for the interval, or the end
    relay.chunk("c ")
    relay.finish({"type": "done", "content": "a b c "})
    await asyncio.wait_for(runner, 5)
    frames = await received(layer, channel, 3)
    assert [(frame["type"], frame["content"], frame["seq"]) for frame in frames] == [
        ("chunk", "a ", 1),
        ("chunk", "b c ", 2),
        ("done", "a b c ", 3),
    ]


async def test_chunks_waiting_on_a_slow_layer_go_out_as_one_message():
    layer = InMemoryChannelLayer()
    channel = await watcher_on(layer, "chat.slow")
    relay = GroupRelay(layer, "chat.slow", "speaker", interval=0)
    runner = relay.start()
    for word in ["a ", "b ", "c "]:
        relay.chunk(word)  # queued before the sending task runs once
    relay.finish({"type": "done", "content": "a b c "})
    await asyncio.wait_for(runner, 5)
    frames = await received(layer, channel, 2)
    assert [(frame["content"], frame["seq"]) for frame in frames] == [("a b c ", 1), ("a b c ", 2)]


@pytest.fixture
async def _thread_connections_closed():
    yield
    await database_sync_to_async(lambda: None)()  # so PostgreSQL's test database can be dropped


def slow_session(user) -> Chat:
    bot = Bot.objects.create(owner=user, name="slow")
    ModelConfig.objects.create(bot=bot, provider="custom", model_id="fake-tokens-200-20", task_type="general")
    return Chat.objects.create(owner=user, bot=bot, surface=Surface.SESSIONS)


@pytest.mark.django_db(transaction=True)
async def test_watchers_learn_the_answer_ended_when_the_asking_socket_goes_away(
    user, upstream, _thread_connections_closed
):
    chat = await sync_to_async(slow_session)(user)
    speaker_path = await sync_to_async(ws_session_path)(chat, user)
    watcher_path = await sync_to_async(ws_session_path)(chat, user)
    async with ws_session(watcher_path) as watcher:
        async with ws_session(speaker_path) as speaker:
            await speaker.send_json_to({"type": "message", "content": "go"})
            for _ in range(3):
                assert (await speaker.receive_json_from(timeout=10))["type"] == "chunk"
        frames = await ws_answer(watcher)
    done = frames[-1]
    assert done["type"] == "done" and done["finish_reason"] == "cancelled"
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    answer = await Message.objects.aget(chat=chat, role="assistant")
    assert answer.status == MessageStatus.CANCELLED
    assert answer.content == done["content"]
