"""A real SearxNG-like HTTP server on 127.0.0.1 (`GET /search?q=&format=json`) with scripted modes,
and a canary listener that counts every connection made to it.

Modes (`server.mode`):
  ok          200 with `server.results` as SearxNG's JSON (`{"query", "results": [{"url", "title", "content"}]}`)
  status-<n>  that HTTP status with an HTML error page
  not-json    200 with an HTML page
  oversized   200 with valid JSON larger than `oversized_bytes`
  drip        200 headers, then valid JSON one byte every `drip_seconds` (defeats a per-read timeout)
  stall       sleeps `stall_seconds` before answering at all
  redirect    302 to the canary
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback_server import LoopbackServer

DEFAULT_RESULTS = [
    {
        "url": "https://example.org/pirates",
        "title": "Pirate treasure",
        "content": "Pirates buried their treasure on remote islands.",
    },
    {
        "url": "https://example.net/maps",
        "title": "Treasure maps",
        "content": "X marks the spot on most treasure maps.",
    },
]


@dataclass
class SearchRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeSearxNG(LoopbackServer):
    host: str = "127.0.0.1"
    port: int = 0
    mode: str = "ok"
    results: list[dict[str, Any]] = field(default_factory=lambda: [dict(r) for r in DEFAULT_RESULTS])
    requests: list[SearchRequest] = field(default_factory=list)
    oversized_bytes: int = 400_000
    drip_seconds: float = 0.05
    stall_seconds: float = 3.0
    canary_port: int = 0
    canary_hits: int = 0

    thread_name = "fake-searxng"
    # Stalled handlers are not waited for at shutdown.
    runner_options = {"shutdown_timeout": 0.5}

    def __post_init__(self) -> None:
        self._loopback_init()
        self._canary: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def canary_url(self) -> str:
        return f"http://{self.host}:{self.canary_port}/secret-page"

    def reset(self) -> None:
        self.mode = "ok"
        self.results = [dict(result) for result in DEFAULT_RESULTS]
        self.requests.clear()
        self.canary_hits = 0

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/search", self._search)
        return app

    async def started(self) -> None:
        self._canary = await asyncio.start_server(self._canary_hit, self.host, 0)
        self.canary_port = self._canary.sockets[0].getsockname()[1]

    async def stopping(self) -> None:
        if self._canary is not None:
            self._canary.close()

    async def _canary_hit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Any connection counts: a fetch of a result URL, a redirect followed, a probe."""
        self.canary_hits += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    # -- behaviour -----------------------------------------------------------------------------
    def payload(self, query: str) -> bytes:
        return json.dumps({"query": query, "number_of_results": len(self.results), "results": self.results}).encode()

    async def _search(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(SearchRequest(request.path, dict(request.query), dict(request.headers)))
        query = request.query.get("q", "")
        mode = self.mode
        if mode.startswith("status-"):
            return web.Response(status=int(mode[7:]), text="<html>error</html>", content_type="text/html")
        if mode == "not-json":
            return web.Response(text="<html><body>Too many requests</body></html>", content_type="text/html")
        if mode == "redirect":
            raise web.HTTPFound(self.canary_url)
        if mode == "stall":
            await asyncio.sleep(self.stall_seconds)
        if mode == "oversized":
            padding = "x" * self.oversized_bytes
            rows = [{"url": "https://example.org/big", "title": "big", "content": padding}]
            return web.json_response({"query": query, "results": rows})
        if mode == "drip":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            with contextlib.suppress(ConnectionError):
                for byte in self.payload(query):
                    await response.write(bytes([byte]))
                    await asyncio.sleep(self.drip_seconds)
            return response
        return web.Response(body=self.payload(query), content_type="application/json")


if __name__ == "__main__":
    server = FakeSearxNG(port=8091).start()
    print(f"fake SearxNG on {server.url}")
    threading.Event().wait()
