"""A view's Http404 becomes the JSON 404 even with DEBUG on, whose page would list the URL patterns tried."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from config.views import not_found


class NotFoundMiddleware(MiddlewareMixin):
    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return not_found(request) if isinstance(exception, Http404) else None
