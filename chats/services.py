"""Writes on chats: creating chats, storing user turns and assistant replies."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.quotas import stream_slot_acquire, stream_slot_release
from bots.llm import get_provider
from bots.llm.types import Usage
from bots.models import Bot
from bots.routing import route_model
from bots.selectors import bot_get
from chats.models import Chat, Message, MessageStatus, Role, Surface
from chats.selectors import chat_get
from chats.types import ReplyRequest
from config.errors import NotFound
from knowledge.selectors import knowledge_base_ids_for_bot

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
        # Locks the chat row, so a chat deleted meanwhile is a clear 404, not an integrity error.
        if not Chat.objects.select_for_update().filter(pk=chat.pk).exists():
            raise NotFound(_("Chat not found."), code="chat_not_found")
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


def bot_chat_start(
    *,
    user: User,
    bot_id: str,
    query: str,
    task_type: str | None = None,
    chat_id: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    surface: Surface = Surface.BYTCHAT,
) -> tuple[ReplyRequest, str]:
    """Everything before a bot's answer: route the model, take a stream slot, store the question.

    Returns what the engine needs, and the task type the query was routed as. A provider with no
    key, a foreign chat or a user over the parallel-stream limit fail here, before anything is stored.
    """
    bot = bot_get(user=user, bot_id=bot_id)
    spec, routed_as = route_model(configs=list(bot.model_configs.all()), query=query, task_type=task_type)
    get_provider(spec.provider)
    chat = chat_get(user=user, chat_id=chat_id, bot=bot) if chat_id else None
    stream_slot_acquire(user_id=user.pk)
    try:
        if chat is None:
            chat = chat_create(owner=user, bot=bot, title=title_from_prompt(query), surface=surface)
        user_message = user_message_create(chat=chat, content=query, parent=chat.current_node)
    except BaseException:
        stream_slot_release(user_id=user.pk)
        raise
    reply = ReplyRequest(
        chat=chat,
        user_message=user_message,
        spec=spec,
        system_prompt=bot.system_prompt,
        temperature=temperature,
        max_tokens=max_tokens,
        slot_user_id=user.pk,
        knowledge_base_ids=tuple(knowledge_base_ids_for_bot(bot_id=bot.pk)),
    )
    return reply, routed_as
