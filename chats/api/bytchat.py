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
from rest_framework import serializers

from accounts.authentication import authenticate_bearer
from accounts.models import User
from bots.models import TaskType
from chats.events import StreamEvent
from chats.services import bot_chat_start
from chats.streaming import released, reply_stream
from chats.types import ReplyRequest
from config.errors import DomainError
from config.exception_handler import error_payload_for
from config.serializers import StrictSerializer, validated

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


def _prepare(*, request: HttpRequest, bot_id: str) -> tuple[ReplyRequest, dict[str, str]]:
    """Everything before the model call, in one thread hop: auth, validation, the service."""
    user: User = authenticate_bearer(request)
    data = validated(BotChatSerializer, _request_data(request))
    reply, task_type = bot_chat_start(
        user=user,
        bot_id=bot_id,
        query=data["query"],
        task_type=data.get("task_type"),
        chat_id=data.get("chat_id"),
        temperature=data.get("temperature"),
        max_tokens=data.get("max_tokens"),
    )
    headers = {
        "X-Chat-Id": str(reply.chat.id),
        "X-Bytchat-Model": f"{reply.spec.provider}/{reply.spec.model}",
        "X-Bytchat-Task-Type": str(task_type),
    }
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
async def bot_chat(request: HttpRequest, bot_id: str) -> HttpResponse:
    if request.method != "POST":
        response = JsonResponse(
            {"detail": _("Method %(method)s not allowed.") % {"method": request.method}, "code": "method_not_allowed"},
            status=405,
        )
        response["Allow"] = "POST"
        return response
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
