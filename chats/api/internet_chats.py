"""The 004 surface: chats, their "conversations" (messages) and SSE inference, with or without web search."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import authenticate_bearer_or_query
from accounts.quotas import QuotaExceeded, TooManyStreams
from bots.selectors import bot_get
from chats.api.streams import (
    answering_headers,
    first_batch,
    resume_point,
    resume_response,
    sse_batches,
    sse_response,
)
from chats.events import StreamEvent
from chats.models import Chat, Message, Role, Run, Surface
from chats.runs.log import RunEvent
from chats.runs.runner import run_begin
from chats.runs.selectors import RunNotFound, run_get
from chats.selectors import answer_target_get, branch_messages, chat_get, chat_list
from chats.services import (
    answer_start,
    chat_create,
    chat_delete,
    chat_rename,
    client_message_create,
)
from chats.streaming import released
from chats.types import ReplyRequest
from core.api.async_views import async_api_view
from core.api.pagination import page_parameters, paginate
from core.api.serializers import StrictSerializer
from core.errors import Conflict, DomainError
from core.paths import UUID

ROLE_NAMES = {Role.USER: "Human", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
ROLES_BY_NAME = {"human": Role.USER, "assistant": Role.ASSISTANT}
PAGE_PARAMETERS = page_parameters("At most this many chats (capped by the server).", "Skip this many chats.")
CHAT_ID = OpenApiParameter("chat_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class ChatSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="title", read_only=True)

    class Meta:
        model = Chat
        fields = ["id", "name", "created_at", "updated_at"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "enum": ["Human", "Assistant"]})
class RoleNameField(serializers.Field):
    def to_representation(self, value: str) -> str:
        return ROLE_NAMES.get(value, value)


class ConversationSerializer(serializers.ModelSerializer):
    role = RoleNameField(read_only=True)
    chat_id = serializers.UUIDField(read_only=True)
    message = serializers.CharField(source="content", read_only=True)
    updated_at = serializers.DateTimeField(
        source="created_at", read_only=True, help_text="Messages never change: always equal to created_at."
    )

    class Meta:
        model = Message
        fields = ["id", "role", "chat_id", "message", "created_at", "updated_at"]
        read_only_fields = fields


class ChatCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    bot_id = serializers.UUIDField(required=False, help_text="Answer in this chat with one of your bots.")


class ChatUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    updated_at = serializers.DateTimeField(
        required=False, help_text="Accepted as documented, but ignored: the server sets updated_at."
    )


class ConversationCreateSerializer(StrictSerializer):
    chat_id = serializers.UUIDField()
    role = serializers.CharField(max_length=20, help_text="`Human` or `Assistant` (any letter case).")
    message = serializers.CharField(max_length=settings.CHAT_MAX_QUERY_CHARS)

    def validate_role(self, value: str) -> Role:
        role = ROLES_BY_NAME.get(value.strip().lower())
        if role is None:
            raise serializers.ValidationError(_("Role must be Human or Assistant."))
        return role


class ChatListView(APIView):
    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: ChatSerializer(many=True)},
        description="All your chats, whichever API made them, most recently active first. "
        "The `X-Total-Count` header gives the total.",
    )
    def get(self, request: Request) -> Response:
        rows, headers = paginate(chat_list(user=request.user), request.query_params)
        return Response(ChatSerializer(rows, many=True).data, headers=headers)


class ChatDetailView(APIView):
    @extend_schema(parameters=[CHAT_ID], responses={200: ChatSerializer})
    def get(self, request: Request, chat_id: str) -> Response:
        return Response(ChatSerializer(chat_get(user=request.user, chat_id=chat_id)).data)


class ChatCreateView(APIView):
    # the bot named in the body (another user's, or none)
    error_statuses = {404}

    @extend_schema(request=ChatCreateSerializer, responses={201: ChatSerializer})
    def post(self, request: Request) -> Response:
        serializer = ChatCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        bot = bot_get(user=request.user, bot_id=data["bot_id"]) if "bot_id" in data else None
        chat = chat_create(owner=request.user, surface=Surface.CHATS, bot=bot, title=data["name"])
        return Response(ChatSerializer(chat).data, status=status.HTTP_201_CREATED)


class ChatDeleteView(APIView):
    @extend_schema(
        parameters=[CHAT_ID],
        responses={200: inline_serializer("ChatDeleted", {"detail": serializers.CharField()})},
        description="Deletes the chat and all of its messages.",
    )
    def delete(self, request: Request, chat_id: str) -> Response:
        chat_delete(user=request.user, chat_id=chat_id)
        return Response({"detail": _("Chat deleted.")})


class ChatUpdateView(APIView):
    @extend_schema(
        parameters=[CHAT_ID],
        request=ChatUpdateSerializer,
        responses={200: ChatSerializer},
        description="Renames the chat. `updated_at` is accepted as the seed documents it, but the server "
        "sets it to the time of the update; a client cannot backdate or postdate a chat.",
    )
    def put(self, request: Request, chat_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=chat_id)
        serializer = ChatUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chat = chat_rename(chat=chat, title=serializer.validated_data["name"])
        return Response(ChatSerializer(chat).data)


class ChatConversationListView(APIView):
    @extend_schema(
        parameters=[CHAT_ID],
        responses={200: ConversationSerializer(many=True)},
        description="The chat's messages on its current branch, oldest first, including stored answers "
        "(an answer cut short keeps what was written).",
    )
    def get(self, request: Request, chat_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=chat_id)
        return Response(ConversationSerializer(branch_messages(chat=chat), many=True).data)


class ConversationCreateView(APIView):
    # the chat named in the body; a chat that is answering
    error_statuses = {404, 409}

    @extend_schema(
        request=ConversationCreateSerializer,
        responses={201: ConversationSerializer},
        description="Adds a message after the chat's latest one. `Human` is a question for "
        "`inference`; `Assistant` stores an answer written by the client, marked as the client's "
        "(never presented as model output) and sent to the model as earlier conversation. Any other "
        "role is a 400. While the chat is answering, 409.",
    )
    def post(self, request: Request) -> Response:
        serializer = ConversationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        chat = chat_get(user=request.user, chat_id=data["chat_id"])
        message = client_message_create(chat=chat, role=data["role"], content=data["message"])
        return Response(ConversationSerializer(message).data, status=status.HTTP_201_CREATED)


def _prepare_answer(
    *, request: HttpRequest, target_id: str, web_search: bool
) -> tuple[ReplyRequest | None, tuple[StreamEvent | None, dict[str, str]]]:
    """Auth, lookup and the service in one thread hop. Refusals to start (auth, lookup, chat busy,
    too many streams, quota used up) raise, as JSON errors; a model that cannot be used becomes an
    error event."""
    user = authenticate_bearer_or_query(request)
    chat, question = answer_target_get(user=user, target_id=target_id)
    headers = {"X-Chat-Id": str(chat.pk), "X-Message-Id": str(question.pk)}
    try:
        reply = answer_start(user=user, chat=chat, user_message=question, web_search=web_search)
    except (Conflict, TooManyStreams, QuotaExceeded):
        raise
    except DomainError as exc:
        return None, (StreamEvent.error(exc.message, code=exc.code, status_code=exc.status_code), headers)
    headers["X-Bytchat-Model"] = f"{reply.spec.provider}/{reply.spec.model}"
    return reply, (None, headers)


def _resumed_run(*, request: HttpRequest, target_id: str, run_id: uuid.UUID) -> Run:
    """The caller's run answering this chat (or this question): what an EventSource reconnecting to
    the same URL resumes. Any other run is a 404."""
    user = authenticate_bearer_or_query(request)
    run = run_get(user=user, run_id=run_id)
    if str(run.chat_id) != str(target_id) and str(run.question_id) != str(target_id):
        raise RunNotFound()
    return run


async def _only(event: StreamEvent) -> AsyncIterator[list[RunEvent]]:
    yield [RunEvent(1, event)]


async def _answer(request: HttpRequest, target_id: str, *, web_search: bool) -> HttpResponse:
    """A new answer; or, when the request carries Last-Event-ID (a browser's EventSource reconnecting),
    the same run resumed after that event, never a second answer (docs/runs.md)."""
    resume = resume_point(request)
    if resume is not None:
        run = await released(_resumed_run)(request=request, target_id=target_id, run_id=resume.run_id)
        return await resume_response(run, after=resume.after, headers={"X-Chat-Id": str(run.chat_id)})
    # Once the answer may start, every failure is an `error` event: EventSource cannot read a JSON body.
    live, (refusal, headers) = await run_begin(
        _prepare_answer, request=request, target_id=target_id, web_search=web_search
    )
    if live is None:
        return sse_response(None, _only(refusal), headers=headers)
    batches = sse_batches(live.run)
    first = await first_batch(batches)
    return sse_response(live.id, batches, first=first, headers=answering_headers(first[0].event, headers))


@async_api_view("GET")
async def inference(request: HttpRequest, target_id: str) -> HttpResponse:
    return await _answer(request, target_id, web_search=False)


@async_api_view("GET")
async def inference_internet(request: HttpRequest, target_id: str) -> HttpResponse:
    return await _answer(request, target_id, web_search=True)


urlpatterns = [
    re_path(r"^chats/?$", ChatListView.as_view(), name="chats-list"),
    re_path(r"^chats/create/?$", ChatCreateView.as_view(), name="chats-create"),
    re_path(rf"^chats/(?P<chat_id>{UUID})/?$", ChatDetailView.as_view(), name="chats-detail"),
    re_path(
        rf"^chats/(?P<chat_id>{UUID})/conversations/?$",
        ChatConversationListView.as_view(),
        name="chats-conversations",
    ),
    re_path(rf"^chats/delete/(?P<chat_id>{UUID})/?$", ChatDeleteView.as_view(), name="chats-delete"),
    re_path(rf"^chats/update/(?P<chat_id>{UUID})/?$", ChatUpdateView.as_view(), name="chats-update"),
    re_path(r"^conversations/create/?$", ConversationCreateView.as_view(), name="conversations-create"),
    re_path(rf"^conversations/inference/(?P<target_id>{UUID})/?$", inference, name="conversations-inference"),
    re_path(
        rf"^conversations/inference_internet/(?P<target_id>{UUID})/?$",
        inference_internet,
        name="conversations-inference-internet",
    ),
]
