"""The chat an export reads: its whole message tree in one query, after one aggregate checks its size."""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass

from django.db.models import Count, Sum, TextField
from django.db.models.functions import Cast, Coalesce, Length

from accounts.models import User
from chats.exports.limits import chat_bounds_check
from chats.models import Chat, Message
from chats.selectors import chat_get, chat_messages


@dataclass(frozen=True, slots=True)
class ChatExport:
    chat: Chat
    # Every message of every branch, a parent always before its children, otherwise oldest first.
    tree: list[Message]
    # Root to the chat's current node, oldest first: what a person reading the chat sees.
    branch: list[Message]
    # Characters of message text and stored citations in the whole tree (what the bounds count).
    chars: int


def chat_export_get(*, user: User, chat_id: uuid.UUID | str) -> ChatExport:
    """The user's chat (another user's, or a visitor's, is a 404) with its messages; a chat past
    the export bounds is refused before its messages are read."""
    chat = chat_get(user=user, chat_id=chat_id)
    size = Message.objects.filter(chat=chat).aggregate(
        messages=Count("id"),
        content=Coalesce(Sum(Length("content")), 0),
        citations=Coalesce(Sum(Length(Cast("citations", TextField()))), 0),
    )
    chars = size["content"] + size["citations"]
    chat_bounds_check(messages=size["messages"], chars=chars)
    tree = parents_first(chat_messages(chat=chat))
    return ChatExport(chat=chat, tree=tree, branch=branch_of(tree, leaf_id=chat.current_node_id), chars=chars)


def parents_first(messages: list[Message]) -> list[Message]:
    """`messages` (oldest first) reordered so that a parent always comes before its children, which
    timestamps alone do not promise (two rows written in the same microsecond sort by id)."""
    position = {message.pk: index for index, message in enumerate(messages)}
    children: dict[uuid.UUID, list[int]] = {}
    ready: list[int] = []
    for index, message in enumerate(messages):
        if message.parent_id in position:
            children.setdefault(message.parent_id, []).append(index)
        else:
            ready.append(index)
    heapq.heapify(ready)
    ordered: list[Message] = []
    while ready:
        message = messages[heapq.heappop(ready)]
        ordered.append(message)
        for child in children.get(message.pk, ()):
            heapq.heappush(ready, child)
    return ordered


def branch_of(tree: list[Message], *, leaf_id: uuid.UUID | None) -> list[Message]:
    """The messages from the root to `leaf_id`, oldest first (none without a current node)."""
    by_id = {message.pk: message for message in tree}
    branch: list[Message] = []
    message = by_id.get(leaf_id) if leaf_id is not None else None
    # A tree has no cycles; the bound only makes sure a walk over stored rows ends.
    while message is not None and len(branch) <= len(tree):
        branch.append(message)
        message = by_id.get(message.parent_id)
    return branch[::-1]
