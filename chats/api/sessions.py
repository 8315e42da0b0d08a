"""The 003 surface: chat sessions with business context, answered over WebSocket."""

from __future__ import annotations

import uuid

from django.urls import re_path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.selectors import bot_get
from chats.models import Message
from chats.selectors import branch_messages, chat_get, chat_list
from chats.services import chat_context_update, chat_delete, session_create
from chats.ws.urls import websocket_url
from core.api.pagination import page_parameters, paginate
from core.api.serializers import StrictSerializer, validated
from core.paths import UUID

CONTEXT_SCHEMA = {
    "type": "object",
    "description": (
        "Business data as a flat object: keys are identifiers of at most 64 characters, values numbers, "
        "booleans or null (null removes the key). Given to the model as data, never as instructions."
    ),
    "additionalProperties": {"oneOf": [{"type": "number"}, {"type": "boolean"}], "nullable": True},
    "example": {"total_spent": 12450.5, "total_invoices": 48, "total_suppliers": 12},
}
WEBSOCKET_HELP = (
    "Absolute ws:// (wss:// behind TLS) URL of `/chat/ws/{session_id}` with a signed ticket for this session "
    "and user: it opens one socket, within WS_TICKET_SECONDS (60 s)."
)


class SessionCreateSerializer(StrictSerializer):
    context = serializers.JSONField(required=False, help_text="Business data (see the context endpoint).")
    bot_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Answer as one of your bots; omitted, the platform default."
    )


class SessionCreatedSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    status = serializers.CharField(help_text="`created`.")
    websocket_url = serializers.CharField(help_text=WEBSOCKET_HELP)


class SessionListSerializer(serializers.Serializer):
    sessions = serializers.ListField(child=serializers.UUIDField(), help_text="Ids, most recently active first.")
    count = serializers.IntegerField(help_text="All of your sessions, whatever the page.")


class HistoryMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["role", "content", "id", "status", "created_at", "citations"]
        read_only_fields = fields


class SessionHistorySerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    history = HistoryMessageSerializer(many=True)


class SessionStatusSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="`updated` or `deleted`.")
    session_id = serializers.UUIDField()


class SessionSocketSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    websocket_url = serializers.CharField(help_text=WEBSOCKET_HELP)


PAGE_PARAMETERS = page_parameters("At most this many ids (capped by LIST_MAX_ROWS).", "Skip this many ids.")


class SessionListCreateView(APIView):
    parser_classes = [JSONParser]
    # a `bot_id` that is not one of the caller's bots
    error_statuses = {404}

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: SessionListSerializer})
    def get(self, request: Request) -> Response:
        ids, headers = paginate(chat_list(user=request.user).values_list("id", flat=True), request.query_params)
        body = {"sessions": [str(chat_id) for chat_id in ids], "count": int(headers["X-Total-Count"])}
        return Response(body, headers=headers)

    @extend_schema(
        request=SessionCreateSerializer,
        responses={201: SessionCreatedSerializer},
        description=(
            "Creates a session (a chat) and returns the URL to open its WebSocket, `/chat/ws/{session_id}`. "
            "The socket also accepts `?token=<access JWT>` instead of the ticket. Frames: the server sends "
            '`{"type": "system"}` on connect; the client sends `{"type": "message", "content", "context"?}` or '
            '`{"type": "stop"}` or `{"type": "resume", "run_id", "after"}`; the server streams `chunk` frames '
            "(with `run_id` and `seq`) and ends with `done` (full text) or `error` (docs/runs.md)."
        ),
    )
    def post(self, request: Request) -> Response:
        data = validated(SessionCreateSerializer, request.data)
        bot = bot_get(user=request.user, bot_id=data["bot_id"]) if data.get("bot_id") else None
        chat = session_create(owner=request.user, bot=bot, context=data.get("context"))
        body = {"session_id": str(chat.pk), "status": "created", "websocket_url": websocket_url(request, chat.pk)}
        return Response(body, status=status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    @extend_schema(responses={200: SessionStatusSerializer})
    def delete(self, request: Request, session_id: str) -> Response:
        chat_delete(user=request.user, chat_id=session_id)
        return Response({"status": "deleted", "session_id": str(uuid.UUID(session_id))})


class SessionHistoryView(APIView):
    @extend_schema(responses={200: SessionHistorySerializer})
    def get(self, request: Request, session_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=session_id)
        history = HistoryMessageSerializer(branch_messages(chat=chat), many=True).data
        return Response({"session_id": str(chat.pk), "history": history})


class SessionContextView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request={"application/json": CONTEXT_SCHEMA},
        responses={200: SessionStatusSerializer},
        description='Merges the object into the session\'s context (also accepted wrapped as `{"context": {...}}`).',
    )
    def post(self, request: Request, session_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=session_id)
        changes = request.data
        if isinstance(changes, dict) and set(changes) == {"context"} and isinstance(changes["context"], dict):
            changes = changes["context"]
        chat_context_update(chat=chat, changes=changes)
        return Response({"status": "updated", "session_id": str(chat.pk)})


class SessionWebSocketView(APIView):
    @extend_schema(
        request=None,
        responses={200: SessionSocketSerializer},
        description="A fresh WebSocket URL for the session: to reconnect, or to watch it from a second tab.",
    )
    def post(self, request: Request, session_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=session_id)
        return Response({"session_id": str(chat.pk), "websocket_url": websocket_url(request, chat.pk)})


urlpatterns = [
    re_path(r"^chat/sessions/?$", SessionListCreateView.as_view(), name="chat-sessions"),
    re_path(rf"^chat/sessions/(?P<session_id>{UUID})/?$", SessionDetailView.as_view(), name="chat-session"),
    re_path(
        rf"^chat/sessions/(?P<session_id>{UUID})/history/?$", SessionHistoryView.as_view(), name="chat-session-history"
    ),
    re_path(
        rf"^chat/sessions/(?P<session_id>{UUID})/context/?$", SessionContextView.as_view(), name="chat-session-context"
    ),
    re_path(
        rf"^chat/sessions/(?P<session_id>{UUID})/websocket/?$",
        SessionWebSocketView.as_view(),
        name="chat-session-websocket",
    ),
]
