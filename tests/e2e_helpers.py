"""Small helpers shared by the end-to-end tests (which talk to a server in another process)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
from websockets.asyncio.client import connect


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Polls `predicate` until it holds or `timeout` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


# -- one user's bot, session and sockets on a live server (httpx and websockets, asyncio) ---------------
PASSWORD = "una-clave-segura"


async def sign_up(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """A fresh user on the server: its access token and Authorization header."""
    email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
    assert (await http.post("/users/", json={"email": email, "password": PASSWORD})).status_code == 200
    token = (await http.post("/token", data={"username": email, "password": PASSWORD})).json()["access_token"]
    return token, {"Authorization": f"Bearer {token}"}


async def bot_with(http: httpx.AsyncClient, auth: dict[str, str], model: str) -> str:
    body = {"name": model, "initial_configs": [{"provider": "custom", "model_id": model}]}
    created = await http.post("/bots/", json=body, headers=auth)
    assert created.status_code in (200, 201), created.text
    return created.json()["id"]


async def session_with(http: httpx.AsyncClient, auth: dict[str, str], model: str) -> dict:
    created = await http.post("/chat/sessions", json={"bot_id": await bot_with(http, auth, model)}, headers=auth)
    assert created.status_code == 201, created.text
    return created.json()


async def socket_url(http: httpx.AsyncClient, auth: dict[str, str], session_id: str) -> str:
    response = await http.post(f"/chat/sessions/{session_id}/websocket", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["websocket_url"]


def open_socket(url: str):
    # A socket whose server was killed gets no closing handshake: its client waits close_timeout for one.
    return connect(url, proxy=None, open_timeout=10, close_timeout=1, max_size=2**20)


async def next_frame(socket) -> dict:
    async with asyncio.timeout(20):
        return json.loads(await socket.recv())


async def frames_until_end(socket) -> list[dict]:
    frames = [await next_frame(socket)]
    while frames[-1]["type"] not in ("done", "error"):
        frames.append(await next_frame(socket))
    return frames


async def sse_events(lines: AsyncIterator[str], count: int | None = None) -> list[dict]:
    """The next `count` Server-Sent Events of a response's lines (up to `done` or `error` when None)."""
    events: list[dict] = []
    fields: dict[str, str] = {}
    async with asyncio.timeout(20):
        while count is None or len(events) < count:
            line = await anext(lines)
            if line.startswith(":"):
                continue
            if line:
                name, _colon, value = line.partition(": ")
                fields[name] = value
                continue
            event, fields = fields, {}
            if "data" in event:
                events.append({"id": event.get("id"), "event": event["event"], "data": json.loads(event["data"])})
                if event["event"] in ("done", "error"):
                    break
    return events
