"""Share links (the owner's REST, the public page and JSON, continue as a copy) and forks (docs/sharing.md)."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import re_path, reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats.models import Chat, Role, ShareLink
from chats.selectors import chat_get
from chats.sharing.forks import chat_fork
from chats.sharing.selectors import ShareNotFound, share_link_get, share_link_list, shared_snapshot_get
from chats.sharing.services import SHARE_MAX_LIFETIME, share_continue, share_link_create, share_link_revoke
from core.api.pagination import page_parameters, paginate
from core.api.serializers import StrictSerializer, validated
from core.paths import UUID

# Any token-like string reaches the view, so an unknown token gets the share's own 404, not the API's.
LINK_KEY = r"[A-Za-z0-9_-]{1,64}"
CHAT_ID = OpenApiParameter("chat_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
SHARE_ID = OpenApiParameter("share_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
TOKEN_PARAM = OpenApiParameter("token", OpenApiTypes.STR, OpenApiParameter.PATH)
PAGE_PARAMETERS = page_parameters("At most this many links (capped by the server).", "Skip this many links.")
# A public snapshot is nobody's to index, to cache after revocation, or to leak in a Referer.
PUBLIC_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}
# The page has no script, no image, no form and no frame: only its own inline style.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class ShareLinkSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="The public page (an absolute path).")
    json_url = serializers.SerializerMethodField(help_text="The snapshot as JSON (an absolute path).")
    chat_id = serializers.UUIDField(read_only=True)
    message_id = serializers.UUIDField(
        read_only=True, allow_null=True, help_text="The last message shared; null once it was deleted."
    )
    message_count = serializers.IntegerField(read_only=True)
    active = serializers.SerializerMethodField(help_text="Neither revoked nor expired: the link works.")

    class Meta:
        model = ShareLink
        fields = [
            "id",
            "token",
            "url",
            "json_url",
            "chat_id",
            "message_id",
            "title",
            "include_citations",
            "expires_at",
            "revoked_at",
            "active",
            "created_at",
            "message_count",
        ]
        read_only_fields = fields

    def get_url(self, share: ShareLink) -> str:
        return reverse("share-page", kwargs={"token": share.token})

    def get_json_url(self, share: ShareLink) -> str:
        return reverse("share-public", kwargs={"token": share.token})

    def get_active(self, share: ShareLink) -> bool:
        return share.revoked_at is None and (share.expires_at is None or share.expires_at > timezone.now())


class ShareCreateSerializer(StrictSerializer):
    message_id = serializers.UUIDField(required=False, help_text="Share up to this message (default: the current one).")
    expires_in_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=60,
        max_value=int(SHARE_MAX_LIFETIME.total_seconds()),
        help_text="The link stops working this many seconds from now (at most a year); absent or null: never.",
    )
    include_citations = serializers.BooleanField(required=False, default=False)
    title = serializers.CharField(
        required=False, max_length=200, allow_blank=True, help_text="Shown on the page (default: the chat's title)."
    )


class SharedMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField([Role.USER, Role.ASSISTANT])
    content = serializers.CharField()
    created_at = serializers.DateTimeField()
    citations = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="Only when the owner included citations."
    )


class SharedSnapshotSerializer(serializers.Serializer):
    title = serializers.CharField()
    messages = SharedMessageSerializer(many=True, source="snapshot")
    message_count = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)

    def get_message_count(self, share: ShareLink) -> int:
        return len(share.snapshot)


class ChatCopySerializer(serializers.ModelSerializer):
    """A chat made by a fork or a continued share; read and go on with it through any surface (`GET /chats/{id}`)."""

    bot_id = serializers.UUIDField(read_only=True, allow_null=True)
    current_node = serializers.UUIDField(source="current_node_id", read_only=True, allow_null=True)
    message_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Chat
        fields = ["id", "title", "bot_id", "surface", "current_node", "message_count", "created_at"]
        read_only_fields = fields


class ForkSerializer(StrictSerializer):
    message_id = serializers.UUIDField(help_text="Fork from this message of the chat.")
    mode = serializers.ChoiceField(
        ["path", "branch"],
        required=False,
        default="path",
        help_text="`path`: the messages from the root to this one; `branch`: and every message below it.",
    )


class ShareCreateView(APIView):
    # 403: too many live links; 409: the message is an answer still being written.
    error_statuses = {"POST": {403, 409}}

    @extend_schema(
        operation_id="chat_share_create",
        parameters=[CHAT_ID],
        request=ShareCreateSerializer,
        responses={201: ShareLinkSerializer},
        description=(
            "A read-only snapshot of your chat from its first message to `message_id` (default: the current "
            "message), copied now: the chat going on never changes it. Only questions and answers are shared; "
            "citations only with `include_citations`. At most 1,000 messages and 2,000,000 characters (400 "
            "`share_too_large`); at most 1,000 live links per user (403)."
        ),
    )
    def post(self, request: Request, chat_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=chat_id)
        data = validated(ShareCreateSerializer, request.data)
        seconds = data.get("expires_in_seconds")
        share = share_link_create(
            user=request.user,
            chat=chat,
            message_id=data.get("message_id"),
            expires_at=timezone.now() + timedelta(seconds=seconds) if seconds else None,
            include_citations=data["include_citations"],
            title=data.get("title"),
        )
        return Response(ShareLinkSerializer(share).data, status=status.HTTP_201_CREATED)


class ShareListView(APIView):
    @extend_schema(
        operation_id="share_list",
        parameters=PAGE_PARAMETERS,
        responses={200: ShareLinkSerializer(many=True)},
        description="Your share links, live, expired and revoked, newest first; `X-Total-Count` gives the total.",
    )
    def get(self, request: Request) -> Response:
        rows, headers = paginate(share_link_list(user=request.user), request.query_params)
        return Response(ShareLinkSerializer(rows, many=True).data, headers=headers)


class ShareDetailView(APIView):
    @extend_schema(operation_id="share_get", parameters=[SHARE_ID], responses={200: ShareLinkSerializer})
    def get(self, request: Request, share_id: str) -> Response:
        return Response(ShareLinkSerializer(share_link_get(user=request.user, share_id=share_id)).data)

    @extend_schema(
        operation_id="share_revoke",
        parameters=[SHARE_ID],
        responses={204: None},
        description="Revokes the link: its page and JSON are a 404 from now on. Revoking again changes nothing.",
    )
    def delete(self, request: Request, share_id: str) -> Response:
        share_link_revoke(share=share_link_get(user=request.user, share_id=share_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PublicShareView(APIView):
    """Reached by the token alone: no credentials are read, no cookie is set."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class SharedSnapshotView(PublicShareView):
    @extend_schema(
        operation_id="shared_snapshot",
        parameters=[TOKEN_PARAM],
        responses={200: SharedSnapshotSerializer},
        auth=[],
        description="The snapshot as JSON. A revoked, expired or unknown token is the same 404.",
    )
    def get(self, request: Request, token: str) -> Response:
        share = shared_snapshot_get(token=token)
        return Response(SharedSnapshotSerializer(share).data, headers=PUBLIC_HEADERS)


