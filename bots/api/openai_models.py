"""The OpenAI-compatible API's models (`/v1/models`: each of the caller's bots) and embeddings (`/v1/embeddings`).

A bot's model id is `bot-<its uuid>`: stable across renames. Errors use OpenAI's error object
(`{"error": {"message", "type", "param", "code"}}`) with the matching status, so OpenAI SDKs raise
their usual exceptions (`AuthenticationError`, `NotFoundError`, ...).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.llm.embeddings import embed_texts, embeddings_enabled
from bots.llm.types import estimate_tokens
from bots.models import Bot
from bots.selectors import MODEL_PREFIX, bot_for_model, bot_list, model_not_found
from core.api.exception_handler import flatten_validation_errors
from core.errors import DomainError
from core.openai_errors import openai_error_body


def model_id(bot: Bot) -> str:
    return f"{MODEL_PREFIX}{bot.pk}"


def model_object(bot: Bot) -> dict[str, Any]:
    return {"id": model_id(bot), "object": "model", "created": int(bot.created_at.timestamp()), "owned_by": "bytchat"}


def openai_error(message: str, *, status: int, code: str | None, param: str | None = None) -> Response:
    return Response(openai_error_body(message, status=status, code=code, param=param), status=status)


def _plain_detail(detail: Any) -> str:
    """An exception's message as text: simplejwt's failures carry a dict of details, not a string."""
    if isinstance(detail, dict) and "detail" in detail:
        return str(detail["detail"])
    if isinstance(detail, dict | list):
        return "; ".join(flatten_validation_errors(detail))
    return str(detail)


class OpenAIView(APIView):
    """Bearer JWT or personal API key (the default authentications); every failure as OpenAI's error object."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DomainError):
            response = openai_error(exc.message, status=exc.status_code, code=exc.code)
            for name, value in exc.headers.items():
                response[name] = value
            return response
        if isinstance(exc, exceptions.ValidationError):
            return openai_error("; ".join(flatten_validation_errors(exc.detail)), status=400, code="invalid_value")
        if isinstance(exc, exceptions.APIException):
            status = exc.status_code
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                status = 401
            code = "invalid_api_key" if status == 401 else getattr(exc, "default_code", None)
            response = openai_error(_plain_detail(exc.detail), status=status, code=code)
            if status == 401:
                response["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        return super().handle_exception(exc)


MODEL_SCHEMA = inline_serializer(
    "OpenAIModel",
    {
        "id": serializers.CharField(),
        "object": serializers.CharField(),
        "created": serializers.IntegerField(),
        "owned_by": serializers.CharField(),
    },
)


class ModelListView(OpenAIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "OpenAIModelList",
                {"object": serializers.CharField(), "data": serializers.ListField(child=MODEL_SCHEMA)},
            )
        },
        description="The caller's bots as OpenAI models (`bot-<uuid>`).",
        operation_id="openai_models_list",
    )
    def get(self, request: Request) -> Response:
        return Response({"object": "list", "data": [model_object(bot) for bot in bot_list(user=request.user)]})


class ModelDetailView(OpenAIView):
    @extend_schema(responses={200: MODEL_SCHEMA}, operation_id="openai_model_retrieve")
    def get(self, request: Request, model: str) -> Response:
        return Response(model_object(bot_for_model(user=request.user, model=model)))


class EmbeddingsSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=200)
    input = serializers.JSONField()
    encoding_format = serializers.ChoiceField(choices=["float", "base64"], default="float")
    dimensions = serializers.IntegerField(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_blank=True)

    def validate_input(self, value: Any) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if (
            not isinstance(texts, list)
            or not 0 < len(texts) <= EMBEDDINGS_MAX_INPUTS
            or not all(isinstance(text, str) and 0 < len(text) <= EMBEDDINGS_MAX_CHARS for text in texts)
        ):
            raise serializers.ValidationError(
                _("Give a text or a list of at most %(n)d texts of 1 to %(chars)d characters.")
                % {"n": EMBEDDINGS_MAX_INPUTS, "chars": EMBEDDINGS_MAX_CHARS}
            )
        return texts


EMBEDDINGS_MAX_INPUTS = 256
EMBEDDINGS_MAX_CHARS = 32_000


class EmbeddingsView(OpenAIView):
    """The configured embeddings model, relayed (not metered: see docs/architecture.md "Usage and quotas")."""

    # a `model` that is not the server's embeddings model (or none is configured)
    error_statuses = {404}

    @extend_schema(
        request=EmbeddingsSerializer,
        responses={200: inline_serializer("OpenAIEmbeddings", {"object": serializers.CharField()})},
        operation_id="openai_embeddings",
        description="Vectors from the server's embeddings model (`EMBEDDINGS_MODEL`), when one is configured; "
        "any other `model` is a 404 `model_not_found`.",
    )
    def post(self, request: Request) -> Response:
        serializer = EmbeddingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not embeddings_enabled() or data["model"] != settings.EMBEDDINGS_MODEL:
            raise model_not_found(data["model"])
        vectors = embed_texts(data["input"])
        tokens = sum(estimate_tokens(text) for text in data["input"])
        return Response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": index, "embedding": _encoded(vector, data["encoding_format"])}
                    for index, vector in enumerate(vectors)
                ],
                "model": settings.EMBEDDINGS_MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _encoded(vector: list[float], encoding_format: str) -> list[float] | str:
    """OpenAI's SDKs ask for base64 (little-endian float32) unless told otherwise."""
    if encoding_format == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
