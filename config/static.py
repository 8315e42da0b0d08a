"""Static files served by the ASGI app itself (SERVE_STATIC), with the JSON 404 for anything it cannot serve."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse

from config.http_route import record_route
from config.views import not_found

# The request log's and the HTTP metric's route for every file served (config/http_route.py).
STATIC_ROUTE = "/static/{path}"


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's handler lets a path out of the static directories (`/static/../x`) raise to the server,
    which answers an HTML 500, and shows its debug page for a missing file when DEBUG is on."""

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        try:
            response = await sync_to_async(self.serve, thread_sensitive=False)(request)
        except (Http404, SuspiciousOperation):
            return not_found(request)
        record_route(request.scope, STATIC_ROUTE)
        return response
