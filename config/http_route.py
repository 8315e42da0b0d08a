"""The route template a request resolved to (`/bots/{bot_id}/models/`), for its log line and the HTTP metric's
`http_route` label: never the raw path, whose ids would make a series per object (docs/reliability.md L2).

config/request_log.py puts a `RouteSlot` in the ASGI scope; `route_middleware`, the outermost Django
middleware of both request paths (settings.MIDDLEWARE and config/api_path.API_MIDDLEWARE), fills it from
`request.resolver_match` once the response is made. A request that reached no view (the catch-all 404, a body
refused at the ASGI edge) leaves it empty: `unmatched`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

SCOPE_KEY = "bytchat.route"
UNMATCHED = "unmatched"
NOT_FOUND_ROUTE = "not-found"  # config/urls.py's catch-all

_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


class RouteSlot:
    """Where the Django side leaves the route (Channels copies the scope; this object is shared by the copies)."""

    __slots__ = ("route",)

    def __init__(self) -> None:
        self.route: str | None = None


def _skip_group(route: str, start: int) -> int:
    """The index just past the group whose `(` is at `start`, nested groups and escapes included."""
    depth, index = 0, start
    while index < len(route):
        char = route[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return index


@functools.lru_cache(maxsize=1024)
def route_template(route: str) -> str:
    """Django's `resolver_match.route` (regex or path syntax, joined across includes) as a readable path:
    `^`/`$` and the optional `/?` dropped, named groups and converters as `{name}`."""
    parts: list[str] = []
    index = 0
    while index < len(route):
        group = _NAMED_GROUP.match(route, index)
        if group:
            parts.append("{" + group.group(1) + "}")
            index = _skip_group(route, index)
        elif route.startswith("/?", index):
            index += 2
        elif route[index] in "^$":
            index += 1
        elif route[index] == "\\" and index + 1 < len(route):
            parts.append(route[index + 1])
            index += 2
        else:
            parts.append(route[index])
            index += 1
    return "/" + _CONVERTER.sub(r"{\1}", "".join(parts)).lstrip("/")


def _record(request: HttpRequest) -> None:
    slot = getattr(request, "scope", {}).get(SCOPE_KEY)  # WSGI requests (the test client) have no scope
    match = request.resolver_match
    if slot is not None and match is not None and match.url_name != NOT_FOUND_ROUTE:
        slot.route = route_template(match.route)


@sync_and_async_middleware
def route_middleware(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            response = await get_response(request)
            _record(request)
            return response

        return middleware

    def sync_middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        _record(request)
        return response

    return sync_middleware


def route_of(scope: dict[str, Any]) -> str | None:
    """The route template recorded for this request so far (None: none yet, or it reached no view)."""
    slot = scope.get(SCOPE_KEY)
    return None if slot is None else slot.route


def record_route(scope: dict[str, Any], template: str) -> None:
    """For what Django's URL map does not serve (static files)."""
    slot = scope.get(SCOPE_KEY)
    if slot is not None:
        slot.route = template


def websocket_route(path: str) -> str:
    """The socket route (config/routing.py) a path opens, matched as Channels' URLRouter matches it."""
    from chats.ws.auth import refuse
    from config.routing import websocket_urlpatterns

    for pattern in websocket_urlpatterns:
        if pattern.pattern.match(path.lstrip("/")):
            return UNMATCHED if pattern.callback is refuse else route_template(str(pattern.pattern))
    return UNMATCHED
