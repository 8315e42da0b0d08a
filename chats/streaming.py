"""The one conversation engine: builds the model input, relays the provider stream, persists the reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils.translation import gettext as _

from bots.llm import get_provider
from bots.llm.types import CompletionRequest, ModelSpec, StreamEnd, TextDelta
from chats.events import StreamEvent
from chats.models import Chat, Message, MessageStatus
from chats.prompts import build_model_input
from chats.selectors import branch_history
from chats.services import assistant_message_create
from config.errors import DomainError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    chat: Chat
    user_message: Message
    spec: ModelSpec
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None


def released(function):
    """Run ORM work in a thread, then give the connection back: none is held while the model writes."""

    def run(**kwargs):
        try:
            return function(**kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run)


async def _save_reply(request: ReplyRequest, text: str, status: MessageStatus, **fields) -> Message:
    return await released(assistant_message_create)(
        chat=request.chat, parent=request.user_message, content=text, status=status, **fields
    )


async def reply_stream(request: ReplyRequest) -> AsyncIterator[StreamEvent]:
    """Chunks as the model writes them, then `done` (reply stored) or `error` (partial stored, if any).

    If the consumer goes away (cancellation or close), the upstream request is closed and the
    partial answer is stored with status `cancelled`.
    """
    history = await released(branch_history)(
        chat=request.chat, leaf_id=request.user_message.id, limit=settings.CHAT_HISTORY_MESSAGES
    )
    model_input = build_model_input(
        system_prompt=request.system_prompt,
        history=[(message.role, message.content) for message in history],
        context=request.chat.context,
    )
    completion = CompletionRequest(
        model=request.spec.model,
        messages=model_input,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
    )
    parts: list[str] = []
    end: StreamEnd | None = None
    try:
        provider = get_provider(request.spec.provider)
        async for item in provider.astream(completion):
            if isinstance(item, TextDelta):
                parts.append(item.text)
                yield StreamEvent.chunk(item.text)
            else:
                end = item
    except DomainError as exc:
        if parts:
            await _save_reply(request, "".join(parts), MessageStatus.ERROR, model=request.spec.model, error=exc.message)
        yield StreamEvent.error(exc.message, code=exc.code, status_code=exc.status_code, headers=exc.headers)
        return
    except (asyncio.CancelledError, GeneratorExit):
        await asyncio.shield(
            _save_reply(
                request,
                "".join(parts),
                MessageStatus.CANCELLED,
                model=request.spec.model,
                finish_reason="cancelled",
                error=_("The client disconnected before the answer was complete."),
            )
        )
        raise
    if end is None:
        raise RuntimeError(f"provider {request.spec.provider} ended its stream without StreamEnd")
    text = "".join(parts)
    message = await _save_reply(
        request, text, MessageStatus.COMPLETE, model=end.model, finish_reason=end.finish_reason, usage=end.usage
    )
    yield StreamEvent.done(
        text,
        message_id=str(message.id),
        chat_id=str(request.chat.id),
        model=end.model,
        finish_reason=end.finish_reason,
        usage={
            "prompt_tokens": end.usage.prompt_tokens,
            "completion_tokens": end.usage.completion_tokens,
            "total_tokens": end.usage.total_tokens,
            "estimated": end.usage.estimated,
        },
        citations=[],
    )
