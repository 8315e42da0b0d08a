"""Plain async Django views for the endpoints that wait on a model (DRF has no async views).

`async_api_view` gives them what DRF gives the others: a JSON 405 for other methods, and every
known failure (DomainError, oversized or malformed bodies) as a JSON body with a `detail`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from core.api.exception_handler import error_payload_for
from core.errors import DomainError

AsyncView = Callable[..., Awaitable[HttpResponse]]


def error_response(exc: BaseException) -> JsonResponse:
    payload, status_code, headers = error_payload_for(exc) or (
        {"detail": _("Internal server error."), "code": "server_error"},
        500,
        {},
    )
    return JsonResponse(payload, status=status_code, headers=headers)


def async_api_view(*methods: str) -> Callable[[AsyncView], AsyncView]:
    def decorate(view: AsyncView) -> AsyncView:
        @csrf_exempt
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return JsonResponse(
                    {
                        "detail": _("Method %(method)s not allowed.") % {"method": request.method},
                        "code": "method_not_allowed",
                    },
                    status=405,
                    headers={"Allow": ", ".join(methods)},
                )
            try:
                return await view(request, *args, **kwargs)
            except Exception as exc:
                if error_payload_for(exc) is None:
                    raise
                return error_response(exc)

        return wrapper

    return decorate


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object (an empty body is an empty object); anything else is a 400."""
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        raise DomainError(_("Request body is not valid JSON."), code="parse_error") from exc
    if not isinstance(body, dict):
        raise DomainError(_("Request body must be a JSON object."), code="parse_error")
    return body


def request_data(request: HttpRequest) -> dict[str, Any]:
    """Query parameters merged under a JSON or form body, the body winning."""
    data: dict[str, Any] = {key: request.GET.get(key) for key in request.GET}
    if request.body:
        if request.content_type == "application/json":
            data.update(json_body(request))
        else:
            data.update({key: request.POST.get(key) for key in request.POST})
    return data
