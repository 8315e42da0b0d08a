"""Project-level views: the root status and JSON error pages for non-API failures."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response


@extend_schema(
    responses=inline_serializer(
        "Status",
        {
            "Status": serializers.CharField(),
            "message": serializers.CharField(),
            "version": serializers.CharField(),
        },
    ),
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def root(request: Request) -> Response:
    """Running status (000) and the welcome message with the version (001) in one object."""
    return Response(
        {
            "Status": "Running",
            "message": _("Welcome to the Bytchat API. Documentation: /api/docs/"),
            "version": settings.VERSION,
        }
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": _("Not found."), "code": "not_found"}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": _("Internal server error."), "code": "server_error"}, status=500)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": _("Bad request."), "code": "bad_request"}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": _("Permission denied."), "code": "permission_denied"}, status=403)
