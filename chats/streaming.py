"""The one conversation engine: builds the model input, relays the provider stream, persists the reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils.translation import gettext as _

from accounts.quotas import stream_slot_release
from bots.llm import get_provider
from bots.llm.types import CompletionRequest, StreamEnd, TextDelta
from chats.events import StreamEvent
from chats.models import Message, MessageStatus
from chats.prompts import build_model_input
from chats.selectors import branch_history
from chats.services import assistant_message_create
from chats.types import ReplyRequest
from config.errors import DomainError
from knowledge.retrieval import search

logger = logging.getLogger(__name__)
T = TypeVar("T")


def released(function: Callable[..., T]) -> Callable[..., Any]:
    """Run ORM work in a thread, then give the connection back: none is held while the model writes."""

    def run(**kwargs: Any) -> T:
        try:
            return function(**kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run)


async def _save_reply(request: ReplyRequest, text: str, status: MessageStatus, **fields: Any) -> Message:
    return await released(assistant_message_create)(
        chat=request.chat, parent=request.user_message, content=text, status=status, **fields
    )


async def reply_stream(request: ReplyRequest) -> AsyncIterator[StreamEvent]:
    """Chunks as the model writes them, then `done` (reply stored) or `error` (partial stored, if any).

    If the consumer goes away (cancellation or close), the upstream request is closed and the
    partial answer is stored with status `cancelled`. The stream always ends with `done` or
    `error`, so a client can tell a finished answer from a broken one.
    """
    parts: list[str] = []
    try:
        history = await released(branch_history)(
            chat=request.chat, leaf_id=request.user_message.id, limit=settings.CHAT_HISTORY_MESSAGES
        )
        passages = []
        if request.knowledge_base_ids:
            passages = await released(search)(
                owner_id=request.chat.owner_id,
                query=request.user_message.content,
                knowledge_base_ids=request.knowledge_base_ids,
                limit=settings.KNOWLEDGE_PASSAGES_IN_CONTEXT,
            )
        citations = [passage.citation() for passage in passages]
        completion = CompletionRequest(
            model=request.spec.model,
            messages=build_model_input(
                system_prompt=request.system_prompt,
                history=[(message.role, message.content) for message in history],
                context=request.chat.context,
                passages=passages,
            ),
            temperature=request.temperature,
            max_tokens=request.max_tokens,
        )
        end: StreamEnd | None = None
        async with aclosing(get_provider(request.spec.provider).astream(completion)) as items:
            async for item in items:
                if isinstance(item, TextDelta):
                    parts.append(item.text)
                    yield StreamEvent.chunk(item.text)
                else:
                    end = item
        if end is None:
            raise RuntimeError(f"provider {request.spec.provider} ended its stream without StreamEnd")
        text = "".join(parts)
        message = await _save_reply(
            request,
            text,
            MessageStatus.COMPLETE,
            model=end.model,
            finish_reason=end.finish_reason,
            usage=end.usage,
            citations=citations,
        )
    except DomainError as exc:
        await _save_partial(request, parts, MessageStatus.ERROR, exc.message)
        yield StreamEvent.error(exc.message, code=exc.code, status_code=exc.status_code, headers=exc.headers)
        return
    except (asyncio.CancelledError, GeneratorExit):
        await asyncio.shield(
            _save_partial(
                request, parts, MessageStatus.CANCELLED, _("The client disconnected before the answer was complete.")
            )
        )
        raise
    except Exception:
        logger.exception("reply to chat %s failed", request.chat.pk)
        message_text = _("The answer failed on the server; what was written so far is kept.")
        await _save_partial(request, parts, MessageStatus.ERROR, message_text)
        yield StreamEvent.error(message_text, code="server_error", status_code=500)
        return
    finally:
        if request.slot_user_id is not None:
            await sync_to_async(stream_slot_release)(user_id=request.slot_user_id)
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
        citations=citations,
    )


async def _save_partial(request: ReplyRequest, parts: list[str], status: MessageStatus, error: str) -> None:
    """Keep what arrived before a failure; an answer that never started stores no empty message."""
    if status == MessageStatus.ERROR and not parts:
        return
    finish_reason = "cancelled" if status == MessageStatus.CANCELLED else "error"
    try:
        await _save_reply(
            request, "".join(parts), status, model=request.spec.model, finish_reason=finish_reason, error=error
        )
    except Exception:
        logger.exception("could not store the partial reply of chat %s", request.chat.pk)
