"""The one place that talks to MCP servers (Streamable HTTP, the mcp SDK): list a server's tools, call one.

Each call opens its own session (HTTP client, initialize, the request, close), checks the host first
(tools/hosts.py: DNS may have changed since the server was attached), sends the decrypted headers, and
is bounded in time and in the bytes it reads. Tool output is untrusted text: it is returned, cut to
TOOL_RESULT_MAX_CHARS, never interpreted (docs/tools.md, docs/reliability.md I4-I8).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
from django.conf import settings
from django.utils.translation import gettext as _

from core.errors import DomainError
from tools.hosts import mcp_url_check_async
from tools.models import ToolServer
from tools.secrets import credentials_decrypt

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

logger = logging.getLogger(__name__)

# What one session may read from a server, all responses together: a tool list or a result past this is
# refused rather than parsed (the shown part is TOOL_RESULT_MAX_CHARS; this bounds memory).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# The SDK's own default for an SSE stream's idle read is 300 s; a session here never lives that long.
_WRITE_SECONDS = 10.0


@dataclass(frozen=True)
class ListedTool:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolOutput:
    """What a tool call gives the model: `text` (at most TOOL_RESULT_MAX_CHARS, with a note if cut),
    `chars` (the size of what the tool returned), and `error` when the call failed."""

    text: str
    chars: int
    truncated: bool
    error: str = ""


class ToolServerFailed(DomainError):
    """The MCP server could not be reached or did not answer as MCP (502 `mcp_server_failed`)."""

    status_code = 502
    code = "mcp_server_failed"


@dataclass
class _Session:
    """What the HTTP layer saw, to name a failure the SDK reports generically."""

    status: int | None = None
    too_large: bool = False
    read: int = 0


class _BoundedStream(httpx2.AsyncByteStream):
    def __init__(self, stream: Any, session: _Session) -> None:
        self._stream = stream
        self._session = session

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._session.read += len(chunk)
            if self._session.read > MAX_RESPONSE_BYTES:
                self._session.too_large = True
                raise httpx2.ReadError("response too large")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class _BoundedTransport(httpx2.AsyncBaseTransport):
    """Counts the bytes the server sends and records its HTTP errors."""

    def __init__(self, session: _Session) -> None:
        self._inner = httpx2.AsyncHTTPTransport(retries=0)
        self._session = session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code >= 400 and request.method == "POST":
            self._session.status = response.status_code
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_BoundedStream(response.stream, self._session),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException, state: _Session) -> str:
    """A failure as the bot's owner or the model should read it; never the credentials."""
    from mcp.shared.exceptions import MCPError

    if state.too_large:
        return _("the server's answer was larger than %(mb)s MB") % {"mb": MAX_RESPONSE_BYTES // (1024 * 1024)}
    if state.status is not None:
        return _("the server answered HTTP %(status)s") % {"status": state.status}
    for leaf in _leaves(exc):
        if isinstance(leaf, DomainError):
            return leaf.message
        if isinstance(leaf, httpx2.TimeoutException):
            return _("the server did not answer in time")
        if isinstance(leaf, httpx2.ConnectError):
            return _("the server could not be reached")
        if isinstance(leaf, httpx2.HTTPError):
            return _("the connection to the server failed")
        if isinstance(leaf, MCPError):
            return _("the server answered with an MCP error: %(error)s") % {"error": str(leaf)[:200]}
    return _("the server did not answer as an MCP server")


@asynccontextmanager
async def _session(server: ToolServer, state: _Session) -> AsyncIterator[ClientSession]:
    # Imported on first use: the SDK loads OpenTelemetry's propagation, which a server without tool servers
    # (or without tracing) should not load (docs/reliability.md L5).
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    await mcp_url_check_async(server.url)
    headers = credentials_decrypt(server.credentials)
    # Compressed bodies would be counted before they expand.
    headers["Accept-Encoding"] = "identity"
    timeout = httpx2.Timeout(settings.TOOL_CALL_SECONDS, connect=settings.MCP_CONNECT_SECONDS, write=_WRITE_SECONDS)
    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=timeout, follow_redirects=False, transport=_BoundedTransport(state)
        ) as http,
        streamable_http_client(server.url, http_client=http, max_sse_event_size=MAX_RESPONSE_BYTES) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def server_tools_list(server: ToolServer) -> list[ListedTool]:
    """The server's tools (every page, within MCP_CONNECT_SECONDS + TOOL_CALL_SECONDS). Refuses with
    HostRefused (400) or ToolServerFailed (502, naming the reason)."""
    state = _Session()
    listed: list[ListedTool] = []
    failure: BaseException | None = None
    with anyio.move_on_after(settings.MCP_CONNECT_SECONDS + settings.TOOL_CALL_SECONDS) as scope:
        try:
            async with _session(server, state) as session:
                cursor: str | None = None
                for _page in range(100):
                    params = {"cursor": cursor} if cursor else None
                    result = await session.list_tools(params=params)
                    listed.extend(
                        ListedTool(
                            name=tool.name, description=tool.description or "", input_schema=dict(tool.input_schema)
                        )
                        for tool in result.tools
                    )
                    cursor = result.next_cursor
                    if not cursor or len(listed) > settings.MCP_TOOLS_PER_SERVER:
                        break
        except Exception as exc:
            failure = exc
    if failure is not None:
        if isinstance(failure, DomainError) and not isinstance(failure, ToolServerFailed):
            raise failure
        logger.info("MCP server %s: tools/list failed: %s", server.pk, _describe(failure, state))
        raise ToolServerFailed(_("The tool server failed: %(reason)s.") % {"reason": _describe(failure, state)})
    if scope.cancelled_caught:
        raise ToolServerFailed(_("The tool server failed: %(reason)s.") % {"reason": _("it did not answer in time")})
    return listed


