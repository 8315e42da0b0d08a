"""`/mcp` (and `/mcp/`) in front of Django: every request authenticated (an access JWT or a personal API key,
as `Bearer`), then handed to the SDK's session manager, which runs while this process serves.

A missing, bad or expired token, or an inactive user, is a 401 JSON `{"detail", "code"}` with
`WWW-Authenticate: Bearer` before the SDK sees the request (docs/reliability.md M1). The manager starts on
the first `/mcp` request of an event loop (config/lifespan.py stops it), so the SDK is imported by processes
that serve `/mcp` only, and `/mcp` works under any ASGI server, lifespan or not.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header

from accounts.authentication import user_from_access_token
from accounts.models import User
from accounts.services import API_KEY_PREFIX, api_key_user
from chats.streaming import released
from config.http_route import record_route
from core.errors import NotAuthenticated
from core.loop_local import LoopLocal

PATHS = frozenset({"/mcp", "/mcp/"})
# Where the authenticated caller waits in the request's ASGI scope for the tool handlers (chats/mcp/server.py).
USER_KEY = "bytchat.mcp.user"
ROUTE = "/mcp"
# How long a stopping process waits for the manager's last requests after the drain (config/lifespan.py).
STOP_SECONDS = 5.0


def _header(scope: dict[str, Any], name: bytes) -> str:
    return next((value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name), "")


async def caller(scope: dict[str, Any]) -> User:
    """The active user of the request's bearer token: a personal API key (`byt_…`) or an access JWT."""
    scheme, _space, raw = _header(scope, b"authorization").partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise NotAuthenticated()
    if raw.startswith(API_KEY_PREFIX):
        user = await released(api_key_user)(raw=raw)
        if user is None:
            raise NotAuthenticated(_("API key is invalid or revoked."), code="api_key_not_valid")
        return user
    return await released(user_from_access_token)(raw=raw)


def language(scope: dict[str, Any]) -> str:
    """The first language of Accept-Language that Bytchat speaks, as LocaleMiddleware picks it for the API."""
    for code, _quality in parse_accept_lang_header(_header(scope, b"accept-language")[:500]):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


async def refuse(send: Any, error: NotAuthenticated) -> None:
    body = json.dumps(error.as_payload()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class McpHost:
    """This event loop's session manager, inside its `run()` in a task of its own until `stop()`."""

    def __init__(self) -> None:
        self.starting: asyncio.Future[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    async def started(self) -> Any:
        """The running manager; the first caller starts it, shielded: a client that leaves meanwhile does not
        leave a half-started one behind, and a start that failed is tried again by the next request."""
        if self.starting is None:
            self.starting = asyncio.ensure_future(self._start())
        try:
            return await asyncio.shield(self.starting)
        except Exception:
            if self.starting.done():
                self.starting = None
            raise

    async def _start(self) -> Any:
        from chats.mcp.server import session_manager

        manager = session_manager()
        running = asyncio.Event()

        async def serve() -> None:
            async with manager.run():
                running.set()
                await self.stopping.wait()

        # A context of its own: the first request's ids (log, trace) are not the manager's.
        self.task = asyncio.get_running_loop().create_task(serve(), context=contextvars.Context())
        ready = asyncio.ensure_future(running.wait())
        await asyncio.wait({ready, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not running.is_set():
            ready.cancel()
            self.task.result()  # raises what ended it
            raise RuntimeError("the MCP session manager ended before it ran")
        return manager

    async def stop(self) -> None:
        if self.task is None:
            return
        self.stopping.set()
        await asyncio.wait({self.task}, timeout=STOP_SECONDS)
        if not self.task.done():
            self.task.cancel()


_hosts: LoopLocal[McpHost] = LoopLocal(McpHost)


async def mcp_stop() -> None:
    """The server process is stopping: end this loop's session manager, if `/mcp` started one."""
    await _hosts.get().stop()


async def mcp_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    record_route(scope, ROUTE)
    try:
        user = await caller(scope)
    except NotAuthenticated as error:
        await refuse(send, error)
        return
    scope[USER_KEY] = user
    with translation.override(language(scope)):
        manager = await _hosts.get().started()
        await manager.handle_request(scope, receive, send)


class McpRouter:
    """`/mcp` and `/mcp/` to the MCP server, every other HTTP request to `app`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in PATHS:
            await mcp_application(scope, receive, send)
            return
        await self.app(scope, receive, send)
