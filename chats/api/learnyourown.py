"""The 000 surface's `/chat`: the model's answer, grounded in all of the caller's knowledge.

The JWT comes in the `Authorization` header or, as the seed sends it, as `token` in the JSON
body; `user` must name the caller and `type_user` is never trusted (the account's type is).
The answer streams as chunked plain text, like 001's default.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from rest_framework import serializers

from accounts.authentication import authenticate_bearer, check_names_caller, user_from_access_token
from accounts.models import User
from chats.api.streams import answer_response
from chats.models import Surface
from chats.runs.runner import run_begin
from chats.selectors import chat_get
from chats.services import turn_start
from chats.types import ReplyRequest
from core.api.async_views import async_api_view, json_body
from core.api.serializers import StrictSerializer, validated
from core.errors import NotAuthenticated


class LearnyourownChatSerializer(StrictSerializer):
    user = serializers.CharField(required=False, allow_blank=True)
    token = serializers.CharField(required=False, allow_blank=True)
    type_user = serializers.CharField(required=False, allow_blank=True, max_length=50)
    text = serializers.CharField(max_length=settings.CHAT_MAX_QUERY_CHARS)
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, required=False)
    max_tokens = serializers.IntegerField(min_value=1, max_value=settings.CHAT_MAX_TOKENS_CAP, required=False)
    chat_id = serializers.UUIDField(required=False, help_text="Continue this chat (an extension of the seed).")


def _caller(request: HttpRequest, body: dict) -> User:
    if request.headers.get("Authorization"):
        return authenticate_bearer(request)
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise NotAuthenticated()
    return user_from_access_token(token)


def _prepare(request: HttpRequest) -> tuple[ReplyRequest, dict[str, str]]:
    body = json_body(request)
    user = _caller(request, body)
    data = validated(LearnyourownChatSerializer, body)
    check_names_caller(user, data.get("user"), request.GET.get("user"))
    chat = chat_get(user=user, chat_id=data["chat_id"]) if data.get("chat_id") else None
    reply, _task_type = turn_start(
        user=user,
        prompt=data["text"],
        chat=chat,
        surface=Surface.LEARNYOUROWN,
        temperature=data.get("temperature"),
        max_tokens=data.get("max_tokens"),
    )
    return reply, {"X-Chat-Id": str(reply.chat.id), "X-Bytchat-Model": f"{reply.spec.provider}/{reply.spec.model}"}


@async_api_view("POST")
async def learnyourown_chat(request: HttpRequest) -> HttpResponse:
    live, headers = await run_begin(_prepare, request=request)
    return await answer_response(live, headers=headers, sse=False)


urlpatterns = [
    re_path(r"^chat/?$", learnyourown_chat, name="learnyourown-chat"),
]
