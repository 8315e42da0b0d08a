"""Writes on chats: creating chats, storing user turns and assistant replies."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from bots.llm.types import Usage
from bots.models import Bot
from chats.models import Chat, Message, MessageStatus, Role, Surface

TITLE_CHARS = 80


def title_from_prompt(prompt: str) -> str:
    words = " ".join(prompt.split())
    return words if len(words) <= TITLE_CHARS else words[: TITLE_CHARS - 1].rstrip() + "…"


def chat_create(
    *,
    owner: User,
    surface: Surface,
    bot: Bot | None = None,
    title: str = "",
    context: dict[str, Any] | None = None,
) -> Chat:
    return Chat.objects.create(owner=owner, bot=bot, title=title, surface=surface, context=context or {})


def _append(chat: Chat, message: Message) -> Message:
    with transaction.atomic():
        message.save(force_insert=True)
        Chat.objects.filter(pk=chat.pk).update(current_node=message, updated_at=timezone.now())
    chat.current_node = message
    return message


def user_message_create(*, chat: Chat, content: str, parent: Message | None = None) -> Message:
    return _append(chat, Message(chat=chat, parent=parent, role=Role.USER, content=content))


def assistant_message_create(
    *,
    chat: Chat,
    parent: Message,
    content: str,
    status: MessageStatus,
    model: str = "",
    finish_reason: str = "",
    usage: Usage | None = None,
    citations: list[dict[str, Any]] | None = None,
    error: str = "",
) -> Message:
    """Stores a reply once, complete or partial, with why it ended."""
    return _append(
        chat,
        Message(
            chat=chat,
            parent=parent,
            role=Role.ASSISTANT,
            content=content,
            status=status,
            model=model[:200],
            finish_reason=finish_reason[:32],
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            citations=citations or [],
            error=error[:500],
        ),
    )
