"""The 001 chat surface: `POST /chat/{bot_id}` streams the bot's answer (plain text or SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework import serializers

from accounts.authentication import authenticate_bearer
from accounts.models import User
from bots.llm import get_provider
from bots.models import TaskType
from bots.routing import route_model
from bots.selectors import bot_get
from chats.events import StreamEvent
from chats.models import Surface
from chats.selectors import chat_get
from chats.services import chat_create, title_from_prompt, user_message_create
from chats.streaming import ReplyRequest, released, reply_stream
from config.errors import DomainError, NotFound
from config.exception_handler import error_payload_for, flatten_validation_errors
from config.serializers import StrictSerializer

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class BotChatSerializer(StrictSerializer):
    query = serializers.CharField(max_length=settings.CHAT_MAX_QUERY_CHARS, trim_whitespace=True)
    task_type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    chat_id = serializers.UUIDField(required=False, help_text="Continue this chat; omitted, a new chat starts.")
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, required=False)
    max_tokens = serializers.IntegerField(min_value=1, max_value=settings.CHAT_MAX_TOKENS_CAP, required=False)


def _request_data(request: HttpRequest) -> dict[str, Any]:
    """Query parameters (as documented) merged under a JSON or form body, the body winning."""
    data: dict[str, Any] = {key: request.GET.get(key) for key in request.GET}
    if request.body:
        if request.content_type == "application/json":
            try:
                body = json.loads(request.body)
            except (ValueError, RecursionError) as exc:
                raise DomainError(_("Request body is not valid JSON."), code="parse_error") from exc
            if not isinstance(body, dict):
                raise DomainError(_("Request body must be a JSON object."), code="parse_error")
            data.update(body)
        else:
            data.update({key: request.POST.get(key) for key in request.POST})
    return data


def _prepare(request: HttpRequest, bot_id: str) -> tuple[ReplyRequest, dict[str, str]]:
    """Everything before the model call, in one thread hop: auth, validation, routing, the user turn."""
    user: User = authenticate_bearer(request)
    serializer = BotChatSerializer(data=_request_data(request))
    if not serializer.is_valid():
        raise DomainError("; ".join(flatten_validation_errors(serializer.errors)), code="invalid")
    data = serializer.validated_data
    bot = bot_get(user=user, bot_id=bot_id)
    spec, task_type = route_model(
        configs=list(bot.model_configs.all()), query=data["query"], task_type=data.get("task_type")
    )
    get_provider(spec.provider)  # a provider with no key is a 503 before anything is stored
    if "chat_id" in data:
        chat = chat_get(user=user, chat_id=data["chat_id"])
        if chat.bot_id != bot.pk:
            raise NotFound(_("Chat not found."), code="chat_not_found")
        parent = chat.current_node
    else:
        chat = chat_create(owner=user, bot=bot, title=title_from_prompt(data["query"]), surface=Surface.BYTCHAT)
        parent = None
    user_message = user_message_create(chat=chat, content=data["query"], parent=parent)
    headers = {
        "X-Chat-Id": str(chat.id),
        "X-Bytchat-Model": f"{spec.provider}/{spec.model}",
        "X-Bytchat-Task-Type": str(task_type),
    }
    reply = ReplyRequest(
        chat=chat,
        user_message=user_message,
        spec=spec,
        system_prompt=bot.system_prompt,
        temperature=data.get("temperature"),
        max_tokens=data.get("max_tokens"),
    )
    return reply, headers


def _error_response(exc: BaseException) -> JsonResponse:
    payload, status_code, headers = error_payload_for(exc) or (
        {"detail": _("Internal server error."), "code": "server_error"},
        500,
        {},
    )
    return JsonResponse(payload, status=status_code, headers=headers)


async def _relay(first: StreamEvent, events: AsyncIterator[StreamEvent], encode) -> AsyncIterator[bytes]:
    async with aclosing(events):
        yield encode(first)
        async for event in events:
            yield encode(event)


@csrf_exempt
@require_POST
async def bot_chat(request: HttpRequest, bot_id: str) -> HttpResponse:
    try:
        reply, headers = await released(_prepare)(request=request, bot_id=bot_id)
    except DomainError as exc:
        return _error_response(exc)
    except Exception as exc:  # body too large, too many fields: Django's own request errors
        if error_payload_for(exc) is None:
            raise
        return _error_response(exc)

    events = reply_stream(reply)
    first = await anext(events)
    if first.type == "error":
        # Nothing was streamed yet, so the failure can still be a proper HTTP status.
        await events.aclose()
        return JsonResponse(first.payload(), status=first.status_code, headers={**headers, **first.headers})

    wants_sse = "text/event-stream" in request.headers.get("Accept", "")
    if wants_sse:
        response = StreamingHttpResponse(
            _relay(first, events, StreamEvent.to_sse), content_type="text/event-stream; charset=utf-8"
        )
        headers.update(SSE_HEADERS)
    else:
        response = StreamingHttpResponse(
            _relay(first, events, StreamEvent.to_text), content_type="text/plain; charset=utf-8"
        )
        headers["X-Accel-Buffering"] = "no"
    for name, value in headers.items():
        response[name] = value
    return response
