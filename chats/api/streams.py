"""HTTP stream responses for the engine's events: Server-Sent Events and plain text.

Every HTTP surface that streams an answer (001, 000, 004) relays through here. Nothing is
buffered: each event is encoded and handed to the server as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from chats.events import StreamEvent

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT = b": keep-alive\n\n"


async def _sse_body(first: StreamEvent | None, events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    """Encoded events, with a comment line whenever the model is silent for SSE_HEARTBEAT_SECONDS.

    The next event is awaited in a task that a heartbeat does not cancel; only the client going
    away does, which the engine sees as a cancellation (partial answer stored as `cancelled`).
    """
    async with contextlib.aclosing(events):
        if first is not None:
            yield first.to_sse()
        pending: asyncio.Future[StreamEvent] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(events))
                done, _waiting = await asyncio.wait({pending}, timeout=settings.SSE_HEARTBEAT_SECONDS)
                if not done:
                    yield HEARTBEAT
                    continue
                finished, pending = pending, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    return
                yield event.to_sse()
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending


async def _text_body(first: StreamEvent | None, events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(events):
        if first is not None:
            yield first.to_text()
        async for event in events:
            yield event.to_text()


def sse_response(
    events: AsyncIterator[StreamEvent], *, first: StreamEvent | None = None, headers: dict[str, str] | None = None
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_sse_body(first, events), content_type="text/event-stream; charset=utf-8")
    for name, value in {**(headers or {}), **SSE_HEADERS}.items():
        response[name] = value
    return response


def text_response(
    events: AsyncIterator[StreamEvent], *, first: StreamEvent | None = None, headers: dict[str, str] | None = None
) -> StreamingHttpResponse:
    """The answer as chunked plain text; a failure after the first chunk ends it with an `[error]` line."""
    response = StreamingHttpResponse(_text_body(first, events), content_type="text/plain; charset=utf-8")
    for name, value in {**(headers or {}), "X-Accel-Buffering": "no"}.items():
        response[name] = value
    return response


async def answer_response(events: AsyncIterator[StreamEvent], *, headers: dict[str, str], sse: bool) -> HttpResponse:
    """The answer as SSE or plain text; a failure before its first token is still a JSON HTTP error."""
    first = await first_event(events)
    if first.type == "error":
        return JsonResponse(first.payload(), status=first.status_code, headers={**headers, **first.headers})
    respond = sse_response if sse else text_response
    return respond(events, first=first, headers=answering_headers(first, headers))


def answering_headers(first: StreamEvent, headers: dict[str, str]) -> dict[str, str]:
    """`headers` with X-Bytchat-Model naming the model that writes the answer (after a failover, not
    the chosen one), when the surface reports it."""
    if first.answered_by is None or "X-Bytchat-Model" not in headers:
        return headers
    return {**headers, "X-Bytchat-Model": f"{first.answered_by.provider}/{first.answered_by.model}"}


async def first_event(events: AsyncIterator[StreamEvent]) -> StreamEvent:
    """The stream's first event; if it is an error, the stream is closed (nothing was sent yet)."""
    first = await anext(events)
    if first.type == "error":
        await events.aclose()
    return first
