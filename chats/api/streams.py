"""HTTP stream responses for a run's events: Server-Sent Events and plain text.

Every HTTP surface that streams an answer (001, 000, 004, /runs/{id}/events) relays through here.
Nothing is buffered: each event is encoded and handed to the server as it arrives. The response
only reads the run: a client that goes away stops reading, and the answer runs on (docs/runs.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.translation import gettext as _

from chats.events import StreamEvent
from chats.models import Run
from chats.runs.log import RunEvent
from chats.runs.reader import run_events
from chats.runs.runner import LiveRun
from core.errors import DomainError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT = b": keep-alive\n\n"


async def _sse_body(
    run_id: str | None, first: RunEvent | None, events: AsyncIterator[RunEvent]
) -> AsyncIterator[bytes]:
    """Encoded events, with a comment line whenever the run is silent for SSE_HEARTBEAT_SECONDS.

    The next event is awaited in a task that a heartbeat does not cancel; only the client going
    away does, which ends this reader (never the run).
    """
    async with contextlib.aclosing(events):
        if first is not None:
            yield first.event.to_sse(run_id, first.seq)
        pending: asyncio.Future[RunEvent] | None = None
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
                    item = finished.result()
                except StopAsyncIteration:
                    return
                yield item.event.to_sse(run_id, item.seq)
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending


async def _text_body(first: RunEvent | None, events: AsyncIterator[RunEvent]) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(events):
        if first is not None:
            yield first.event.to_text()
        async for item in events:
            yield item.event.to_text()


def sse_response(
    run_id: str | None,
    events: AsyncIterator[RunEvent],
    *,
    first: RunEvent | None = None,
    headers: dict[str, str] | None = None,
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_sse_body(run_id, first, events), content_type="text/event-stream; charset=utf-8")
    run_header = {"X-Run-Id": run_id} if run_id else {}
    for name, value in {**(headers or {}), **SSE_HEADERS, **run_header}.items():
        response[name] = value
    return response


def text_response(
    run_id: str,
    events: AsyncIterator[RunEvent],
    *,
    first: RunEvent | None = None,
    headers: dict[str, str] | None = None,
) -> StreamingHttpResponse:
    """The answer as chunked plain text; a failure after the first chunk ends it with an `[error]` line."""
    response = StreamingHttpResponse(_text_body(first, events), content_type="text/plain; charset=utf-8")
    for name, value in {**(headers or {}), "X-Accel-Buffering": "no", "X-Run-Id": run_id}.items():
        response[name] = value
    return response


def event_error_response(event: StreamEvent, headers: dict[str, str]) -> JsonResponse:
    return JsonResponse(event.payload(), status=event.status_code, headers={**headers, **event.headers})


async def answer_response(live: LiveRun, *, headers: dict[str, str], sse: bool) -> HttpResponse:
    """The run's answer as SSE or plain text; a failure before its first token is still a JSON HTTP error."""
    events = run_events(live.run)
    first = await first_event(events)
    if first.event.type == "error":
        return event_error_response(first.event, {**headers, "X-Run-Id": live.id})
    respond = sse_response if sse else text_response
    return respond(live.id, events, first=first, headers=answering_headers(first.event, headers))


def answering_headers(first: StreamEvent, headers: dict[str, str]) -> dict[str, str]:
    """`headers` with X-Bytchat-Model naming the model that writes the answer (after a failover, not
    the chosen one), when the surface reports it."""
    if first.answered_by is None or "X-Bytchat-Model" not in headers:
        return headers
    return {**headers, "X-Bytchat-Model": f"{first.answered_by.provider}/{first.answered_by.model}"}


async def first_event(events: AsyncIterator[RunEvent]) -> RunEvent:
    """The stream's first event; if it is an error, the reader is closed (nothing was sent yet)."""
    first = await anext(events)
    if first.event.type == "error":
        await events.aclose()
    return first


@dataclass(frozen=True, slots=True)
class ResumePoint:
    run_id: uuid.UUID
    after: int


def resume_point(request: HttpRequest, *, run_id: uuid.UUID | None = None) -> ResumePoint | None:
    """Where a reader resumes: the `Last-Event-ID` header a browser's EventSource sends back
    (`<run_id>:<seq>`, or only `<seq>` when the URL names the run), or `?after=N`; None when neither
    is given. A malformed one is a 400 naming it."""
    value = request.headers.get("Last-Event-ID", "").strip()
    if not value and run_id is not None and "after" in request.GET:
        value = request.GET["after"].strip()
    if not value:
        return None
    named, _colon, position = value.rpartition(":")
    try:
        resumed = uuid.UUID(named) if named else run_id
        after = int(position)
    except ValueError:
        resumed, after = None, -1
    if resumed is None or not 0 <= after < 2**31 or (run_id is not None and resumed != run_id):
        raise DomainError(
            _("Last-Event-ID (or after) must be <run_id>:<seq> as the stream sent it, with a sequence number ≥ 0."),
            code="invalid_last_event_id",
        )
    return ResumePoint(resumed, after)


async def resume_response(
    run: Run,
    *,
    after: int,
    headers: dict[str, str] | None = None,
    transform: Callable[[AsyncIterator[RunEvent]], AsyncIterator[RunEvent]] | None = None,
) -> HttpResponse:
    """The run's events after `after` as SSE; 204 when there are none left (the reader has its end),
    which tells a browser's EventSource to stop reconnecting."""
    events = run_events(run, after=after)
    if transform is not None:
        events = transform(events)
    first = await anext(events, None)
    if first is None:
        return HttpResponse(status=204, headers={"X-Run-Id": str(run.pk)})
    return sse_response(str(run.pk), events, first=first, headers=headers)
