"""Assertions and stream readers shared by the API tests."""

import json

from asgiref.testing import ApplicationCommunicator


def assert_error(response, status: int, *words: str) -> str:
    """The response is a JSON error with this status and a `detail` naming each of `words`."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for word in words:
        assert word in detail, detail
    return detail


async def read_stream(response) -> bytes:
    """The whole body of a streaming response from Django's async test client."""
    return b"".join([chunk async for chunk in response.streaming_content])


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    """Server-Sent Events as (event, data) pairs; comment lines (heartbeats) are skipped."""
    events = []
    for block in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


# -- chat-session sockets (003) through channels' WebsocketCommunicator ------------------------


def ws_session_path(chat, user=None, **query) -> str:
    """`/chat/ws/{id}` with a fresh ticket for `user` (default: the chat's owner), or the given query."""
    from urllib.parse import urlencode

    from chats.ws.tickets import ticket_issue

    if not query:
        query = {"ticket": ticket_issue(user_id=(user or chat.owner).pk, session_id=chat.pk)}
    return f"/chat/ws/{chat.pk}?{urlencode(query)}"


class ws_session:  # a lower-case name: used like a function, `async with ws_session(path) as socket`
    """An open socket on config.asgi.application whose `system` greeting was read; closed on exit."""

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        from channels.testing import WebsocketCommunicator

        from config.asgi import application

        self.communicator = WebsocketCommunicator(application, path, headers=headers or [])
        self.greeting: dict | None = None

    async def __aenter__(self):
        connected, code = await self.communicator.connect(timeout=10)
        assert connected, f"handshake refused ({code})"
        self.greeting = await self.communicator.receive_json_from(timeout=10)
        return self.communicator

    async def __aexit__(self, *exc_info) -> None:
        await self.communicator.disconnect(timeout=10)


async def ws_refused(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> bool:
    """True when the handshake is closed before accept (the server answers it with HTTP 403)."""
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _code = await communicator.connect(timeout=10)
    await communicator.disconnect(timeout=10)
    return not connected


async def ws_answer(communicator, timeout: float = 10) -> list[dict]:
    """Frames up to and including the answer's `done` or `error`."""
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            return frames


def ws_text(frames: list[dict]) -> str:
    """The answer's text as a client builds it: chunks appended, a `snapshot` replacing what came before."""
    text = ""
    for frame in frames:
        if frame["type"] == "chunk":
            text += frame["content"]
        elif frame["type"] == "snapshot":
            text = frame["content"]
    return text


async def ws_text_until(communicator, enough, timeout: float = 10) -> list[dict]:
    """Chunk frames until their joined text satisfies `enough` (chunks are coalesced: their number
    is not the model's); an answer that ends first fails the test."""
    frames: list[dict] = []
    while not enough(ws_text(frames)):
        frame = await communicator.receive_json_from(timeout=timeout)
        assert frame["type"] == "chunk", [*frames, frame]
        frames.append(frame)
    return frames


async def runs_ended(timeout: float = 15) -> None:
    """Wait for the answers this process is still writing (a test's socket may have left mid-answer:
    its answer runs on), so none writes into the next test's database."""
    import asyncio

    from chats.runs.runner import live_runs

    tasks = {live.task for live in live_runs() if live.task.get_loop() is asyncio.get_running_loop()}
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


def asgi_request(
    method: str, path: str, *, query: bytes = b"", headers: list[tuple[bytes, bytes]] = ()
) -> ApplicationCommunicator:
    """A raw HTTP request to the ASGI app as the server runs it (config/asgi.py: the API's own
    middleware path), so a test can disconnect mid-answer."""
    from config.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    return ApplicationCommunicator(application, scope)


async def asgi_body(communicator: ApplicationCommunicator, timeout: float = 10) -> bytes:
    """The rest of a raw ASGI response's body, once its start was read."""
    body = b""
    while True:
        message = await communicator.receive_output(timeout=timeout)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def metric_total(name: str, **labels: str) -> float:
    """The sum of this process's samples `name` whose labels include `labels` (core/metrics.py)."""
    from prometheus_client import REGISTRY

    wanted = labels.items()
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and wanted <= sample.labels.items()
    )