class SharePageView(PublicShareView):
    @extend_schema(
        operation_id="shared_page",
        parameters=[TOKEN_PARAM],
        responses={
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="The page."),
            (404, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="Revoked, expired or unknown."),
            (404, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="A token of a wrong shape."),
        },
        auth=[],
        description="The snapshot as a page: text only (Markdown and HTML are shown as written), no scripts.",
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        try:
            share = shared_snapshot_get(token=token)
        except ShareNotFound:
            response = render(request._request, "shares/not_found.html", status=404)
        else:
            response = render(request._request, "shares/page.html", {"share": share})
        for name, value in {**PUBLIC_HEADERS, "Content-Security-Policy": PAGE_CSP}.items():
            response[name] = value
        return response


class ShareContinueView(APIView):
    @extend_schema(
        operation_id="shared_continue",
        parameters=[TOKEN_PARAM],
        request=None,
        responses={201: ChatCopySerializer},
        description=(
            "A copy of the snapshot as a new chat in your account (one branch, its last message current), "
            "to go on with through any chat API. The shared chat's bot comes along only if it is yours."
        ),
    )
    def post(self, request: Request, token: str) -> Response:
        chat = share_continue(user=request.user, token=token)
        return Response(ChatCopySerializer(chat).data, status=status.HTTP_201_CREATED)


class ChatForkView(APIView):
    # the message named in the body
    error_statuses = {"POST": {404}}

    @extend_schema(
        operation_id="chat_fork",
        parameters=[CHAT_ID],
        request=ForkSerializer,
        responses={201: ChatCopySerializer},
        description=(
            "A new chat of yours from one message of this chat: `path` copies the messages from the root to it "
            "(it becomes current); `branch` copies them and every message below it, as the same tree (the "
            "newest leaf becomes current). At most 5,000 messages (400 `fork_too_large`)."
        ),
    )
    def post(self, request: Request, chat_id: str) -> Response:
        chat = chat_get(user=request.user, chat_id=chat_id)
        data = validated(ForkSerializer, request.data)
        fork = chat_fork(user=request.user, chat=chat, message_id=data["message_id"], mode=data["mode"])
        return Response(ChatCopySerializer(fork).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    re_path(rf"^chats/(?P<chat_id>{UUID})/shares/?$", ShareCreateView.as_view(), name="chat-shares"),
    re_path(rf"^chats/(?P<chat_id>{UUID})/fork/?$", ChatForkView.as_view(), name="chat-fork"),
    re_path(r"^shares/?$", ShareListView.as_view(), name="shares-list"),
    re_path(rf"^shares/public/(?P<token>{LINK_KEY})/?$", SharedSnapshotView.as_view(), name="share-public"),
    re_path(rf"^shares/(?P<share_id>{UUID})/?$", ShareDetailView.as_view(), name="shares-detail"),
    re_path(rf"^s/(?P<token>{LINK_KEY})/?$", SharePageView.as_view(), name="share-page"),
    re_path(rf"^s/(?P<token>{LINK_KEY})/continue/?$", ShareContinueView.as_view(), name="share-continue"),
]
