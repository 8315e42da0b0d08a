"""One way to make a chat from copied messages, kept as a tree: what a fork and "continue a share" both do."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Hashable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from bots.models import Bot
from chats.models import Chat, Message, MessageStatus, Surface
from chats.services import chat_create


@dataclasses.dataclass(frozen=True, slots=True)
class MessageCopy:
    """A message to copy: `key` names it among the copies, `parent` is its parent's key (None: a root).
    Token counts are never copied: the usage was the original's, and is counted once."""

    key: Hashable
    parent: Hashable | None
    role: str
    content: str
    status: str = MessageStatus.COMPLETE
    model: str = ""
    finish_reason: str = ""
    citations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    error: str = ""
    authored_by_client: bool = False
    task_type: str = ""

    @classmethod
    def of(cls, message: Message) -> MessageCopy:
        # A copy of an answer still being written is never finished: it ends as the original had got.
        status = MessageStatus.INTERRUPTED if message.status == MessageStatus.STREAMING else message.status
        return cls(
            key=message.pk,
            parent=message.parent_id,
            role=message.role,
            content=message.content,
            status=status,
            model=message.model,
            finish_reason=message.finish_reason,
            citations=message.citations,
            error=message.error,
            authored_by_client=message.authored_by_client,
            task_type=message.task_type,
        )


def chat_copy_create(
    *,
    owner: User,
    title: str,
    bot: Bot | None,
    messages: Sequence[MessageCopy],
    current: Hashable | None,
    surface: Surface = Surface.CHATS,
) -> Chat:
    """A new chat of `owner` holding `messages` (parents before children) with new ids, its current node
    the copy of `current`. A parent outside `messages` makes the copy a root. Queries: the chat, the
    messages in bulk, the current node, whatever the number of messages."""
    new_ids = {copy.key: uuid.uuid4() for copy in messages}
    with transaction.atomic():
        chat = chat_create(owner=owner, surface=surface, bot=bot, title=title[:200])
        rows = [
            Message(
                id=new_ids[copy.key],
                chat=chat,
                parent_id=new_ids.get(copy.parent) if copy.parent is not None else None,
                role=copy.role,
                content=copy.content,
                status=copy.status,
                model=copy.model,
                finish_reason=copy.finish_reason,
                citations=copy.citations,
                error=copy.error,
                authored_by_client=copy.authored_by_client,
                task_type=copy.task_type,
            )
            for copy in messages
        ]
        Message.objects.bulk_create(rows)
        current_id = new_ids.get(current) if current is not None else None
        if current_id is not None:
            Chat.objects.filter(pk=chat.pk).update(current_node_id=current_id, updated_at=timezone.now())
            chat.current_node_id = current_id
    chat.message_count = len(rows)
    return chat
