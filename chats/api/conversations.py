"""The 002 surface: conversations with a message tree.

A conversation is a chat (every surface's chats are listed); `new` and `ask` wait for the whole
answer and return it (201). `parent_id` answers from that message's branch, so a second question
under the same parent becomes a sibling branch.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import authenticate_bearer
from accounts.quotas import rate_limit_take
from bots.selectors import bot_get
from chats.models import Chat, Message, MessageStatus, Role, Surface
from chats.runs.reader import run_to_end
from chats.runs.runner import LiveRun, run_begin
from chats.selectors import chat_get, chat_list, chat_messages, message_get
from chats.services import chat_delete, chats_delete_all, turn_start
from chats.streaming import released
from chats.types import ReplyRequest
from core.api.async_views import async_api_view, json_body
from core.api.pagination import page_parameters, paginate
from core.api.serializers import StrictSerializer, validated
from core.paths import UUID


class AutocontinueField(serializers.BooleanField):
    """The seed sends `"true"` or `"false"` as strings; JSON booleans are accepted too."""

    TRUE_VALUES = {True, "true", "True"}
    FALSE_VALUES = {False, "false", "False"}


class AskSerializer(StrictSerializer):
    prompt = serializers.CharField(max_length=settings.CHAT_MAX_QUERY_CHARS)
    parent_id = serializers.UUIDField(required=False, help_text="The message to continue on (default: the latest).")
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    autocontinue = AutocontinueField(required=False, default=False)


class NewConversationSerializer(StrictSerializer):
    prompt = serializers.CharField(max_length=settings.CHAT_MAX_QUERY_CHARS)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    autocontinue = AutocontinueField(required=False, default=False)
    bot_id = serializers.UUIDField(required=False, help_text="Answer as this bot of yours (an extension).")


def message_payload(message: Message) -> dict[str, Any]:
    """A message as 002 documents it, plus its own `id`, `create_time` and `status` so clients can branch."""
    metadata: dict[str, Any] = {}
    if message.authored_by_client:
        metadata["authored_by_client"] = True
    if message.error:
        metadata["error"] = message.error
    return {
        "id": str(message.id),
        "author": {"role": message.role, "name": None, "metadata": metadata},
        "message": message.content,
        "conversation_id": str(message.chat_id),
        "parent_id": str(message.parent_id) if message.parent_id else None,
        "model": message.model or None,
        "finish_details": message.finish_reason or None,
        "end_turn": message.role == Role.ASSISTANT and message.finish_reason == "stop",
        "recipient": "all",
        "citations": message.citations,
        "status": message.status,
        "create_time": message.created_at.isoformat(),
    }


def conversation_payload(chat: Chat, mapping: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": str(chat.id),
        "title": chat.title,
        "create_time": chat.created_at.isoformat(),
        "update_time": chat.updated_at.isoformat(),
        "mapping": mapping,
        "current_node": str(chat.current_node_id) if chat.current_node_id else None,
    }


def tree_mapping(messages: list[Message]) -> dict[str, Any]:
    """ChatGPT's `mapping`: every node with its parent, children and message."""
    children: dict[str, list[str]] = {str(message.id): [] for message in messages}
    for message in messages:
        if message.parent_id and str(message.parent_id) in children:
            children[str(message.parent_id)].append(str(message.id))
    return {
        str(message.id): {
            "id": str(message.id),
            "parent": str(message.parent_id) if message.parent_id else None,
            "children": children[str(message.id)],
            "message": message_payload(message),
        }
        for message in messages
    }


MESSAGE_FIELDS = {
    "id": serializers.UUIDField(),
    "author": serializers.DictField(),
    "message": serializers.CharField(),
    "conversation_id": serializers.UUIDField(),
    "parent_id": serializers.UUIDField(allow_null=True),
    "model": serializers.CharField(allow_null=True),
    "finish_details": serializers.CharField(allow_null=True),
    "end_turn": serializers.BooleanField(),
    "recipient": serializers.CharField(),
    "citations": serializers.ListField(child=serializers.DictField()),
    "status": serializers.ChoiceField(choices=MessageStatus.choices),
    "create_time": serializers.DateTimeField(),
}
CONVERSATION_FIELDS = {
    "id": serializers.UUIDField(),
    "title": serializers.CharField(),
    "create_time": serializers.DateTimeField(),
    "update_time": serializers.DateTimeField(),
    "mapping": serializers.DictField(allow_null=True),
    "current_node": serializers.UUIDField(allow_null=True),
}
PAGE_PARAMETERS = page_parameters(f"At most {settings.LIST_MAX_ROWS} (the default).", "Skip this many.")


