"""`GET /search/chats`: the caller's messages that best match a query, from every surface's chats (docs/search.md)."""

from __future__ import annotations

import datetime

from django.urls import re_path
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats.models import Role, Surface
from chats.search.selectors import message_search
from chats.search.types import SearchFilters
from core.api.serializers import StrictSerializer, validated

INCLUDES = ("visitors", "api")


class SearchQuerySerializer(StrictSerializer):
    q = serializers.CharField(max_length=500, trim_whitespace=True)
    bot = serializers.UUIDField(required=False)
    surface = serializers.ChoiceField(choices=Surface.choices, required=False)
    role = serializers.ChoiceField(choices=[Role.USER, Role.ASSISTANT], required=False)
    since = serializers.CharField(required=False, max_length=40)
    until = serializers.CharField(required=False, max_length=40)
    include = serializers.CharField(required=False, max_length=40, allow_blank=True)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=50, default=20)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=200, default=0)

    def _moment(self, value: str, *, end: bool) -> datetime.datetime:
        """An ISO 8601 date (the whole day, in UTC) or date and time (UTC unless it says otherwise)."""
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise serializers.ValidationError(
                _("Give a date (2026-12-03) or a date and time (2026-12-03T10:00:00Z).")
            ) from None
        if len(value) == 10 and end:
            moment += datetime.timedelta(days=1)
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=datetime.UTC)

    def validate_since(self, value: str) -> datetime.datetime:
        return self._moment(value, end=False)

    def validate_until(self, value: str) -> datetime.datetime:
        return self._moment(value, end=True)

    def validate_include(self, value: str) -> tuple[str, ...]:
        names = tuple(name for name in (part.strip() for part in value.split(",")) if name)
        unknown = sorted(set(names) - set(INCLUDES))
        if unknown:
            raise serializers.ValidationError(
                _("Unknown: %(names)s. Choose from: %(choices)s.")
                % {"names": ", ".join(unknown), "choices": ", ".join(INCLUDES)}
            )
        return names


class SearchHitSerializer(serializers.Serializer):
    message_id = serializers.UUIDField()
    chat_id = serializers.UUIDField()
    chat_title = serializers.CharField()
    bot_id = serializers.UUIDField(allow_null=True)
    surface = serializers.ChoiceField(choices=Surface.choices)
    role = serializers.ChoiceField(choices=[Role.USER, Role.ASSISTANT])
    visitor = serializers.BooleanField(help_text="A widget visitor's chat with one of your bots.")
    snippet = serializers.CharField(
        help_text="The text around the first match, HTML-escaped, with the matching words in <mark>…</mark>."
    )
    created_at = serializers.DateTimeField()
    score = serializers.FloatField(help_text="Higher is better; comparable only within one search.")


class SearchResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    results = SearchHitSerializer(many=True)


def _parameter(name: str, kind, description: str, **extra) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.QUERY, description=description, **extra)


class ChatSearchView(APIView):
    @extend_schema(
        operation_id="search_chats",
        parameters=[
            _parameter("q", OpenApiTypes.STR, "The words to find (at most 500 characters).", required=True),
            _parameter("bot", OpenApiTypes.UUID, "Only chats with this bot."),
            _parameter("surface", OpenApiTypes.STR, "Only chats made through this API.", enum=Surface.values),
            _parameter(
                "role",
                OpenApiTypes.STR,
                "Only questions (user) or answers (assistant).",
                enum=[Role.USER, Role.ASSISTANT],
            ),
            _parameter("since", OpenApiTypes.STR, "Messages from this date or moment on (ISO 8601)."),
            _parameter("until", OpenApiTypes.STR, "Messages up to this date (inclusive) or before this moment."),
            _parameter(
                "include",
                OpenApiTypes.STR,
                "Also search, comma-separated: `visitors` (widget visitors' chats with your bots), "
                "`api` (the records of /v1 and /mcp calls).",
            ),
            _parameter("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "Hits per page (20)."),
            _parameter("offset", {"type": "integer", "minimum": 0, "maximum": 200}, "Skip this many hits."),
        ],
        responses={200: SearchResultSerializer},
        description="Your messages that best match `q`, best first, from the chats of every API.",
    )
    def get(self, request: Request) -> Response:
        params = validated(SearchQuerySerializer, request.query_params.dict())
        include = params.get("include", ())
        surface = params.get("surface")
        filters = SearchFilters(
            bot_id=params.get("bot"),
            surface=surface,
            role=params.get("role"),
            since=params.get("since"),
            until=params.get("until"),
            include_visitors="visitors" in include or surface == Surface.WIDGET,
            include_api="api" in include,
        )
        hits = message_search(
            user=request.user, query=params["q"], filters=filters, limit=params["limit"], offset=params["offset"]
        )
        return Response(SearchResultSerializer({"query": params["q"], "results": hits}).data)


urlpatterns = [re_path(r"^search/chats/?$", ChatSearchView.as_view(), name="search-chats")]
