"""Each HTTP request's and WebSocket connection's observer, outside everything but the lifespan: its request id
(`X-Request-ID`), one log line when it ends, and the HTTP metric (docs/reliability.md L2, L4).

The id is the client's (or nginx's `$request_id`) when it is a sane token, else a new one; it is returned as
`X-Request-ID` and kept in `core.logs.request_id_var` while the request is served, so every line logged for it
carries it. The log line names the route template and the path without its query string (tokens and socket
tickets travel there), never a header. The metric `http_server_request_duration_seconds` is labelled by method,
route template (config/http_route.py) and status; a stream counts until its last byte. A socket is observed as
the HTTP request it starts as: its handshake (101, or 403 refused) in the metric, its whole life in the line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from config.http_route import SCOPE_KEY, UNMATCHED, RouteSlot, websocket_route
from core.logs import request_id_var
from core.metrics import http_request_duration, metrics_enabled

logger = logging.getLogger("bytchat.requests")

HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
# OpenTelemetry's known methods; any other is `_OTHER`, so a client cannot mint label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# No response was started: the app raised (the server answers 500), or the client left first (nginx's 499).
FAILED, CLIENT_LEFT = 500, 499


def request_id_of(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return value.decode() if _SANE_ID.fullmatch(value) else uuid.uuid4().hex
    return uuid.uuid4().hex


class RequestLogMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        id_header = (HEADER, request_id.encode())
        slot = RouteSlot()
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": None, "bytes": 0, "handshake": None}

        async def observing_send(message: dict[str, Any]) -> None:
            kind_sent = message["type"]
            if kind_sent == "http.response.start":
                seen["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif kind_sent == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            elif seen["status"] is None and kind_sent in ("websocket.accept", "websocket.close"):
                # A close before the accept is the server's HTTP 403.
                seen["status"] = 101 if kind_sent == "websocket.accept" else 403
                seen["handshake"] = time.perf_counter()
                if kind_sent == "websocket.accept":
                    message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif kind_sent == "websocket.http.response.start":
                seen["status"] = message["status"]
                seen["handshake"] = time.perf_counter()
            await send(message)

        # In the scope itself, not a copy: the tracing middleware outside reads the route too (config/request_trace.py).
        scope[SCOPE_KEY] = slot
        token = request_id_var.set(request_id)
        failed = False
        try:
            await self.app(scope, receive, observing_send)
        except BaseException:
            failed = True
            raise
        finally:
            ended = time.perf_counter()
            status = seen["status"] or (FAILED if failed else CLIENT_LEFT)
            if kind == "websocket":
                route, method = websocket_route(scope.get("path", "")), "GET"
            else:
                route, method = slot.route or UNMATCHED, scope.get("method", "")
            if metrics_enabled():
                method_label = method if method in METHODS else "_OTHER"
                http_request_duration.labels(method_label, route, str(status)).observe(
                    (seen["handshake"] or ended) - started
                )
            _log_line(scope, kind, method, route, status, (ended - started) * 1000, seen["bytes"])
            request_id_var.reset(token)


def _log_line(scope: dict[str, Any], kind: str, method: str, route: str, status: int, ms: float, sent: int) -> None:
    path = scope.get("path", "")
    logger.info(
        "%s %s %s %.0fms",
        method,
        path,
        status,
        ms,
        extra={
            "event": "request",
            "protocol": kind,
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round(ms, 1),
            "bytes": sent,
        },
    )
