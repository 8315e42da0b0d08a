"""Reads on chats, scoped to the owner; histories follow one branch of the message tree."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot
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


def branch_history(*, chat: Chat, leaf_id: uuid.UUID | None, limit: int) -> list[Message]:
    """The messages from the root to `leaf_id`, oldest first, at most `limit` of the newest.

    Two queries whatever the chat's size: the tree's links (no content) to walk the branch,
    then the content of the messages on it. Failed or cancelled assistant turns stay in the tree
    but are left out of the model's history.
    """
    if leaf_id is None:
        return []
    links = {
        row[0]: row[1:] for row in Message.objects.filter(chat=chat).values_list("id", "parent_id", "role", "status")
    }
    branch: list[uuid.UUID] = []
    node_id = leaf_id
    while node_id in links and len(branch) < limit:
        parent_id, role, status = links[node_id]
        if role != Role.ASSISTANT or status == MessageStatus.COMPLETE:
            branch.append(node_id)
        node_id = parent_id
    by_id = Message.objects.in_bulk(branch)
    return [by_id[message_id] for message_id in reversed(branch) if message_id in by_id]


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
    whatever its status: what a person reading the chat sees. Two queries."""
    leaf_id = leaf_id or chat.current_node_id
    if leaf_id is None:
        return []
    parents = dict(Message.objects.filter(chat=chat).values_list("id", "parent_id"))
    branch: list[uuid.UUID] = []
    node_id = leaf_id
    while node_id in parents and len(branch) < len(parents):
        branch.append(node_id)
        node_id = parents[node_id]
    by_id = Message.objects.in_bulk(branch)
    return [by_id[message_id] for message_id in reversed(branch) if message_id in by_id]


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
    links = {row[0]: row[1:] for row in Message.objects.filter(chat=chat).values_list("id", "parent_id", "role")}
    node_id, steps = chat.current_node_id, 0
    while node_id in links and steps <= len(links):
        parent_id, role = links[node_id]
        if role == Role.USER:
            return chat, Message.objects.get(pk=node_id)
        node_id, steps = parent_id, steps + 1
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
