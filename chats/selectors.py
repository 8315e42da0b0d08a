"""Reads on chats, scoped to the owner; histories follow one branch of the message tree."""

from __future__ import annotations

import uuid

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
