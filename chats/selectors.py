"""Reads on chats, scoped to the owner; histories follow one branch of the message tree."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot
from chats.models import Chat, Message, MessageStatus, Role
from config.errors import NotFound


def chat_get(*, user: User, chat_id: uuid.UUID | str, bot: Bot | None = None) -> Chat:
    """The user's chat; with `bot`, only a chat held with that bot."""
    chats = Chat.objects.filter(owner=user, pk=chat_id)
    if bot is not None:
        chats = chats.filter(bot=bot)
    chat = chats.select_related("bot").first()
    if chat is None:
        raise NotFound(_("Chat not found."), code="chat_not_found")
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
    return Chat.objects.filter(owner=user).order_by("-updated_at", "-created_at")


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