class ConversationListView(APIView):
    @extend_schema(
        responses={200: inline_serializer("ConversationSummary", CONVERSATION_FIELDS, many=True)},
        parameters=PAGE_PARAMETERS,
        description="The caller's conversations, newest activity first, whichever API created them; "
        "`mapping` is null here (see `GET /conversations/{id}`). `X-Total-Count` gives the total.",
    )
    def get(self, request: Request) -> Response:
        chats, headers = paginate(chat_list(user=request.user), request.query_params)
        return Response([conversation_payload(chat) for chat in chats], headers=headers)


class ConversationView(APIView):
    @extend_schema(
        responses={200: inline_serializer("ConversationTree", CONVERSATION_FIELDS)},
        description="One conversation with its whole message tree in `mapping` (an extension of the seed).",
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=conversation_id)
        return Response(conversation_payload(chat, tree_mapping(chat_messages(chat=chat))))

    @extend_schema(responses={204: None}, description="Delete the conversation and all its messages.")
    def delete(self, request: Request, conversation_id: str) -> Response:
        chat_delete(user=request.user, chat_id=conversation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConversationDeleteAllView(APIView):
    @extend_schema(responses={204: None}, description="Delete every conversation (chat) of the caller.")
    def delete(self, request: Request) -> Response:
        chats_delete_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConversationMessagesView(APIView):
    @extend_schema(
        responses={200: inline_serializer("TreeMessage", MESSAGE_FIELDS, many=True)},
        description="Every message of the conversation, all branches, oldest first.",
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=conversation_id)
        return Response([message_payload(message) for message in chat_messages(chat=chat)])


def _start_new(request: HttpRequest) -> tuple[ReplyRequest, None]:
    user = authenticate_bearer(request)
    data = validated(NewConversationSerializer, json_body(request))
    bot = bot_get(user=user, bot_id=data["bot_id"]) if data.get("bot_id") else None
    rate_limit_take(key=user.pk, scope="conversations", rate=settings.CONVERSATIONS_RATE)
    reply, _task_type = turn_start(
        user=user,
        prompt=data["prompt"],
        bot=bot,
        surface=Surface.CONVERSATIONS,
        title=data.get("title", "").strip(),
        model=data.get("model") or None,
        autocontinue=data["autocontinue"],
    )
    return reply, None


def _start_ask(request: HttpRequest, conversation_id: str) -> tuple[ReplyRequest, None]:
    user = authenticate_bearer(request)
    data = validated(AskSerializer, json_body(request))
    chat = chat_get(user=user, chat_id=conversation_id)
    parent = message_get(chat=chat, message_id=data["parent_id"]) if data.get("parent_id") else None
    rate_limit_take(key=user.pk, scope="conversations", rate=settings.CONVERSATIONS_RATE)
    reply, _task_type = turn_start(
        user=user,
        prompt=data["prompt"],
        chat=chat,
        parent=parent,
        surface=Surface.CONVERSATIONS,
        model=data.get("model") or None,
        autocontinue=data["autocontinue"],
    )
    return reply, None


async def _whole_answer(live: LiveRun) -> JsonResponse:
    """Reads the run to its end; the stored answer is the response (201), a failure its JSON error."""
    done = await run_to_end(live.run)
    message = await released(Message.objects.get)(pk=done.data["message_id"])
    return JsonResponse({"response": message_payload(message)}, status=201, headers={"X-Run-Id": live.id})


@async_api_view("POST")
async def conversation_new(request: HttpRequest) -> HttpResponse:
    live, _none = await run_begin(_start_new, request=request)
    return await _whole_answer(live)


@async_api_view("POST")
async def conversation_ask(request: HttpRequest, conversation_id: str) -> HttpResponse:
    live, _none = await run_begin(_start_ask, request=request, conversation_id=conversation_id)
    return await _whole_answer(live)


urlpatterns = [
    re_path(r"^conversations/?$", ConversationListView.as_view(), name="conversation-list"),
    re_path(r"^conversations/new/?$", conversation_new, name="conversation-new"),
    re_path(r"^conversations/all/?$", ConversationDeleteAllView.as_view(), name="conversation-delete-all"),
    re_path(rf"^conversations/(?P<conversation_id>{UUID})/?$", ConversationView.as_view(), name="conversation"),
    re_path(rf"^conversations/(?P<conversation_id>{UUID})/ask/?$", conversation_ask, name="conversation-ask"),
    re_path(
        rf"^conversations/(?P<conversation_id>{UUID})/messages/?$",
        ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
]
