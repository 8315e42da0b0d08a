"""The 001 chat surface: `POST /chat/{bot_id}` streams the bot's answer (plain text or SSE)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from rest_framework import serializers

from accounts.authentication import authenticate_bearer
from accounts.models import User
from bots.models import TaskType
from chats.api.streams import answer_response
from chats.runs.runner import run_begin
from chats.services import bot_chat_start
from chats.types import ReplyRequest
from core.api.async_views import async_api_view, request_data
from core.api.serializers import StrictSerializer, validated
from core.paths import UUID


class BotChatSerializer(StrictSerializer):
    query = serializers.CharField(max_length=settings.CHAT_MAX_QUERY_CHARS, trim_whitespace=True)
    task_type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    chat_id = serializers.UUIDField(required=False, help_text="Continue this chat; omitted, a new chat starts.")
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, required=False)
    max_tokens = serializers.IntegerField(min_value=1, max_value=settings.CHAT_MAX_TOKENS_CAP, required=False)


def _prepare(*, request: HttpRequest, bot_id: str) -> tuple[ReplyRequest, dict[str, str]]:
    """Everything before the model call, in one thread hop: auth, validation, the service."""
    user: User = authenticate_bearer(request)
    data = validated(BotChatSerializer, request_data(request))
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


@async_api_view("POST")
async def bot_chat(request: HttpRequest, bot_id: str) -> HttpResponse:
    live, headers = await run_begin(_prepare, request=request, bot_id=bot_id)
    wants_sse = "text/event-stream" in request.headers.get("Accept", "")
    return await answer_response(live, headers=headers, sse=wants_sse)


urlpatterns = [
    re_path(rf"^chat/(?P<bot_id>{UUID})/?$", bot_chat, name="bot-chat"),
]