def _content_text(content: list[Any]) -> str:
    parts: list[str] = []
    for part in content:
        kind = getattr(part, "type", "")
        if kind == "text":
            parts.append(part.text)
        elif kind == "resource" and hasattr(part.resource, "text"):
            parts.append(part.resource.text)
        else:
            parts.append(f"[{kind or 'content'} omitted]")
    return "\n".join(parts)


def output_bounded(text: str, *, error: str = "") -> ToolOutput:
    """The text cut to TOOL_RESULT_MAX_CHARS, with a note saying how much there was."""
    limit = settings.TOOL_RESULT_MAX_CHARS
    chars = len(text)
    if chars <= limit:
        return ToolOutput(text=text, chars=chars, truncated=False, error=error)
    note = _("[cut: the tool returned %(total)s characters; the first %(shown)s are shown]") % {
        "total": f"{chars:,}",
        "shown": f"{limit:,}",
    }
    return ToolOutput(text=f"{text[:limit]}\n{note}", chars=chars, truncated=True, error=error)


async def server_tool_call(server: ToolServer, tool_name: str, arguments: dict[str, Any]) -> ToolOutput:
    """Calls a tool; every ordinary failure (a refused host, the network, HTTP, the protocol, the tool's
    own error, TOOL_CALL_SECONDS passing) comes back as a ToolOutput with `error`, never an exception."""
    state = _Session()
    seconds = settings.TOOL_CALL_SECONDS
    started = time.monotonic()
    result = None
    failure: BaseException | None = None
    with anyio.move_on_after(seconds) as scope:
        try:
            async with _session(server, state) as session:
                result = await session.call_tool(tool_name, arguments)
        except Exception as exc:
            failure = exc
    if result is None and (scope.cancelled_caught or failure is None):
        return ToolOutput(
            text="", chars=0, truncated=False, error=_("the tool did not answer within %(s)s s") % {"s": f"{seconds:g}"}
        )
    if result is None:
        error = _describe(failure, state)
        logger.info(
            "MCP server %s: tools/call %s failed after %.1f s: %s",
            server.pk,
            tool_name[:64],
            time.monotonic() - started,
            error,
        )
        return ToolOutput(text="", chars=0, truncated=False, error=error[:500])
    text = _content_text(result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    if result.is_error:
        return ToolOutput(
            text="", chars=len(text), truncated=len(text) > 500, error=(text or _("the tool failed"))[:500]
        )
    return output_bounded(text)
