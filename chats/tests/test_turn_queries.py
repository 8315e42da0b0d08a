"""The work before a model call costs the same number of queries however big the bot and chat are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bots.models import Bot, ModelConfig
from chats.models import RunStatus
from chats.runs.services import RunEnd, run_finish
from chats.selectors import branch_history
from chats.services import bot_chat_start, turn_lease_release
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


def test_branch_history_uses_two_queries_whatever_the_chat_length(user, settings):
    bot = Bot.objects.create(owner=user, name="b")
    _count, reply = start_turn(user, bot)
    for _ in range(20):
        _count, reply = start_turn(user, bot, chat_id=str(reply.chat.pk))
    with CaptureQueriesContext(connection) as queries:
        history = branch_history(chat=reply.chat, leaf_id=reply.user_message.id, limit=50)
    assert len(queries) == 2
    assert len(history) == 41  # 21 questions and the 20 answers between them
