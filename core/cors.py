"""CORS for the endpoints the web widget calls from the pages that embed it (docs/widget.md).

Any origin may call them and a preflight gets a 204: the visitor's token in the Authorization header, never a
cookie, is what authorizes the request that follows, and that request is checked in full. The origin is
echoed, not `*`, with `Vary: Origin` so that no cache serves one page's answer to another.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework.request import Request

ALLOWED_HEADERS = "Authorization, Content-Type, Accept-Language"
PREFLIGHT_SECONDS = "600"


def cors_allow(response: HttpResponse, origin: str | None, methods: str) -> HttpResponse:
    """`response`, allowed to the calling page's `origin` for `methods` (nothing added without an origin)."""
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = methods
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = PREFLIGHT_SECONDS
        patch_vary_headers(response, ["Origin"])
    return response


class AnyOriginCors:
    """A DRF view mixin: answers preflights before authentication and allows every response to its caller's
    origin for `cors_methods`."""

    cors_methods = "GET, POST, OPTIONS"

    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse(status=204)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "OPTIONS":  # a preflight carries no credentials
            return
        super().initial(request, *args, **kwargs)  # type: ignore[misc]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        return cors_allow(response, request.headers.get("Origin"), self.cors_methods)
