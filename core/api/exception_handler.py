"""Maps every API failure to a JSON body with a `detail` that names the problem."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError
from core.shared_state import shared_state_unavailable

logger = logging.getLogger(__name__)


def flatten_validation_errors(errors: Any, prefix: str = "") -> list[str]:
    """Turn DRF's nested error structure into `field: message` lines."""
    if isinstance(errors, dict):
        lines: list[str] = []
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            lines.extend(flatten_validation_errors(value, f"{name}." if name else ""))
        return lines
    if isinstance(errors, list):
        lines = []
        for index, value in enumerate(errors):
            if isinstance(value, dict | list):
                lines.extend(flatten_validation_errors(value, f"{prefix}{index}."))
            else:
                lines.extend(flatten_validation_errors(value, prefix))
        return lines
    field = prefix.rstrip(".")
    return [f"{field}: {errors}" if field else str(errors)]


def error_payload_for(exc: BaseException) -> tuple[dict[str, Any], int, dict[str, str]] | None:
    """The JSON body, status and headers for a known failure, or None for an unexpected one."""
    exc = shared_state_unavailable(exc) or exc  # a throttle or counter that could not reach Redis
    if isinstance(exc, DomainError):
        return exc.as_payload(), exc.status_code, exc.headers
    if isinstance(exc, RequestDataTooBig):
        return (
            {"detail": _("Request body is too large."), "code": "body_too_large"},
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            {},
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return {"detail": _("Too many fields or files in the request."), "code": "too_many_fields"}, 400, {}
    if isinstance(exc, RecursionError):
        return {"detail": _("JSON body is nested too deeply."), "code": "parse_error"}, 400, {}
    if isinstance(exc, SuspiciousOperation):
        return {"detail": _("Bad request."), "code": "bad_request"}, 400, {}
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    known = error_payload_for(exc)
    if known is not None:
        payload, status_code, headers = known
        return Response(payload, status=status_code, headers=headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            {"detail": _("Internal server error."), "code": "server_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        lines = flatten_validation_errors(exc.detail)
        # `errors` is by field; an error about the body as a whole goes under `non_field_errors`, as DRF names it.
        by_field = exc.detail if isinstance(exc.detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: exc.detail}
        response.data = {"detail": "; ".join(lines), "code": "invalid", "errors": by_field}
    elif isinstance(response.data, dict) and "code" not in response.data:
        response.data["code"] = getattr(exc, "default_code", "error")
    return response
