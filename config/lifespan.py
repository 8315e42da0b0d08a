"""The server's start and stop (ASGI lifespan), which Django and Channels do not handle themselves.

On start, a supervisor that asked for it (READY_FD, scripts/cluster.py) is told the process is about to
serve. On stop, the runs this process is still writing get what is left of DRAIN_SECONDS since the drain
began (uvicorn first waited for open requests, config/http_protocol.Drain); the rest are stored
`interrupted` with the text written so far (docs/runs.md), instead of waiting for their lease to lapse; then
the MCP server's session manager stops, when `/mcp` started one (its run() lasts until then).
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings

from config.http_protocol import Drain


def tell_supervisor_ready() -> None:
    """One byte on the pipe the supervisor passed: uvicorn listens right after startup completes."""
    fd = os.environ.pop("READY_FD", "")
    if fd.isdigit():
        try:
            os.write(int(fd), b"1")
            os.close(int(fd))
        except OSError:
            pass  # the supervisor is gone; nobody to tell


def drain_left() -> float:
    spent = 0.0 if Drain.since is None else time.monotonic() - Drain.since
    return max(0.0, settings.DRAIN_SECONDS - spent)


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
                tell_supervisor_ready()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from chats.mcp.endpoint import mcp_stop
                from chats.runs.runner import runs_shutdown
                from core.metrics import process_exit

                Drain.begin()
                await runs_shutdown(grace=drain_left())
                # The MCP server's session manager, if `/mcp` started one (chats/mcp/endpoint.py).
                await mcp_stop()
                process_exit()
                await send({"type": "lifespan.shutdown.complete"})
                return
