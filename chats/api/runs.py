"""Runs: an answer's state, its events (SSE, resumable) and its stop, for whoever asked for it (docs/runs.md).

`GET /runs/{run_id}`, `GET /runs/{run_id}/events` and `POST /runs/{run_id}/stop` take the caller's
access token (header or `?token=`, as EventSource needs), a personal API key, or a widget visitor's
`Authorization: Visitor <token>`. Only the caller's own runs exist for it: any other is a 404.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from accounts.authentication import authenticate_bearer_or_query
from chats.api.streams import resume_point, resume_response
from chats.models import Run
from chats.runs.log import RunEvent, local_log
from chats.runs.reconcile import run_as_it_stands
from chats.runs.resume import run_decided
from chats.runs.runner import run_stop
from chats.runs.selectors import RunNotFound, run_fresh, run_get
from chats.streaming import released
from chats.visitors import visitor_from_token, visitor_run_event
from core.api.async_views import async_api_view, json_body
from core.cors import cors_allow
from core.paths import UUID
from tools.approvals import approval_decide, approval_decision_parse
from tools.models import Decision, ToolCall
from tools.runtime import approval_notify
from tools.selectors import approval_payload, run_pending_approvals


@dataclasses.dataclass(frozen=True, slots=True)
class RunReader:
    run: Run
    visitor: bool


def _reader(*, request: HttpRequest, run_id: str) -> RunReader:
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Visitor":
        visitor = visitor_from_token(token.strip())
        if visitor is None:
            raise RunNotFound()
        run = run_get(run_id=run_id, visitor_id=visitor.id)
        if visitor_from_token(token.strip(), bot=run.chat.bot) is None:  # the bot's key changed since
            raise RunNotFound()
        return RunReader(run_as_it_stands(run), visitor=True)
    return RunReader(
        run_as_it_stands(run_get(run_id=run_id, user=authenticate_bearer_or_query(request))), visitor=False
    )


def run_payload(run: Run) -> dict[str, Any]:
    message = run.message
    live = local_log(str(run.pk))
    return {
        "run_id": str(run.pk),
        "status": run.status,
        # This process's log is ahead of the last checkpoint while the run is written here.
        "seq": max(run.seq, live.last_seq) if live is not None else run.seq,
        "chat_id": str(run.chat_id),
        "question_id": str(run.question_id),
        "message_id": str(message.pk) if message is not None else None,
        "content": message.content if message is not None else "",
        "finish_reason": message.finish_reason if message is not None else "",
        "error": run.error,
        "error_code": run.error_code,
        "surface": run.surface,
        "created_at": run.created_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        # Tool calls waiting for the user's decision (docs/tools.md): a client that reloads shows them again.
        "approvals": [approval_payload(call) for call in run_pending_approvals(run_id=run.pk)],
    }


async def _for_visitor(batches: AsyncIterator[list[RunEvent]]) -> AsyncIterator[list[RunEvent]]:
    """A visitor sees a citation's document and page, not the owner's internal ids."""
    async with aclosing(batches):
        async for batch in batches:
            yield [visitor_run_event(item) for item in batch]


@async_api_view("GET")
async def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    reader = await released(_reader)(request=request, run_id=run_id)
    return JsonResponse(await released(run_payload)(run=reader.run))


@async_api_view("GET")
async def run_events_stream(request: HttpRequest, run_id: str) -> HttpResponse:
    reader = await released(_reader)(request=request, run_id=run_id)
    resume = resume_point(request, run_id=reader.run.pk)
    after = resume.after if resume is not None else 0
    transform = _for_visitor if reader.visitor else None
    return await resume_response(reader.run, after=after, transform=transform)


@async_api_view("POST")
async def run_stop_view(request: HttpRequest, run_id: str) -> HttpResponse:
    reader = await released(_reader)(request=request, run_id=run_id)
    await run_stop(reader.run)
    fresh = await released(run_fresh)(run_id=reader.run.pk)
    if fresh is None:
        raise RunNotFound()
    return JsonResponse(await released(run_payload)(run=fresh))


def _decide(*, request: HttpRequest, run_id: str, approval_id: str) -> tuple[ToolCall, uuid.UUID]:
    reader = _reader(request=request, run_id=run_id)
    decision = approval_decision_parse(json_body(request))
    user = None if reader.visitor else reader.run.owner_id
    call = approval_decide(
        run_id=reader.run.pk,
        approval_id=approval_id,
        approve=decision.approve,
        arguments=decision.arguments,
        by=Decision.VISITOR if reader.visitor else Decision.USER,
        user_id=user,
    )
    return call, reader.run.pk


def _visitor_cors(view: Callable[..., Awaitable[HttpResponse]]) -> Callable[..., Awaitable[HttpResponse]]:
    """The widget decides an approval over REST when its socket is down, from the page that embeds it:
    any origin may ask (a preflight gets 204), as the widget's own endpoints allow; the visitor's token,
    not a cookie, is what authorizes the request (docs/widget.md)."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(status=204) if request.method == "OPTIONS" else await view(request, *args, **kwargs)
        return cors_allow(response, request.headers.get("Origin"), "POST, OPTIONS")

    return csrf_exempt(wrapper)


@_visitor_cors
@async_api_view("POST")
async def run_approval_decide(request: HttpRequest, run_id: str, approval_id: str) -> HttpResponse:
    """Approve (optionally with edited `arguments`) or reject a tool call the run waits on (docs/tools.md)."""
    call, run_pk = await released(_decide)(request=request, run_id=run_id, approval_id=approval_id)
    approval_notify(call.pk)
    run_decided(run_pk)
    return JsonResponse(approval_payload(call))


urlpatterns = [
    re_path(rf"^runs/(?P<run_id>{UUID})/?$", run_detail, name="run-detail"),
    re_path(rf"^runs/(?P<run_id>{UUID})/events/?$", run_events_stream, name="run-events"),
    re_path(rf"^runs/(?P<run_id>{UUID})/stop/?$", run_stop_view, name="run-stop"),
    re_path(
        rf"^runs/(?P<run_id>{UUID})/approvals/(?P<approval_id>{UUID})/?$", run_approval_decide, name="run-approval"
    ),
]
