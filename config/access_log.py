"""ASGI access log that records the path without its query string (queries and tokens stay out of logs)."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("bytchat.access")


class AccessLogMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: dict[str, int] = {}

        async def logging_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "websocket.accept":
                status["code"] = 101
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            client = scope.get("client") or ("-", 0)
            logger.info(
                '%s "%s %s" %s %.0fms',
                client[0],
                scope.get("method", "WS"),
                scope.get("path", ""),
                status.get("code", "-"),
                (time.monotonic() - started) * 1000,
            )
