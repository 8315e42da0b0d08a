"""A real MCP server (the mcp SDK's MCPServer, Streamable HTTP) served by uvicorn on 127.0.0.1 from a thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

WEATHER = "It is sunny and 21 degrees in {city}."
FAIL_MESSAGE = "the weather station is on fire"


@dataclass
class RecordedCall:
    tool: str
    arguments: dict[str, Any]
    headers: dict[str, str]


@dataclass
class McpTestServer:
    """`start()` serves it on a random port; `url` is its endpoint; `calls` records every tool call;
    `mcp` is the MCPServer (a test may add or remove tools on an instance of its own).
    With `bearer` set, a request without `Authorization: Bearer <bearer>` gets a 401."""

    bearer: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[RecordedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def calls_of(self, tool: str) -> list[RecordedCall]:
        with self._lock:
            return [call for call in self.calls if call.tool == tool]

    def _record(self, ctx: Context, tool: str, arguments: dict[str, Any]) -> dict[str, str]:
        headers = {key.lower(): value for key, value in (ctx.headers or {}).items()}
        with self._lock:
            self.calls.append(RecordedCall(tool=tool, arguments=arguments, headers=headers))
        return headers

    def build_mcp(self) -> MCPServer:
        # MCPServer calls logging.basicConfig; the suite's logging configuration stays as it was.
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        mcp = MCPServer("bytchat-test-tools", log_level="WARNING")
        root.handlers[:], root.level = handlers, level

        @mcp.tool(description="Adds two whole numbers.")
        def add(a: int, b: int, ctx: Context) -> str:
            self._record(ctx, "add", {"a": a, "b": b})
            return str(a + b)

        @mcp.tool(description="Answers with the text it is given.")
        def echo(text: str, ctx: Context) -> str:
            self._record(ctx, "echo", {"text": text})
            return text

        @mcp.tool(description="Today's weather in a city.")
        def weather(city: str, ctx: Context) -> str:
            self._record(ctx, "weather", {"city": city})
            return WEATHER.format(city=city)

        @mcp.tool(description="Waits the given seconds, then answers.")
        async def slow(seconds: float, ctx: Context) -> str:
            self._record(ctx, "slow", {"seconds": seconds})
            await asyncio.sleep(seconds)
            return f"waited {seconds} s"

        @mcp.tool(description="Answers with that many characters.")
        def big(chars: int, ctx: Context) -> str:
            self._record(ctx, "big", {"chars": chars})
            pattern = "0123456789"
            return (pattern * (chars // len(pattern) + 1))[:chars]

        @mcp.tool(description="Always fails.")
        def fail(ctx: Context) -> str:
            self._record(ctx, "fail", {})
            raise ToolError(FAIL_MESSAGE)

        @mcp.tool(description="The credentials the server received.")
        def whoami(ctx: Context) -> str:
            headers = self._record(ctx, "whoami", {})
            return f"authorization={headers.get('authorization', '')}; x-api-key={headers.get('x-api-key', '')}"

        return mcp

    def build_app(self):
        self.mcp = self.build_mcp()
        app = self.mcp.streamable_http_app(
            # Tests reach it by 127.0.0.1 and by other names that resolve to it.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        if not self.bearer:
            return app
        expected = f"Bearer {self.bearer}".encode()

        async def guarded(scope, receive, send) -> None:
            if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
                start = {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
                await send(start)
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
            await app(scope, receive, send)

        return guarded

    def start(self) -> McpTestServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.build_app(), log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])), name="mcp-test-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(10)
