"""The API's request path: Django's ASGI handler with async-native middleware only.

Django runs each `MiddlewareMixin` middleware in async mode by handing its `process_request` and
`process_response` to a thread, one hop each: about 16 hops a request with the admin's stack
(sessions, CSRF, messages, authentication), which the API never uses (it authenticates with JWT
or API keys, never a session cookie). The admin keeps Django's whole stack (`config/asgi.py`
routes `/admin/` there); every other request takes this path, where the middleware that only look
at headers run in the event loop, and the one that may read a body hops only when it must.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.deprecation import MiddlewareMixin

from config.http_route import route_middleware
from config.middleware import UploadBodyMiddleware
from config.not_found import NotFoundMiddleware

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponse]]

# Paths that take Django's whole middleware stack (settings.MIDDLEWARE): the admin's pages, which
# use sessions, CSRF and messages.
FULL_STACK_PREFIXES = ("/admin/",)


class InlineMiddleware:
    """A Django middleware whose `process_request` and `process_response` only read and set headers
    (no I/O), run in the event loop instead of a thread."""

    sync_capable = False
    async_capable = True

    def __init__(self, middleware_class: type[MiddlewareMixin], get_response: GetResponse) -> None:
        self.inner = middleware_class(get_response)
        self.get_response = get_response
        self.process_request = getattr(self.inner, "process_request", None)
        self.process_response = getattr(self.inner, "process_response", None)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.process_request(request) if self.process_request else None
        if response is None:
            response = await self.get_response(request)
        if self.process_response:
            response = self.process_response(request, response)
        return response


def inline(middleware_class: type[MiddlewareMixin]) -> Callable[[GetResponse], InlineMiddleware]:
    return lambda get_response: InlineMiddleware(middleware_class, get_response)


# Outermost first, as in settings.MIDDLEWARE: the route for the request log (config/http_route.py), the same
# headers (HSTS, nosniff, referrer and opener policies, X-Frame-Options), the same language negotiation, and the
# same body limits.
API_MIDDLEWARE: list[Callable[[GetResponse], Any]] = [
    route_middleware,
    inline(SecurityMiddleware),
    inline(LocaleMiddleware),
    inline(CommonMiddleware),
    UploadBodyMiddleware,
    inline(XFrameOptionsMiddleware),
]


class ApiHandler(ASGIHandler):
    """Django's ASGI handler with API_MIDDLEWARE instead of settings.MIDDLEWARE."""

    def load_middleware(self, is_async: bool = False) -> None:
        if not is_async:
            raise RuntimeError("ApiHandler serves ASGI only")
        self._view_middleware = []
        self._template_response_middleware = []
        # A view's Http404 is the JSON 404, as on the full stack (exception middleware run in a
        # thread, and only when a view raised).
        self._exception_middleware = [NotFoundMiddleware(lambda request: None).process_exception]
        handler = convert_exception_to_response(self._get_response_async)
        for factory in reversed(API_MIDDLEWARE):
            handler = convert_exception_to_response(factory(handler))
        self._middleware_chain = handler


class PathRouter:
    """Sends the admin's requests to Django's full stack and every other HTTP request to the API's."""

    def __init__(self, *, full: Any, api: Any) -> None:
        self.full = full
        self.api = api

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        app = self.full if scope["path"].startswith(FULL_STACK_PREFIXES) else self.api
        await app(scope, receive, send)
