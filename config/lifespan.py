"""The server's start and stop (ASGI lifespan), which Django and Channels do not handle themselves.

On stop, after the server has closed its connections, the runs this process is still writing get
RUN_SHUTDOWN_GRACE_SECONDS to finish; the rest are stored `interrupted` with the text written so far
(docs/runs.md), instead of waiting for their lease to lapse.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


class LifespanMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from chats.runs.runner import runs_shutdown

                await runs_shutdown(grace=settings.RUN_SHUTDOWN_GRACE_SECONDS)
                await send({"type": "lifespan.shutdown.complete"})
                return
