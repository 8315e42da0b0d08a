"""Reads on chats, scoped to the owner; histories follow one branch of the message tree."""

from __future__ import annotations

import uuid

from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import Chat, Message, MessageStatus
from config.errors import NotFound


def chat_get(*, user: User, chat_id: uuid.UUID | str) -> Chat:
    chat = Chat.objects.filter(owner=user, pk=chat_id).select_related("bot").first()
    if chat is None:
        raise NotFound(_("Chat not found."), code="chat_not_found")
    return chat


def branch_history(*, chat: Chat, leaf_id: uuid.UUID | None, limit: int) -> list[Message]:
    """The messages from the root to `leaf_id`, oldest first, at most `limit` of the newest.

    One query: the chat's messages are loaded once and the parent links are walked in memory.
    Failed or cancelled assistant turns stay in the tree but are left out of the model's history.
    """
    if leaf_id is None:
        return []
    by_id = {
        message.id: message
        for message in Message.objects.filter(chat=chat).only(
            "id", "parent_id", "role", "content", "status", "created_at"
        )
    }
    path: list[Message] = []
    node = by_id.get(leaf_id)
    while node is not None and len(path) < limit:
        if node.status == MessageStatus.COMPLETE or node.role != "assistant":
            path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    path.reverse()
    return path
