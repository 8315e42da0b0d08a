"""Reads on chats, scoped to the owner; histories follow one branch of the message tree."""

from __future__ import annotations

import uuid

from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot
from bots.selectors import bot_get
from chats.exceptions import ChatNotFound
from chats.models import Chat, Message, MessageStatus, Role
from chats.visitors import Visitor, page_check, visitor_from_token
from core.errors import DomainError, NotAuthenticated, NotFound


def chat_get(*, user: User, chat_id: uuid.UUID | str, bot: Bot | None = None) -> Chat:
    """The user's chat; with `bot`, only a chat held with that bot."""
    chats = Chat.objects.owned_by(user).filter(pk=chat_id)
    if bot is not None:
        chats = chats.filter(bot=bot)
    chat = chats.select_related("bot").first()
    if chat is None:
        raise ChatNotFound()
    return chat


# What a branch walk counts toward its limit (the SQL of a CASE over the message `m`; no user input).
_COUNTED = {
    "every": "1",
    # The model's history: failed, cancelled or unfinished answers stay in the tree but not in it.
    "history": f"CASE WHEN m.role <> '{Role.ASSISTANT}' OR m.status = '{MessageStatus.COMPLETE}' THEN 1 ELSE 0 END",
    "questions": f"CASE WHEN m.role = '{Role.USER}' THEN 1 ELSE 0 END",
}
# A bound on a walk's length, whatever it counts: a chat's tree has no cycles, but a walk must end.
_WALK_MAX_STEPS = 100_000


def _branch_up(*, chat_id: uuid.UUID, leaf_id: uuid.UUID, counted: str, limit: int) -> list[Message]:
    """The messages from `leaf_id` up toward the root, newest first, until `limit` of them count
    (`_COUNTED`): one recursive query, whose cost is the branch's length, not the chat's size."""
    table = connection.ops.quote_name(Message._meta.db_table)
    pk = Message._meta.pk
    sql = f"""
        WITH RECURSIVE branch(id, parent_id, counted, depth) AS (
            SELECT m.id, m.parent_id, {_COUNTED[counted]}, 0 FROM {table} m WHERE m.id = %s AND m.chat_id = %s
            UNION ALL
            SELECT m.id, m.parent_id, branch.counted + {_COUNTED[counted]}, branch.depth + 1
            FROM {table} m JOIN branch ON m.id = branch.parent_id
            WHERE branch.counted < %s AND branch.depth < %s
        )
        SELECT m.* FROM {table} m JOIN branch ON m.id = branch.id ORDER BY branch.depth
    """  # noqa: S608 (table name and _COUNTED are ours)
    params = [pk.get_db_prep_value(leaf_id, connection), pk.get_db_prep_value(chat_id, connection)]
    return list(Message.objects.raw(sql, [*params, limit, _WALK_MAX_STEPS]))


def branch_history(*, chat: Chat, leaf_id: uuid.UUID | None, limit: int) -> list[Message]:
    """The messages from the root to `leaf_id`, oldest first, at most `limit` of the newest.
    Failed or cancelled assistant turns stay in the tree but are left out of the model's history.
    One query whatever the chat's size."""
    if leaf_id is None:
        return []
    walked = _branch_up(chat_id=chat.pk, leaf_id=leaf_id, counted="history", limit=limit)
    kept = [m for m in walked if m.role != Role.ASSISTANT or m.status == MessageStatus.COMPLETE]
    return kept[:limit][::-1]


def bot_chat_get(*, user: User, bot_id: uuid.UUID | str, chat_id: uuid.UUID | str) -> Chat:
    """The user's chat held with this bot of theirs, the bot and its model configs read with it (two
    queries, where the bot then the chat took three); a missing bot is its own 404, as with `bot_get`."""
    chat = (
        Chat.objects.owned_by(user)
        .filter(pk=chat_id, bot_id=bot_id, bot__owner=user)
        .select_related("bot")
        .prefetch_related("bot__model_configs")
        .first()
    )
    if chat is None:
        bot_get(user=user, bot_id=bot_id)
        raise ChatNotFound()
    return chat


