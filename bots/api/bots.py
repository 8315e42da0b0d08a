"""The 001 bots surface: CRUD on the caller's bots and their model configs."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.llm import provider_is_configured
from bots.models import Bot, ModelConfig, ProviderName, TaskType
from bots.selectors import bot_get, bot_list
from bots.services import (
    bot_create,
    bot_delete,
    bot_public_set,
    bot_update,
    model_config_add,
    model_config_delete,
)
from core.api.serializers import StrictSerializer, validated

_MODEL_ID = re.compile(r"^[\w.:/@+-]+$")


class ModelConfigInputSerializer(StrictSerializer):
    task_type = serializers.ChoiceField(choices=TaskType.choices, default=TaskType.GENERAL)
    provider = serializers.ChoiceField(choices=ProviderName.choices)
    model_id = serializers.CharField(max_length=200)

    def validate_model_id(self, value: str) -> str:
        value = value.strip()
        if not _MODEL_ID.match(value):
            raise serializers.ValidationError(_("Model ids may use letters, digits and . : / @ + - _ only."))
        # Slashes name a vendor (openai/gpt-4o-mini on OpenRouter); empty, "." or ".." segments name nothing.
        if any(segment in ("", ".", "..") for segment in value.split("/")):
            raise serializers.ValidationError(_("Model ids may not have empty, '.' or '..' path segments."))
        return value


class ModelConfigSerializer(serializers.ModelSerializer):
    available = serializers.SerializerMethodField(
        help_text="Whether this server has the provider configured (key or base URL)."
    )

    class Meta:
        model = ModelConfig
        fields = ["id", "task_type", "provider", "model_id", "available", "created_at"]
        read_only_fields = fields

    def get_available(self, config: ModelConfig) -> bool:
        return provider_is_configured(config.provider)


class BotSerializer(serializers.ModelSerializer):
    model_configs = ModelConfigSerializer(many=True, read_only=True)

    class Meta:
        model = Bot
        fields = ["id", "name", "description", "system_prompt", "model_configs", "created_at", "updated_at"]
        read_only_fields = fields


class BotCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    system_prompt = serializers.CharField(max_length=8000, required=False, allow_blank=True, trim_whitespace=False)
    initial_configs = ModelConfigInputSerializer(many=True, required=False)


class BotUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    system_prompt = serializers.CharField(max_length=8000, required=False, allow_blank=True, trim_whitespace=False)


class BotListCreateView(APIView):
    # the bots-per-user limit
    error_statuses = {"POST": {403}}

    @extend_schema(responses={200: BotSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(BotSerializer(bot_list(user=request.user), many=True).data)

    @extend_schema(request=BotCreateSerializer, responses={201: BotSerializer})
    def post(self, request: Request) -> Response:
        serializer = BotCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bot = bot_create(owner=request.user, **serializer.validated_data)
        return Response(BotSerializer(bot_get(user=request.user, bot_id=bot.pk)).data, status=status.HTTP_201_CREATED)


class BotDetailView(APIView):
    @extend_schema(responses={200: BotSerializer})
    def get(self, request: Request, bot_id) -> Response:
        return Response(BotSerializer(bot_get(user=request.user, bot_id=bot_id)).data)

    def _update(self, request: Request, bot_id) -> Response:
        bot = bot_get(user=request.user, bot_id=bot_id)
        serializer = BotUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bot_update(bot=bot, data=serializer.validated_data)
        return Response(BotSerializer(bot_get(user=request.user, bot_id=bot_id)).data)

    @extend_schema(
        request=BotUpdateSerializer,
        responses={200: BotSerializer},
        description="Updates the fields sent; as in the seed, PUT accepts a partial body.",
    )
    def put(self, request: Request, bot_id) -> Response:
        return self._update(request, bot_id)

    @extend_schema(request=BotUpdateSerializer, responses={200: BotSerializer})
    def patch(self, request: Request, bot_id) -> Response:
        return self._update(request, bot_id)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, bot_id) -> Response:
        bot_delete(bot=bot_get(user=request.user, bot_id=bot_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BotModelListCreateView(APIView):
    # a task type that already has a model
    error_statuses = {"POST": {409}}

    @extend_schema(responses={200: ModelConfigSerializer(many=True)})
    def get(self, request: Request, bot_id) -> Response:
        bot = bot_get(user=request.user, bot_id=bot_id)
        return Response(ModelConfigSerializer(bot.model_configs.all(), many=True).data)

    @extend_schema(request=ModelConfigInputSerializer, responses={201: ModelConfigSerializer})
    def post(self, request: Request, bot_id) -> Response:
        bot = bot_get(user=request.user, bot_id=bot_id)
        serializer = ModelConfigInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        config = model_config_add(bot=bot, **serializer.validated_data)
        return Response(ModelConfigSerializer(config).data, status=status.HTTP_201_CREATED)


class BotModelDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, bot_id, config_id: int) -> Response:
        model_config_delete(bot=bot_get(user=request.user, bot_id=bot_id), config_id=config_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BotWidgetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bot
        fields = ["public", "public_key", "allowed_origins"]
        read_only_fields = fields


class BotWidgetUpdateSerializer(StrictSerializer):
    public = serializers.BooleanField(required=False, help_text="Whether the web widget may chat with this bot.")
    allowed_origins = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        help_text="Pages allowed to embed the widget, e.g. https://www.example.com (at most 20).",
    )


class BotWidgetView(APIView):
    """The bot's public mode (an extension of the seed): the web widget's key and allowed pages."""

    @extend_schema(responses={200: BotWidgetSerializer})
    def get(self, request: Request, bot_id) -> Response:
        return Response(BotWidgetSerializer(bot_get(user=request.user, bot_id=bot_id)).data)

    @extend_schema(request=BotWidgetUpdateSerializer, responses={200: BotWidgetSerializer})
    def patch(self, request: Request, bot_id) -> Response:
        bot = bot_get(user=request.user, bot_id=bot_id)
        data = validated(BotWidgetUpdateSerializer, request.data)
        bot = bot_public_set(
            bot=bot, public=data.get("public", bot.public), allowed_origins=data.get("allowed_origins")
        )
        return Response(BotWidgetSerializer(bot).data)
