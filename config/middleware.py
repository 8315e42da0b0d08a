"""Django middleware for the upload endpoints' larger JSON bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from config.body_limit import UPLOAD_PATHS, request_limit


def _is_json_upload(request: HttpRequest) -> bool:
    return bool(
        request.method == "POST" and request.content_type == "application/json" and UPLOAD_PATHS.match(request.path)
    )


def _read_upload_body(request: HttpRequest) -> HttpResponse | None:
    limit = request_limit(request.path)
    data = request.read(limit + 1)
    if len(data) > limit:
        return JsonResponse({"detail": _("Request body is too large."), "code": "body_too_large"}, status=413)
    request._body = data
    return None


class UploadBodyMiddleware:
    """Reads JSON bodies of upload endpoints (base64 files) up to their own limit.

    Elsewhere DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB) applies; a JSON upload of a 10 MB file needs more.
    Async-capable: one sync-only middleware would run every request, async views included, in
    Django's single thread for sync code, one request at a time.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.async_mode:
            return self.__acall__(request)
        refused = _read_upload_body(request) if _is_json_upload(request) else None
        return refused or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        refused = await sync_to_async(_read_upload_body)(request) if _is_json_upload(request) else None
        return refused or await self.get_response(request)
