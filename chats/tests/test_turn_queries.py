"""The work before a model call costs the same number of queries however big the bot and chat are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bots.models import Bot, ModelConfig
from chats.exceptions import ChatNotFound
from chats.models import Chat, Message, MessageStatus, Role, RunStatus
from chats.runs.services import RunEnd, run_abandon, run_finish
from chats.selectors import branch_history
from chats.services import bot_chat_start, turn_lease_release, turn_start
from knowledge.services import knowledge_base_get_or_create

pytestmark = pytest.mark.django_db


def start_turn(user, bot, chat_id=None) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        reply, _task_type = bot_chat_start(user=user, bot_id=str(bot.pk), query="hello", chat_id=chat_id)
    # As the run does when the answer ends; these are never streamed.
    run_finish(
        run=reply.run,
        end=RunEnd(RunStatus.COMPLETE, 1, {"content": "hi", "status": "complete"}),
        calls=[],
        user_id=user.pk,
        surface="bytchat",
    )
    turn_lease_release(reply.lease)
    return len(queries), reply


def grow(bot, user, n: int) -> None:
    for index, task_type in enumerate(["complex", "code", "summarize"][:n]):
        ModelConfig.objects.create(bot=bot, task_type=task_type, provider="local", model_id=f"m{index}")
    for index in range(n):
        knowledge_base_get_or_create(owner=user, name=f"kb{index}").bots.add(bot)


def test_starting_a_turn_has_a_constant_query_count(user, settings):
    small = Bot.objects.create(owner=user, name="small")
    big = Bot.objects.create(owner=user, name="big")
    grow(big, user, 3)
    start_turn(user, small)  # the day's first call also creates the user's quota counter (2 queries, once a day)
    small_count, _ = start_turn(user, small)
    big_count, reply = start_turn(user, big)
    assert small_count == big_count
    assert len(reply.knowledge_base_ids) == 3
    # Continuing a long chat costs the same as continuing a short one.
    first_count, _ = start_turn(user, big, chat_id=str(reply.chat.pk))
    for _ in range(5):
        later_count, _ = start_turn(user, big, chat_id=str(reply.chat.pk))
    assert later_count == first_count


def test_branch_history_uses_one_query_whatever_the_chat_length(user, settings):
    bot = Bot.objects.create(owner=user, name="b")
    _count, reply = start_turn(user, bot)
    for _ in range(20):
        _count, reply = start_turn(user, bot, chat_id=str(reply.chat.pk))
    with CaptureQueriesContext(connection) as queries:
        history = branch_history(chat=reply.chat, leaf_id=reply.user_message.id, limit=50)
    assert len(queries) == 1
    assert len(history) == 41  # 21 questions and the 20 answers between them


def test_the_history_holds_the_newest_messages_of_the_branch_and_leaves_out_answers_that_failed(user):
    bot = Bot.objects.create(owner=user, name="b")
    _count, first = start_turn(user, bot)
    chat_id = str(first.chat.pk)
    _count, second = start_turn(user, bot, chat_id=chat_id)
    Message.objects.filter(pk=second.run.message_id).update(status=MessageStatus.CANCELLED, content="cut sh")
    # A sibling branch of the second question: never in the first branch's history.
    sibling = Message.objects.create(chat=first.chat, parent=first.user_message, role=Role.USER, content="other")
    _count, third = start_turn(user, bot, chat_id=chat_id)
    everything = branch_history(chat=third.chat, leaf_id=third.user_message.id, limit=50)
    assert [(m.role, m.content) for m in everything] == [
        ("user", "hello"),
        ("assistant", "hi"),
        ("user", "hello"),  # its cancelled answer is left out
        ("user", "hello"),
    ]
    assert sibling not in everything
    # The limit counts the messages kept, newest first: the cancelled answer takes no place.
    newest = branch_history(chat=third.chat, leaf_id=third.user_message.id, limit=3)
    assert [m.pk for m in newest] == [m.pk for m in everything[-3:]]
    # Another chat's message is no leaf of this one.
    _count, elsewhere = start_turn(user, bot)
    assert branch_history(chat=elsewhere.chat, leaf_id=third.user_message.id, limit=50) == []


def test_a_turn_on_a_chat_read_before_it_moved_on_goes_under_its_current_node(user):
    bot = Bot.objects.create(owner=user, name="b")
    _count, first = start_turn(user, bot)
    stale = Chat.objects.get(pk=first.chat.pk)
    # Meanwhile the chat moves on (another surface added a message under its answer).
    later = Message.objects.create(chat=stale, parent_id=stale.current_node_id, role=Role.USER, content="later")
    Chat.objects.filter(pk=stale.pk).update(current_node=later)
    reply, _task_type = turn_start(user=user, prompt="after", chat=stale)
    assert reply.user_message.parent_id == later.pk
    assert Chat.objects.get(pk=stale.pk).current_node_id == reply.run.message_id
    run_abandon(run=reply.run)
    turn_lease_release(reply.lease)


def test_a_turn_on_a_chat_deleted_after_it_was_read_is_chat_not_found(user):
    bot = Bot.objects.create(owner=user, name="b")
    _count, first = start_turn(user, bot)
    stale = Chat.objects.get(pk=first.chat.pk)
    Chat.objects.filter(pk=stale.pk).delete()
    with pytest.raises(ChatNotFound):
        turn_start(user=user, prompt="after", chat=stale)
    assert not Message.objects.filter(content="after").exists()
