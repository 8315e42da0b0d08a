"""The web widget's API (`chats/static/bytchat/widget.js`): anonymous visitors of a public bot.

- `POST /widget/sessions` `{"bot_key", "visitor_token"?}` -> 201 a new session of this browser's
  visitor, with the visitor token to keep and a `websocket_url` for the 003 socket.
- `GET /widget/sessions/<id>/messages` -> the session's messages (the history a widget reloads).
- `POST /widget/sessions/<id>/websocket` -> a fresh `websocket_url` (tickets are single-use).

The last two authenticate with `Authorization: Visitor <token>`. Requests come from other sites'
pages, so every response carries CORS headers for the calling origin: the API uses no cookies, and
what guards it is the server-side check that the page's origin is one the bot allows (chats.visitors).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.quotas import rate_limit_take
from chats.feedback.selectors import feedback_by_message
from chats.models import Chat, Message
from chats.selectors import branch_messages, public_bot_get, visitor_session_get
from chats.services import widget_session_start
from chats.visitors import Visitor, is_own_page, visitor_citations, visitor_token_issue
from chats.ws.urls import websocket_url
from core.api.serializers import StrictSerializer, validated
from core.cors import AnyOriginCors
from core.paths import UUID


class WidgetSessionCreateSerializer(StrictSerializer):
    bot_key = serializers.CharField(max_length=64, help_text="The bot's publishable key (`pk_...`).")
    visitor_token = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="The token this browser kept, if any."
    )


class WidgetMessageSerializer(serializers.ModelSerializer):
    citations = serializers.SerializerMethodField()
    feedback = serializers.SerializerMethodField(help_text="The visitor's rating of an answer (docs/feedback.md).")

    class Meta:
        model = Message
        fields = ["id", "role", "content", "status", "citations", "feedback", "created_at"]
        read_only_fields = fields

    def get_citations(self, message: Message) -> list[dict[str, Any]]:
        return visitor_citations(message.citations)

    def get_feedback(self, message: Message) -> str | None:
        feedback = self.context.get("feedback", {}).get(message.pk)
        return feedback.rating if feedback is not None else None


def _own_origin(request: Request) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _visitor_session(request: Request, session_id: str, *, page_required: bool) -> tuple[Visitor, Chat, str]:
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    return visitor_session_get(
        visitor_token=token if scheme == "Visitor" else "",
        session_id=session_id,
        origin=request.headers.get("Origin"),
        own_origin=_own_origin(request),
        page_required=page_required,
    )


def _websocket_url(request: Request, chat: Chat, visitor: Visitor, page: str) -> str:
    return websocket_url(
        request,
        chat.pk,
        user_id=chat.owner_id,
        visitor_id=visitor.id,
        origin=page,
        own_page=is_own_page(page, _own_origin(request)),
    )


class WidgetView(AnyOriginCors, APIView):
    # a page the bot does not allow
    error_statuses = {403}
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]


class WidgetSessionCreateView(WidgetView):
    # no public bot with this key; a page the bot does not allow
    error_statuses = {403, 404}

    @extend_schema(
        request=WidgetSessionCreateSerializer,
        responses={
            201: inline_serializer(
                "WidgetSession",
                {
                    "session_id": serializers.UUIDField(),
                    "visitor_token": serializers.CharField(),
                    "websocket_url": serializers.CharField(),
                    "bot": inline_serializer("WidgetBot", {"name": serializers.CharField()}),
                },
            )
        },
        auth=[],
        description="A new chat of this browser's visitor with a public bot, from a page the bot allows.",
    )
    def post(self, request: Request) -> Response:
        data = validated(WidgetSessionCreateSerializer, request.data)
        chat, visitor, page = widget_session_start(
            bot=public_bot_get(key=data["bot_key"]),
            visitor_token=data.get("visitor_token"),
            origin=request.headers.get("Origin"),
            own_origin=_own_origin(request),
            client=BaseThrottle().get_ident(request),  # the client address, behind NUM_PROXIES proxies
        )
        return Response(
            {
                "session_id": str(chat.pk),
                "visitor_token": visitor_token_issue(visitor),
                "websocket_url": _websocket_url(request, chat, visitor, page),
                "bot": {"name": chat.bot.name},
            },
            status=status.HTTP_201_CREATED,
        )


class WidgetMessagesView(WidgetView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "WidgetHistory",
                {"session_id": serializers.UUIDField(), "messages": WidgetMessageSerializer(many=True)},
            )
        },
        auth=[],
        description="The visitor's session, oldest message first (the current branch).",
    )
    def get(self, request: Request, session_id: str) -> Response:
        _visitor, chat, _page = _visitor_session(request, session_id, page_required=False)
        messages = branch_messages(chat=chat)[-settings.LIST_MAX_ROWS :]
        feedback = feedback_by_message(message_ids=[message.pk for message in messages])
        shown = WidgetMessageSerializer(messages, many=True, context={"feedback": feedback}).data
        return Response({"session_id": str(chat.pk), "messages": shown})


class WidgetWebsocketView(WidgetView):
    @extend_schema(
        request=None,
        responses={200: inline_serializer("WidgetWebsocket", {"websocket_url": serializers.CharField()})},
        auth=[],
        description="A fresh socket URL for the visitor's session (each ticket opens one socket, within 60 s).",
    )
    def post(self, request: Request, session_id: str) -> Response:
        visitor, chat, page = _visitor_session(request, session_id, page_required=True)
        # Each URL opens one socket; a visitor asking for many is a client gone wrong or a flood.
        rate_limit_take(key=f"visitor:{visitor.id.hex}", scope="widget-sockets", rate=settings.WIDGET_SOCKETS_RATE)
        return Response({"websocket_url": _websocket_url(request, chat, visitor, page)})


urlpatterns = [
    re_path(r"^widget/sessions/?$", WidgetSessionCreateView.as_view(), name="widget-sessions"),
    re_path(
        rf"^widget/sessions/(?P<session_id>{UUID})/messages/?$",
        WidgetMessagesView.as_view(),
        name="widget-session-messages",
    ),
    re_path(
        rf"^widget/sessions/(?P<session_id>{UUID})/websocket/?$",
        WidgetWebsocketView.as_view(),
        name="widget-session-websocket",
    ),
]
