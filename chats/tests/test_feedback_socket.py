"""Feedback on the 003 socket (docs/api-003-sessions.md): a `feedback` frame rates an answer of the session."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from chats.feedback.input import MAX_COMMENT_CHARS
from chats.models import Chat, Feedback, Message, Role, Surface
from chats.visitors import visitor_new
from chats.ws.tickets import ticket_issue
from tests.helpers import runs_ended, ws_answer, ws_session, ws_session_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_thread_connections_closed")]

PAGE = "https://shop.example"


@pytest.fixture
async def _thread_connections_closed():
    """The sync thread's database connection is closed after each test, so PostgreSQL's test
    database can be dropped at the end of the run."""
    yield
    await database_sync_to_async(lambda: None)()


@sync_to_async
def answered(chat: Chat) -> Message:
    asked = Message.objects.create(chat=chat, role=Role.USER, content="Where is the pier?")
    return Message.objects.create(
        chat=chat, parent=asked, role=Role.ASSISTANT, content="North.", model="gpt-test", task_type="general"
    )


def rate(message_id, rating, **fields) -> dict:
    return {"type": "feedback", "message_id": str(message_id), "rating": rating, **fields}


async def stored(message: Message) -> Feedback | None:
    return await Feedback.objects.filter(message=message).afirst()


async def test_a_feedback_frame_rates_an_answer_replaces_the_rating_and_null_clears_it(user):
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    message = await answered(chat)
    async with ws_session(await sync_to_async(ws_session_path)(chat, user)) as socket:
        await socket.send_json_to(rate(message.pk, "down", tags=["inaccurate"], comment="It is south."))
        assert await socket.receive_json_from(timeout=10) == {
            "type": "feedback",
            "message_id": str(message.pk),
            "rating": "down",
            "tags": ["inaccurate"],
            "comment": "It is south.",
        }
        feedback = await stored(message)
        assert (feedback.rating, feedback.owner_id, feedback.model, feedback.task_type) == (
            "down",
            user.pk,
            "gpt-test",
            "general",
        )

        await socket.send_json_to(rate(message.pk, "up"))
        answer = await socket.receive_json_from(timeout=10)
        assert (answer["rating"], answer["tags"], answer["comment"]) == ("up", [], "")
        assert (await stored(message)).rating == "up"
        assert await Feedback.objects.acount() == 1

        await socket.send_json_to(rate(message.pk, None))
        assert await socket.receive_json_from(timeout=10) == {
            "type": "feedback",
            "message_id": str(message.pk),
            "rating": None,
            "tags": [],
            "comment": "",
        }
    assert await stored(message) is None


async def test_a_live_answer_is_rated_by_the_message_id_its_done_frame_gives(user, upstream):
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    async with ws_session(await sync_to_async(ws_session_path)(chat, user)) as socket:
        await socket.send_json_to({"type": "message", "content": "hola"})
        done = (await ws_answer(socket))[-1]
        assert done["type"] == "done"
        await socket.send_json_to(rate(done["message_id"], "up", tags=["helpful"]))
        assert (await socket.receive_json_from(timeout=10))["rating"] == "up"
    await runs_ended()
    feedback = await Feedback.objects.select_related("message").aget()
    assert str(feedback.message_id) == done["message_id"] and feedback.message.role == Role.ASSISTANT
    assert feedback.model == feedback.message.model and feedback.model


DROP = object()  # a field left out of the frame
BAD_FRAMES = [
    pytest.param({"message_id": DROP, "rating": "up"}, "invalid_message_id", id="no-message-id"),
    pytest.param({"message_id": "nope", "rating": "up"}, "invalid_message_id", id="bad-message-id"),
    pytest.param({"rating": "meh"}, "invalid_rating", id="unknown-rating"),
    pytest.param({"rating": "up", "extra": 1}, "unknown_field", id="unknown-field"),
    pytest.param({}, "invalid_rating", id="no-rating"),
    pytest.param({"rating": "up", "tags": ["brilliant"]}, "unknown_tag", id="unknown-tag"),
    pytest.param({"rating": "up", "tags": ["helpful", "helpful"]}, "duplicate_tags", id="duplicate-tags"),
    pytest.param({"rating": "up", "tags": {"helpful": 1}}, "invalid_tags", id="tags-not-a-list"),
    pytest.param({"rating": "up", "comment": "x" * (MAX_COMMENT_CHARS + 1)}, "comment_too_long", id="long-comment"),
    pytest.param({"rating": "up", "comment": ["x"]}, "invalid_comment", id="comment-not-text"),
    pytest.param({"rating": None, "tags": ["helpful"]}, "invalid_feedback", id="clear-with-tags"),
]


@pytest.mark.parametrize(("fields", "code"), BAD_FRAMES)
async def test_a_bad_feedback_frame_gets_an_error_frame_and_stores_nothing(user, fields, code):
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    message = await answered(chat)
    frame = {"type": "feedback", "message_id": str(message.pk), **fields}
    frame = {key: value for key, value in frame.items() if value is not DROP}
    async with ws_session(await sync_to_async(ws_session_path)(chat, user)) as socket:
        await socket.send_to(text_data=json.dumps(frame))
        error = await socket.receive_json_from(timeout=10)
        assert error["type"] == "error" and error["code"] == code and error["content"], error
        assert await Feedback.objects.acount() == 0
        # The socket goes on.
        await socket.send_json_to(rate(message.pk, "up"))
        assert (await socket.receive_json_from(timeout=10))["type"] == "feedback"


async def test_only_answers_of_this_session_can_be_rated_on_its_socket(user, other_user):
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    other_chat_of_mine = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    theirs = await Chat.objects.acreate(owner=other_user, surface=Surface.SESSIONS)
    here = await answered(chat)
    elsewhere = await answered(other_chat_of_mine)
    foreign = await answered(theirs)
    async with ws_session(await sync_to_async(ws_session_path)(chat, user)) as socket:
        for message_id in (elsewhere.pk, foreign.pk, "00000000-0000-4000-8000-000000000000"):
            await socket.send_json_to(rate(message_id, "down"))
            error = await socket.receive_json_from(timeout=10)
            assert (error["type"], error["code"]) == ("error", "message_not_found"), error
        await socket.send_json_to(rate(here.parent_id, "up"))
        error = await socket.receive_json_from(timeout=10)
        assert (error["type"], error["code"]) == ("error", "not_an_answer")
        assert "user" in error["content"]
        assert await Feedback.objects.acount() == 0
        await socket.send_json_to(rate(here.pk, "up"))
        assert (await socket.receive_json_from(timeout=10))["rating"] == "up"
    assert await Feedback.objects.acount() == 1


async def test_a_visitor_rates_the_answers_of_their_session_on_its_socket(user, make_bot):
    bot = await sync_to_async(make_bot)(owner=user, public=True, allowed_origins=[PAGE])
    visitor = visitor_new(bot)
    chat = await Chat.objects.acreate(owner=user, bot=bot, visitor_id=visitor.id, surface=Surface.WIDGET)
    owners = await Chat.objects.acreate(owner=user, bot=bot, surface=Surface.SESSIONS)
    mine = await answered(chat)
    not_mine = await answered(owners)
    ticket = ticket_issue(user_id=user.pk, session_id=chat.pk, visitor_id=visitor.id, origin=PAGE)
    async with ws_session(f"/chat/ws/{chat.pk}?ticket={ticket}", [(b"origin", PAGE.encode())]) as socket:
        await socket.send_json_to(rate(not_mine.pk, "down"))
        assert (await socket.receive_json_from(timeout=10))["code"] == "message_not_found"
        await socket.send_json_to(rate(mine.pk, "down", tags=["off_topic"]))
        assert (await socket.receive_json_from(timeout=10))["tags"] == ["off_topic"]
    feedback = await Feedback.objects.aget()
    assert (feedback.message_id, feedback.visitor_id, feedback.owner_id, feedback.bot_id) == (
        mine.pk,
        visitor.id,
        user.pk,
        bot.pk,
    )


async def test_a_rating_on_one_socket_reaches_the_sessions_other_sockets(user):
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    message = await answered(chat)
    path = await sync_to_async(ws_session_path)(chat, user)
    async with ws_session(path) as first, ws_session(await sync_to_async(ws_session_path)(chat, user)) as second:
        await first.send_json_to(rate(message.pk, "up", tags=["helpful"]))
        expected = {
            "type": "feedback",
            "message_id": str(message.pk),
            "rating": "up",
            "tags": ["helpful"],
            "comment": "",
        }
        assert await first.receive_json_from(timeout=10) == expected
        assert await second.receive_json_from(timeout=10) == expected
        assert await first.receive_nothing(timeout=0.3)  # the sender gets its frame once
