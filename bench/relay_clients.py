"""The load generator of bench/relay.py: one stream per surface, timed from the request to each token.

Every surface follows the same shape: `prepare(n)` does the untimed setup of n streams (a chat, a
question, an open socket), `stream(handle)` is the timed part, `cleanup(handles)` closes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from bench.common import StreamResult

QUESTION = "bench"
PASSWORD = "bench-relay-password-1"  # noqa: S105 (throwaway user on a throwaway database)
SETUP_PARALLEL = 16  # setup calls in flight at once (untimed; keeps the setup from swamping the server)


def http_session() -> aiohttp.ClientSession:
    # No connection cap: a burst of n streams opens n connections, as n browsers would.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_read=90))


async def bounded(coros: list, parallel: int = SETUP_PARALLEL) -> list:
    gate = asyncio.Semaphore(parallel)

    async def one(coro):
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


class Account:
    """A user of the Bytchat under test, with its access token."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        self.access = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    async def register(self) -> Account:
        async with self.http.post(f"{self.base_url}/users/", json={"email": self.email, "password": PASSWORD}) as r:
            if r.status != 200:
                raise RuntimeError(f"register: HTTP {r.status} {await r.text()}")
        form = {"username": self.email, "password": PASSWORD}
        async with self.http.post(f"{self.base_url}/token", data=form) as r:
            if r.status != 200:
                raise RuntimeError(f"login: HTTP {r.status} {await r.text()}")
            self.access = (await r.json())["access_token"]
        return self

    async def call(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        async with self.http.request(method, f"{self.base_url}{path}", json=body, headers=self.auth) as r:
            if r.status not in ok:
                raise RuntimeError(f"{method} {path}: HTTP {r.status} {(await r.text())[:300]}")
            return await r.json()


async def read_sse(response: aiohttp.ClientResponse, result: StreamResult, start: float) -> None:
    """Bytchat's SSE (`event: chunk` ... `event: done` or `event: error`); a token is a non-empty chunk."""
    event = b""
    async for line in response.content:
        if line.startswith(b"event:"):
            event = line[6:].strip()
        elif line.startswith(b"data:"):
            if event == b"chunk":
                if content := json.loads(line[5:]).get("content"):
                    result.token(start, count=tokens_in(content))
            elif event == b"done":
                return
            elif event == b"error":
                data = json.loads(line[5:])
                result.error = f"error event {data.get('code', '?')}"
                return
    result.error = "stream ended without done"


async def check_status(response: aiohttp.ClientResponse, result: StreamResult) -> bool:
    if response.status == 200:
        return True
    body = (await response.text())[:120]
    result.error = f"HTTP {response.status} {body}"
    return False


def tokens_in(content: str) -> int:
    """The fake upstream's tokens in a chunk ("t0 t1 "): Bytchat coalesces tokens that arrive together."""
    return max(1, len(content.split()))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__} {str(exc)[:80]}".strip()


