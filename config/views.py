"""Project-level views: the root status and JSON error pages for non-API failures."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
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


# Exempt: an unknown path is a 404 for every method, not CSRF's 403 page for POST, PUT, PATCH and DELETE.
@csrf_exempt
def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": _("Not found."), "code": "not_found"}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": _("Internal server error."), "code": "server_error"}, status=500)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": _("Bad request."), "code": "bad_request"}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": _("Permission denied."), "code": "permission_denied"}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the admin keeps Django's page for people; anything else gets a JSON 403."""
    if request.path.startswith("/admin/"):
        return csrf.csrf_failure(request, reason)
    return JsonResponse({"detail": _("CSRF verification failed."), "code": "csrf_failed"}, status=403)
