"""Feedback on answers (docs/feedback.md).

- `PUT /messages/{message_id}/feedback` `{"rating": "up"|"down", "tags"?, "comment"?}` -> 200 the feedback,
  made or replaced whole; `GET` -> 200 it, or 404 when there is none; `DELETE` -> 204.
- `GET /feedback/tags` -> the fixed list of tags with their labels in the request's language.

Callers: a user (access JWT or personal API key), for the messages of their own chats; or a widget
visitor (`Authorization: Visitor <token>`), for the messages of their own chats with the token's bot.
Any other message is a 404. The widget calls from other sites' pages: CORS is answered for any origin,
as on the approvals route, since the token, never a cookie, is what authorizes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.urls import re_path
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats.feedback.input import MAX_COMMENT_CHARS
from chats.feedback.selectors import feedback_get, feedback_message_get
from chats.feedback.services import feedback_delete, feedback_set
from chats.models import Feedback, FeedbackTag, Message, Rating
from chats.visitors import Visitor, visitor_from_token
from core.api.serializers import StrictSerializer, validated
from core.cors import AnyOriginCors
from core.paths import UUID


class VisitorAuthentication(BaseAuthentication):
    """`Authorization: Visitor <token>`: a widget visitor, kept in `request.auth` (no user)."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, Visitor] | None:
        scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Visitor":
            return None
        visitor = visitor_from_token(token.strip())
        if visitor is None:
            raise AuthenticationFailed(
                _("Send the visitor token of this browser: Authorization: Visitor <token>."),
                code="visitor_token_invalid",
            )
        return AnonymousUser(), visitor

    def authenticate_header(self, request: Request) -> str:
        return 'Visitor realm="widget"'


class VisitorScheme(OpenApiAuthenticationExtension):
    target_class = VisitorAuthentication
    name = "visitorAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Visitor <token>`: the visitor token `POST /widget/sessions` returned to this browser.",
        }


class UserOrVisitor(BasePermission):
    """A signed-in user or a widget visitor; anyone else gets a 401."""

    only_authenticates = True

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated) or isinstance(request.auth, Visitor)


class FeedbackRequestSerializer(StrictSerializer):
    rating = serializers.ChoiceField(choices=Rating.choices)
    tags = serializers.ListField(
        child=serializers.ChoiceField(choices=FeedbackTag.choices),
        required=False,
        max_length=len(FeedbackTag.values),
        help_text="Distinct tags from GET /feedback/tags.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_COMMENT_CHARS)


class FeedbackSerializer(serializers.ModelSerializer):
    message_id = serializers.UUIDField(read_only=True)
    tags = serializers.ListField(child=serializers.ChoiceField(choices=FeedbackTag.choices), read_only=True)

    class Meta:
        model = Feedback
        fields = ["message_id", "rating", "tags", "comment", "created_at", "updated_at"]
        read_only_fields = fields


class FeedbackView(AnyOriginCors, APIView):
    authentication_classes = [
        *APIView.authentication_classes,
        VisitorAuthentication,
    ]
    permission_classes = [UserOrVisitor]
    parser_classes = [JSONParser]
    cors_methods = "GET, OPTIONS"


class MessageFeedbackView(FeedbackView):
    cors_methods = "GET, PUT, DELETE, OPTIONS"

    def _message(self, request: Request, message_id: str) -> Message:
        if isinstance(request.auth, Visitor):
            return feedback_message_get(message_id=message_id, visitor=request.auth)
        return feedback_message_get(message_id=message_id, user=request.user)

    @extend_schema(
        responses={200: FeedbackSerializer},
        description="The message's feedback; 404 `feedback_not_found` when it has none.",
    )
    def get(self, request: Request, message_id: str) -> Response:
        return Response(FeedbackSerializer(feedback_get(message=self._message(request, message_id))).data)

    @extend_schema(
        request=FeedbackRequestSerializer,
        responses={200: FeedbackSerializer},
        description=(
            "Rates an assistant message (a user message: 400 `not_an_answer`). Rating again replaces the "
            "feedback whole: tags and comment not sent are cleared."
        ),
    )
    def put(self, request: Request, message_id: str) -> Response:
        message = self._message(request, message_id)
        data = validated(FeedbackRequestSerializer, request.data)
        feedback = feedback_set(message=message, **data)
        return Response(FeedbackSerializer(feedback).data)

    @extend_schema(responses={204: None}, description="Clears the message's feedback (204 also when it had none).")
    def delete(self, request: Request, message_id: str) -> Response:
        feedback_delete(message=self._message(request, message_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FeedbackTagsView(FeedbackView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "FeedbackTagLabel",
                {"tag": serializers.CharField(help_text="A value of `tags`."), "label": serializers.CharField()},
                many=True,
            )
        },
        description="The tags a rating may carry, with their labels in the request's language.",
    )
    def get(self, request: Request) -> Response:
        return Response([{"tag": tag.value, "label": str(tag.label)} for tag in FeedbackTag])


urlpatterns = [
    re_path(rf"^messages/(?P<message_id>{UUID})/feedback/?$", MessageFeedbackView.as_view(), name="message-feedback"),
    re_path(r"^feedback/tags/?$", FeedbackTagsView.as_view(), name="feedback-tags"),
]