def chat_list(*, user: User) -> QuerySet[Chat]:
    """All of the user's chats, whichever surface made them, most recently active first."""
    return Chat.objects.owned_by(user).order_by("-updated_at", "-created_at")


def chat_messages(*, chat: Chat) -> list[Message]:
    """Every message of the chat, all branches, oldest first."""
    return list(Message.objects.filter(chat=chat).order_by("created_at", "id"))


def message_get(*, chat: Chat, message_id: uuid.UUID | str) -> Message:
    message = Message.objects.filter(chat=chat, pk=message_id).first()
    if message is None:
        raise NotFound(_("Message not found in this conversation."), code="message_not_found")
    return message


def branch_messages(*, chat: Chat, leaf_id: uuid.UUID | None = None) -> list[Message]:
    """Every message from the root to `leaf_id` (default: the current node), oldest first,
    whatever its status: what a person reading the chat sees. One query."""
    leaf_id = leaf_id or chat.current_node_id
    if leaf_id is None:
        return []
    return _branch_up(chat_id=chat.pk, leaf_id=leaf_id, counted="every", limit=_WALK_MAX_STEPS)[::-1]


def answer_target_get(*, user: User, target_id: uuid.UUID | str) -> tuple[Chat, Message]:
    """What 004 `inference` answers: for a chat id, the latest Human message on the chat's current
    branch; for the id of one of the user's Human messages, that message. Another user's ids are 404."""
    chat = Chat.objects.owned_by(user).filter(pk=target_id).select_related("bot").first()
    if chat is None:
        message = (
            Message.objects.filter(chat__owner=user, chat__visitor_id__isnull=True, pk=target_id)
            .select_related("chat__bot")
            .first()
        )
        if message is None:
            raise ChatNotFound(_("Chat or message not found."))
        if message.role != Role.USER:
            raise DomainError(_("Only a Human message can be answered."), code="not_a_question")
        return message.chat, message
    if chat.current_node_id is not None:
        walked = _branch_up(chat_id=chat.pk, leaf_id=chat.current_node_id, counted="questions", limit=1)
        if walked and walked[-1].role == Role.USER:
            return chat, walked[-1]
    raise DomainError(_("This chat has no Human message to answer yet."), code="nothing_to_answer")


def public_bot_get(*, key: object) -> Bot:
    """The public bot with this publishable key, whose owner can still use it; else 404."""
    bot = None
    if isinstance(key, str) and 0 < len(key) <= 64:
        bot = Bot.objects.filter(public=True, public_key=key, owner__is_active=True).select_related("owner").first()
    if bot is None:
        raise NotFound(_("No public bot has this key."), code="bot_not_found")
    return bot


def visitor_chat_get(*, visitor_id: uuid.UUID, chat_id: uuid.UUID | str, bot_id: uuid.UUID | None = None) -> Chat:
    """A widget visitor's own chat (with `bot_id`, with that bot) while the bot is public; else 404."""
    chats = Chat.objects.filter(pk=chat_id, visitor_id=visitor_id, bot__public=True, owner__is_active=True)
    if bot_id is not None:
        chats = chats.filter(bot_id=bot_id)
    chat = chats.select_related("bot", "owner").first()
    if chat is None:
        raise ChatNotFound()
    return chat


def visitor_session_get(
    *, visitor_token: str, session_id: uuid.UUID | str, origin: str | None, own_origin: str, page_required: bool
) -> tuple[Visitor, Chat, str]:
    """The visitor a token names (under the bot's current key), their session, and the calling page,
    which the bot must allow: 401 for a bad token, 404 for any other session, 403 for another page."""
    visitor = visitor_from_token(visitor_token)
    chat = None
    if visitor is not None:
        chat = visitor_chat_get(visitor_id=visitor.id, chat_id=session_id, bot_id=visitor.bot_id)
    if visitor is None or chat is None or visitor_from_token(visitor_token, bot=chat.bot) is None:
        raise NotAuthenticated(
            _("Send the visitor token of this browser: Authorization: Visitor <token>."),
            code="visitor_token_invalid",
            headers={"WWW-Authenticate": 'Visitor realm="widget"'},
        )
    page = page_check(chat.bot, origin, own_origin=own_origin, required=page_required)
    return visitor, chat, page
