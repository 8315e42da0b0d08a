"""HTTP stream responses for a run's events: Server-Sent Events and plain text.

Every HTTP surface that streams an answer (001, 000, 004, /runs/{id}/events) relays through here.
Nothing is buffered: the events ready together are encoded and handed to the server at once, as
they arrive. The response only reads the run: a client that goes away stops reading, and the
answer runs on (docs/runs.md).
"""

from __future__ import annotations

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
from chats.runs.reader import run_batches
from chats.runs.runner import LiveRun
from chats.runs.spans import resume_span
from core import metrics
from core.errors import DomainError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT = b": keep-alive\n\n"
# A run's events a batch at a time (chats/runs/reader.py run_batches); an empty batch is a quiet spell.
Batches = AsyncIterator[list[RunEvent]]


def sse_batches(run: Run, *, after: int = 0) -> Batches:
    """The run's events for an SSE response: an empty batch whenever it is silent for SSE_HEARTBEAT_SECONDS."""
    return run_batches(run, after=after, idle=settings.SSE_HEARTBEAT_SECONDS)


def _sse_of(run_id: str | None, batch: list[RunEvent]) -> bytes:
    if run_id is None:
        return b"".join(item.event.to_sse() for item in batch)
    return b"".join(item.to_sse(run_id) for item in batch)


async def _sse_body(run_id: str | None, first: list[RunEvent], batches: Batches) -> AsyncIterator[bytes]:
    """Encoded events, one write per batch, with a comment line whenever the run is silent for
    SSE_HEARTBEAT_SECONDS. The client going away closes this reader, never the run."""
    async with contextlib.aclosing(batches):
        if first:
            yield _sse_of(run_id, first)
        async for batch in batches:
            yield _sse_of(run_id, batch) if batch else HEARTBEAT


async def _text_body(first: list[RunEvent], batches: Batches) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(batches):
        if first:
            yield b"".join(item.event.to_text() for item in first)
        async for batch in batches:
            if batch:
                yield b"".join(item.event.to_text() for item in batch)


def sse_response(
    run_id: str | None,
    batches: Batches,
    *,
    first: list[RunEvent] | None = None,
    headers: dict[str, str] | None = None,
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _sse_body(run_id, first or [], batches), content_type="text/event-stream; charset=utf-8"
    )
    run_header = {"X-Run-Id": run_id} if run_id else {}
    for name, value in {**(headers or {}), **SSE_HEADERS, **run_header}.items():
        response[name] = value
    return response


def text_response(
    run_id: str,
    batches: Batches,
    *,
    first: list[RunEvent] | None = None,
    headers: dict[str, str] | None = None,
) -> StreamingHttpResponse:
    """The answer as chunked plain text; a failure after the first chunk ends it with an `[error]` line."""
    response = StreamingHttpResponse(_text_body(first or [], batches), content_type="text/plain; charset=utf-8")
    for name, value in {**(headers or {}), "X-Accel-Buffering": "no", "X-Run-Id": run_id}.items():
        response[name] = value
    return response


def event_error_response(event: StreamEvent, headers: dict[str, str]) -> JsonResponse:
    return JsonResponse(event.payload(), status=event.status_code, headers={**headers, **event.headers})


async def answer_response(live: LiveRun, *, headers: dict[str, str], sse: bool) -> HttpResponse:
    """The run's answer as SSE or plain text; a failure before its first token is still a JSON HTTP error."""
    batches = sse_batches(live.run) if sse else run_batches(live.run)
    first = await first_batch(batches)
    if first[0].event.type == "error":
        return event_error_response(first[0].event, {**headers, "X-Run-Id": live.id})
    respond = sse_response if sse else text_response
    return respond(live.id, batches, first=first, headers=answering_headers(first[0].event, headers))


def answering_headers(first: StreamEvent, headers: dict[str, str]) -> dict[str, str]:
    """`headers` with X-Bytchat-Model naming the model that writes the answer (after a failover, not
    the chosen one), when the surface reports it."""
    if first.answered_by is None or "X-Bytchat-Model" not in headers:
        return headers
    return {**headers, "X-Bytchat-Model": f"{first.answered_by.provider}/{first.answered_by.model}"}


async def first_batch(batches: Batches) -> list[RunEvent]:
    """The stream's first events (a new run always has some); if the first is an error, the reader is
    closed (nothing was sent yet)."""
    first = await _first(batches)
    if not first:
        raise StopAsyncIteration
    if first[0].event.type == "error":
        await batches.aclose()
    return first


async def _first(batches: Batches) -> list[RunEvent]:
    """The first non-empty batch, past any quiet spell; empty when the reader has nothing left."""
    async for batch in batches:
        if batch:
            return batch
    return []


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
    transform: Callable[[Batches], Batches] | None = None,
) -> HttpResponse:
    """The run's events after `after` as SSE; 204 when there are none left (the reader has its end),
    which tells a browser's EventSource to stop reconnecting."""
    metrics.run_resumes.labels("http").inc()
    with resume_span(run, after=after, transport="http") as span:
        batches = sse_batches(run, after=after)
        if transform is not None:
            batches = transform(batches)
        first = await _first(batches)
        span.set_attribute("bytchat.run.resume.events", len(first))
    if not first:
        return HttpResponse(status=204, headers={"X-Run-Id": str(run.pk)})
    return sse_response(str(run.pk), batches, first=first, headers=headers)
