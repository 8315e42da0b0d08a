"""The OpenAI-compatible API's model list (`/v1/models`): each of the caller's bots is a model.

A bot's model id is `bot-<its uuid>`: stable across renames. Errors use OpenAI's error object
(`{"error": {"message", "type", "param", "code"}}`) with the matching status, so OpenAI SDKs raise
their usual exceptions (`AuthenticationError`, `NotFoundError`, ...).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot
from bots.selectors import bot_get, bot_list
from config.errors import DomainError, NotFound
from config.exception_handler import flatten_validation_errors
from config.openai_errors import openai_error_body

MODEL_PREFIX = "bot-"
def model_id(bot: Bot) -> str:
    return f"{MODEL_PREFIX}{bot.pk}"


def bot_for_model(*, user: Any, model: str) -> Bot:
    """The caller's bot a model id names; anything else is a 404 `model_not_found`."""
    try:
        bot_id = uuid.UUID(model.removeprefix(MODEL_PREFIX)) if model.startswith(MODEL_PREFIX) else None
    except ValueError:
        bot_id = None
    missing = NotFound(_("The model '%(model)s' does not exist.") % {"model": model[:100]}, code="model_not_found")
    if bot_id is None:
        raise missing
    try:
        return bot_get(user=user, bot_id=bot_id)
    except NotFound as exc:
        raise missing from exc


def model_object(bot: Bot) -> dict[str, Any]:
    return {"id": model_id(bot), "object": "model", "created": int(bot.created_at.timestamp()), "owned_by": "bytchat"}


def openai_error(message: str, *, status: int, code: str | None, param: str | None = None) -> Response:
    return Response(openai_error_body(message, status=status, code=code, param=param), status=status)


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
            response = openai_error(str(exc.detail), status=status, code=code)
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
