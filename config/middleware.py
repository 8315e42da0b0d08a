"""Django middleware for the upload endpoints' larger JSON bodies."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from config.body_limit import UPLOAD_PATHS, request_limit


class UploadBodyMiddleware:
    """Reads JSON bodies of upload endpoints (base64 files) up to their own limit.

    Elsewhere DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB) applies; a JSON upload of a 10 MB file needs more.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.content_type == "application/json" and UPLOAD_PATHS.match(request.path):
            limit = request_limit(request.path)
            data = request.read(limit + 1)
            if len(data) > limit:
                return JsonResponse({"detail": _("Request body is too large."), "code": "body_too_large"}, status=413)
            request._body = data
        return self.get_response(request)
