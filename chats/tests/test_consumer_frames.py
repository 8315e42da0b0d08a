"""Bad client frames on the chat-session socket (003) get an error frame; the socket stays open."""

import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from chats.models import Chat, Message, Surface
from chats.ws.frames import ClientFrame, FrameError, parse_frame
from tests.helpers import ws_answer, ws_session, ws_session_path


@pytest.fixture
async def _thread_connections_closed():
    """The sync thread's database connection is closed after each test, so PostgreSQL's test
    database can be dropped at the end of the run."""
    yield
    await database_sync_to_async(lambda: None)()


BAD_FRAMES = [
    pytest.param("not json", "invalid_json", id="invalid-json"),
    pytest.param('{"type": "message", "content": "x"', "invalid_json", id="truncated-json"),
    pytest.param('{"type": "message", "content": NaN}', "invalid_json", id="nan"),
    pytest.param("[1, 2, 3]", "invalid_frame", id="array"),
    pytest.param('"message"', "invalid_frame", id="string"),
    pytest.param('{"content": "hola"}', "unknown_type", id="missing-type"),
    pytest.param('{"type": "dance"}', "unknown_type", id="unknown-type"),
    pytest.param('{"type": ["message"]}', "unknown_type", id="type-not-a-string"),
    pytest.param('{"type": "message"}', "empty_content", id="missing-content"),
    pytest.param('{"type": "message", "content": ""}', "empty_content", id="empty-content"),
    pytest.param('{"type": "message", "content": "  \\n "}', "empty_content", id="blank-content"),
    pytest.param('{"type": "message", "content": 42}', "empty_content", id="content-not-a-string"),
    pytest.param('{"type": "message", "content": "hi", "user": 1}', "unknown_field", id="unknown-field"),
    pytest.param('{"type": "message", "content": "hi", "context": [1]}', "invalid_context", id="context-list"),
    pytest.param(
        '{"type": "message", "content": "hi", "context": {"a": {"b": 1}}}', "invalid_context", id="nested-context"
    ),
    pytest.param('{"type": "message", "content": "hi", "context": {"a": "x"}}', "invalid_context", id="text-value"),
    # Text the database cannot store: refused by the validators of every other surface (issue 12).
    pytest.param('{"type": "message", "content": "a\\u0000b"}', "invalid_characters", id="nul-content"),
    pytest.param('{"type": "message", "content": "a\\ud800b"}', "invalid_characters", id="lone-surrogate"),
    pytest.param('{"type": "message", "content": "hi", "context": {"a\\u0000": 1}}', "invalid_context", id="nul-key"),
    pytest.param(
        '{"type": "message", "content": "hi", "context": {"\\udfff": 1}}', "invalid_context", id="surrogate-key"
    ),
    pytest.param("[" * 50_000 + "]" * 50_000, "frame_too_large", id="deep-nesting-over-the-cap"),
    pytest.param("[" * 30_000 + "]" * 30_000, "invalid_json", id="deep-nesting"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_thread_connections_closed")
@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
async def test_a_bad_frame_gets_an_error_frame_and_the_socket_still_answers(user, frame, code):
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    async with ws_session(await sync_to_async(ws_session_path)(chat, user)) as socket:
        await socket.send_to(text_data=frame)
        error = await socket.receive_json_from(timeout=10)
        assert error["type"] == "error" and error["code"] == code and error["content"]
        await socket.send_json_to({"type": "message", "content": "hola"})
        assert (await ws_answer(socket))[-1]["type"] == "done"
    # The bad frame stored nothing.
    assert await Message.objects.filter(chat=chat).acount() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_thread_connections_closed")
async def test_binary_oversized_and_overlong_frames_get_error_frames(user, settings):
    settings.WS_MAX_CONTENT_CHARS = 100
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    async with ws_session(await sync_to_async(ws_session_path)(chat, user)) as socket:
        await socket.send_to(bytes_data=b'{"type": "message", "content": "hola"}')
        assert (await socket.receive_json_from(timeout=10))["code"] == "binary_frame"
        big = json.dumps({"type": "message", "content": "x" * (settings.WS_MAX_FRAME_BYTES + 1)})
        await socket.send_to(text_data=big)
        error = await socket.receive_json_from(timeout=10)
        assert error["code"] == "frame_too_large" and str(settings.WS_MAX_FRAME_BYTES) in error["content"]
        await socket.send_json_to({"type": "message", "content": "y" * 101})
        assert (await socket.receive_json_from(timeout=10))["code"] == "content_too_long"
        # A stop with nothing to stop is not an error.
        await socket.send_json_to({"type": "stop"})
        await socket.send_json_to({"type": "message", "content": "hola"})
        frames = await ws_answer(socket)
        assert frames[0]["type"] == "chunk" and frames[-1]["type"] == "done"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_thread_connections_closed")
async def test_frames_past_the_per_socket_rate_are_refused(user, settings):
    settings.WS_MESSAGES_PER_MINUTE = 3
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    async with ws_session(await sync_to_async(ws_session_path)(chat, user)) as socket:
        for _ in range(3):
            await socket.send_to(text_data="nope")
            assert (await socket.receive_json_from(timeout=10))["code"] == "invalid_json"
        await socket.send_json_to({"type": "message", "content": "hola"})
        error = await socket.receive_json_from(timeout=10)
        assert error["code"] == "rate_limited" and error["content"]
    assert await Message.objects.filter(chat=chat).acount() == 0


def parse(text: str | None, data: bytes | None = None) -> ClientFrame:
    return parse_frame(text=text, data=data, max_bytes=settings.WS_MAX_FRAME_BYTES, max_chars=100)


def test_parse_frame_reads_messages_and_stops():
    assert parse('{"type": "stop"}') == ClientFrame(type="stop")
    frame = parse('{"type": "message", "content": "  Explícame mis gastos ", "context": {"total_spent": 10000}}')
    assert frame == ClientFrame(type="message", content="Explícame mis gastos", context={"total_spent": 10000})
    assert parse('{"type": "message", "content": "hola", "context": null}').context is None


def test_parse_frame_reads_resumes_from_the_start_or_after_a_position():
    run_id = uuid.uuid4()
    assert parse(json.dumps({"type": "resume", "run_id": str(run_id), "after": 41})) == ClientFrame(
        type="resume", run_id=run_id, after=41
    )
    assert parse(json.dumps({"type": "resume", "run_id": str(run_id)})) == ClientFrame(type="resume", run_id=run_id)


# The values inside a context object are checked by the service (chats.services.context_validate).
@pytest.mark.parametrize(
    ("frame", "code"),
    [case for case in BAD_FRAMES if case.id not in {"nested-context", "text-value", "nul-key", "surrogate-key"}],
)
def test_parse_frame_refuses_bad_frames_with_a_code(frame, code):
    with pytest.raises(FrameError) as refused:
        parse(frame)
    assert refused.value.code == code


def test_parse_frame_counts_bytes_not_characters():
    # 30,000 two-byte characters are 60,000 bytes: under the cap; 40,000 are not.
    assert parse(json.dumps({"type": "message", "content": "ñ" * 30}, ensure_ascii=False)).content == "ñ" * 30
    with pytest.raises(FrameError) as refused:
        parse_frame(
            text=json.dumps({"type": "message", "content": "ñ" * 40_000}, ensure_ascii=False),
            data=None,
            max_bytes=64 * 1024,
            max_chars=100_000,
        )
    assert refused.value.code == "frame_too_large"


def test_the_unknown_type_error_names_every_frame_a_client_may_send():
    from chats.ws.frames import FIELDS

    with pytest.raises(FrameError) as caught:
        parse_frame(text='{"type": "dance"}', data=None, max_bytes=10_000, max_chars=10_000)
    assert caught.value.code == "unknown_type"
    for kind in FIELDS:
        assert f'"type": "{kind}"' in str(caught.value.message)
