"""ASGI middleware: one SERVER span per HTTP request (OpenTelemetry HTTP semantic conventions), in the
caller's trace when it sent a W3C `traceparent`. No path and no query: the route template when the
request resolved to one (config/http_route.py, recorded by config/request_log.py inside), else only the
method. A socket gets a span per frame instead (chats/ws/consumer.py): one per connection would last for hours."""

from __future__ import annotations

from typing import Any

from config.http_route import route_of
from core import tracing

# http.request.method: any other method is recorded as "_OTHER" (a client can send anything).
KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"})


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return ""


class RequestTraceMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not tracing.tracing_enabled():
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method not in KNOWN_METHODS:
            method = "_OTHER"
        attributes: tracing.Attributes = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        status: dict[str, int] = {}

        async def traced_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with tracing.request_span(
            "HTTP" if method == "_OTHER" else method,
            traceparent=_header(scope, b"traceparent"),
            tracestate=_header(scope, b"tracestate"),
            attributes=attributes,
        ) as span:
            try:
                await self.app(scope, receive, traced_send)
            finally:
                _ended(span, scope, method, status.get("code"))


def _ended(span: tracing.SpanLike, scope: dict[str, Any], method: str, code: int | None) -> None:
    route = route_of(scope)
    if route:
        span.set_attribute("http.route", route)
        span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
    if code is not None:
        span.set_attribute("http.response.status_code", code)
        if code >= 500:
            tracing.span_failed(span, str(code))
