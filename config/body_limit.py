"""ASGI middleware that refuses request bodies over MAX_REQUEST_BYTES before Django spools them to disk."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings


async def send_json_error(send: Any, status: int, detail: str, code: str) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is never read: the server closes the connection instead of draining it.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Endpoints that take file uploads get the file limit plus room for the multipart envelope.
UPLOAD_PATHS = re.compile(r"^/(bots/[^/]+/train|load_context)/?$")


def request_limit(path: str) -> int:
    if UPLOAD_PATHS.match(path):
        # Room for base64 (4/3 of the file) and the multipart or JSON envelope.
        return settings.KNOWLEDGE_MAX_FILE_BYTES * 4 // 3 + 256 * 1024
    return settings.MAX_REQUEST_BYTES


class BodyLimitMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = request_limit(scope.get("path", ""))
        too_large = "Request body is too large."
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await send_json_error(send, 413, too_large, "body_too_large")
                return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> dict:
            if state["exceeded"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    # Chunked bodies have no Content-Length: stop reading; Django sees a disconnect.
                    state["exceeded"] = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if state["exceeded"] and not state["started"]:
            await send_json_error(send, 413, too_large, "body_too_large")