# -- surfaces ----------------------------------------------------------------------------------
class Direct:
    """The fake upstream itself, as an OpenAI SDK user would read it: the baseline."""

    name = "direct"

    def __init__(self, http: aiohttp.ClientSession, upstream_base_url: str, model: str) -> None:
        self.http = http
        self.url = f"{upstream_base_url}/chat/completions"
        self.body = {
            "model": model,
            "messages": [{"role": "user", "content": QUESTION}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        self.headers = {"Authorization": "Bearer bench-key"}

    async def prepare(self, n: int) -> list[Any]:
        return [None] * n

    async def stream(self, _handle: Any) -> StreamResult:
        result = StreamResult()
        start = time.perf_counter()
        try:
            async with self.http.post(self.url, json=self.body, headers=self.headers) as response:
                if not await check_status(response, result):
                    return result
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return result
                    choices = json.loads(payload).get("choices")
                    if choices and choices[0].get("delta", {}).get("content"):
                        result.token(start)
                result.error = "stream ended without [DONE]"
        except Exception as exc:
            result.error = describe(exc)
        return result

    async def cleanup(self, handles: list[Any]) -> None:
        return None


class BotChat:
    """001: `POST /chat/{bot_id}` with `Accept: text/event-stream`; each request starts a new chat."""

    name = "001 POST"

    def __init__(self, account: Account, bot_id: str) -> None:
        self.account = account
        self.url = f"{account.base_url}/chat/{bot_id}"

    @classmethod
    async def create(cls, account: Account) -> BotChat:
        bot = await account.call("POST", "/bots/", {"name": "bench"})
        return cls(account, bot["id"])

    async def prepare(self, n: int) -> list[Any]:
        return [None] * n

    async def stream(self, _handle: Any) -> StreamResult:
        result = StreamResult()
        headers = {**self.account.auth, "Accept": "text/event-stream"}
        start = time.perf_counter()
        try:
            async with self.account.http.post(self.url, json={"query": QUESTION}, headers=headers) as response:
                if await check_status(response, result):
                    await read_sse(response, result, start)
        except Exception as exc:
            result.error = describe(exc)
        return result

    async def cleanup(self, handles: list[Any]) -> None:
        return None


class Inference:
    """004: a chat and its Human message are created untimed; `GET /conversations/inference/{chat_id}?token=`
    is timed."""

    name = "004 SSE"

    def __init__(self, account: Account) -> None:
        self.account = account

    async def _chat_with_question(self) -> str:
        chat = await self.account.call("POST", "/chats/create", {"name": "bench"})
        await self.account.call(
            "POST", "/conversations/create", {"chat_id": chat["id"], "role": "Human", "message": QUESTION}
        )
        return chat["id"]

    async def prepare(self, n: int) -> list[Any]:
        return await bounded([self._chat_with_question() for _ in range(n)])

    async def stream(self, chat_id: Any) -> StreamResult:
        result = StreamResult()
        if isinstance(chat_id, BaseException):
            result.error = f"setup: {describe(chat_id)}"
            return result
        url = f"{self.account.base_url}/conversations/inference/{chat_id}"
        start = time.perf_counter()
        try:
            async with self.account.http.get(url, params={"token": self.account.access}) as response:
                if await check_status(response, result):
                    await read_sse(response, result, start)
        except Exception as exc:
            result.error = describe(exc)
        return result

    async def cleanup(self, handles: list[Any]) -> None:
        return None


class Session:
    """003: `POST /chat/sessions`, open its `websocket_url`, read the system frame (untimed); then the
    `message` frame is timed to each `chunk` until `done`."""

    name = "003 WS"

    def __init__(self, account: Account, origin: str) -> None:
        self.account = account
        self.origin = origin
        self.max_size = 1 << 20

    async def open(self) -> ClientConnection:
        created = await self.account.call("POST", "/chat/sessions", {})
        url = created["websocket_url"]
        if "?" not in url:  # no single-use ticket in the URL: authenticate with the access token
            url += f"?token={self.account.access}"
        ws = await connect(url, origin=self.origin, proxy=None, open_timeout=30, max_size=self.max_size)
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if first.get("type") != "system":
                raise RuntimeError(f"first frame is {first.get('type')!r}, not system")
        except BaseException:
            await ws.close()
            raise
        return ws

    async def prepare(self, n: int) -> list[Any]:
        return await bounded([self.open() for _ in range(n)])

    async def stream(self, ws: Any) -> StreamResult:
        result = StreamResult()
        if isinstance(ws, BaseException):
            result.error = f"setup: {describe(ws)}"
            return result
        message = json.dumps({"type": "message", "content": QUESTION})
        start = time.perf_counter()
        try:
            await ws.send(message)
            while True:
                frame = json.loads(await ws.recv())
                kind = frame.get("type")
                if kind == "chunk":
                    if content := frame.get("content"):
                        result.token(start, count=tokens_in(content))
                elif kind == "done":
                    return result
                elif kind == "error":
                    result.error = f"error frame {frame.get('code', '')} {str(frame.get('content', ''))[:60]}"
                    return result
        except Exception as exc:
            result.error = describe(exc)
        return result

    async def cleanup(self, handles: list[Any]) -> None:
        async def close(ws: Any) -> None:
            if isinstance(ws, ClientConnection):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 10)

        await asyncio.gather(*(close(ws) for ws in handles))
