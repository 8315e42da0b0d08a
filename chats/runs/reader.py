"""Reading a run: every event after a given position exactly once, then the live ones, then its end.

Every surface reads runs through `run_events`: the socket and the HTTP stream that started a run,
and any reader that resumes one (docs/runs.md). The events come from this process's log when it
writes the run, else from its Redis copy; when neither holds them (expired, trimmed, never copied),
the stored message stands in for them as one `snapshot` event, followed by the run's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from django.conf import settings
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from chats.events import StreamEvent
from chats.exceptions import ChatNotFound
from chats.models import Run, RunStatus
from chats.runs.log import GAP, RedisLog, RunEvent, local_log
from chats.runs.reconcile import interrupted_event, run_interrupt_lapsed
from chats.runs.selectors import run_fresh
from chats.streaming import released
from core import metrics
from core.errors import DomainError
from core.redis_clients import redis_configured

logger = logging.getLogger(__name__)

# A reader waits this long for the next event before it looks at the run's row (has its process died?).
IDLE_CHECK_SECONDS = 2.0


def snapshot_event(text: str) -> StreamEvent:
    return StreamEvent("snapshot", text)


def end_event(run: Run) -> StreamEvent:
    """A finished run's last event, rebuilt from what was stored."""
    message = run.message
    text = message.content if message is not None else ""
    ids = {"chat_id": str(run.chat_id), "parent_id": str(run.question_id)}
    if message is not None:
        ids["message_id"] = str(message.pk)
    if run.status == RunStatus.COMPLETE and message is not None:
        return StreamEvent.done(
            text,
            **ids,
            model=message.model,
            finish_reason=message.finish_reason,
            usage={
                "prompt_tokens": message.prompt_tokens or 0,
                "completion_tokens": message.completion_tokens or 0,
                "total_tokens": (message.prompt_tokens or 0) + (message.completion_tokens or 0),
                "estimated": False,
            },
            citations=message.citations,
        )
    if run.status == RunStatus.CANCELLED:
        return StreamEvent.done(text, **ids, model=message.model if message else "", finish_reason="cancelled")
    if run.status == RunStatus.INTERRUPTED:
        return interrupted_event(text)
    data = {"code": run.error_code or "server_error"}
    if text:
        data.update(partial=text, message_id=ids["message_id"])
    return StreamEvent("error", run.error or _("The answer failed."), data, 500)


def _from_row(run: Run, after: int) -> list[RunEvent]:
    """A finished run's events after `after` as stored: its text as one snapshot, then its end."""
    events = []
    text = run.message.content if run.message is not None else ""
    if after < run.seq - 1 and text:
        events.append(RunEvent(run.seq - 1, snapshot_event(text)))
    if after < run.seq:
        events.append(RunEvent(run.seq, end_event(run)))
    return events


async def run_events(run: Run, *, after: int = 0) -> AsyncIterator[RunEvent]:
    """The run's events after position `after`, each once and in order, ending with `done` or `error`
    (or nothing more, when `after` is already its end)."""
    async with aclosing(run_batches(run, after=after)) as batches:
        async for batch in batches:
            for item in batch:
                yield item


async def run_batches(run: Run, *, after: int = 0, idle: float | None = None) -> AsyncIterator[list[RunEvent]]:
    """`run_events` a batch at a time: the events that are ready together, which a transport writes at
    once (one write, one wake-up per batch rather than per event: issue 15). With `idle`, an empty batch
    after every `idle` seconds without an event (an SSE heartbeat)."""
    loop = asyncio.get_running_loop()
    position = after
    waits = 0
    quiet_since = loop.time()
    while True:
        wait = IDLE_CHECK_SECONDS
        if idle is not None:
            quiet = loop.time() - quiet_since
            if quiet >= idle:
                quiet_since = loop.time()
                yield []
                quiet = 0.0
            wait = min(wait, max(idle - quiet, 0.01))
        batch = await _next_batch(run, position, wait)
        if isinstance(batch, list) and batch:
            waits = 0
            for index, item in enumerate(batch):
                if item.terminal:
                    yield batch[: index + 1]
                    return
            position = batch[-1].seq
            quiet_since = loop.time()
            yield batch
            continue
        log = local_log(str(run.pk))
        if batch == [] and log is not None:
            if log.ended_at is not None:
                return  # the reader already has the run's end
            continue  # written by this process, which is alive: keep waiting
        fresh = await released(run_fresh)(run_id=run.pk)
        if fresh is None:
            exc = ChatNotFound()
            yield [RunEvent(position + 1, StreamEvent.error(exc.message, code=exc.code, status_code=exc.status_code))]
            return
        if fresh.status != RunStatus.RUNNING:
            if position >= fresh.seq:
                return  # the reader already has the run's end
            if batch == [] and waits < 2:
                waits += 1  # the log has not caught up with the row yet: its end is on its way
                continue
            rest = _from_row(fresh, position)
            if rest:
                yield rest
            return
        if await _lapsed(fresh):
            continue  # interrupted now: its end is in its log and its row
        if batch is not GAP and batch is not None:
            continue  # idle but alive
        # Trimmed past this reader, or not copied (yet): the last checkpoint stands in for what is missing.
        if position < fresh.seq and fresh.message is not None:
            metrics.run_gap_fallbacks.inc()
            position = fresh.seq
            quiet_since = loop.time()
            yield [RunEvent(fresh.seq, snapshot_event(fresh.message.content))]
            waits = 0
            continue
        await asyncio.sleep(min(settings.RUN_CHECKPOINT_SECONDS, 0.05 * 2**waits))
        waits += 1


async def _lapsed(run: Run) -> bool:
    """Interrupt the run if its process died; whether it did (its end is then in its log or row)."""
    if local_log(str(run.pk)) is not None or run.lease_expires_at is None:
        return False
    return await released(run_interrupt_lapsed)(run=run) is not None


async def _next_batch(run: Run, position: int, wait: float) -> list[RunEvent] | object | None:
    """The next events: a list (empty after `wait` seconds without one), GAP, or None when no log
    holds this run's events."""
    log = local_log(str(run.pk))
    if log is not None:
        batch = log.since(position)
        if batch == []:
            await log.wait(position, wait)
            # Handed over meanwhile (no log here), or taken over on this process (a new log): chats/runs/resume.py.
            log = local_log(str(run.pk))
            if log is None:
                return None
            batch = log.since(position)
        return batch
    if not redis_configured():
        return None
    try:
        return await RedisLog(str(run.pk)).since(position, block_seconds=wait)
    except (RedisError, OSError):
        logger.warning("could not read the log of run %s; falling back to the stored text", run.pk)
        await asyncio.sleep(settings.RUN_CHECKPOINT_SECONDS)
        return None


async def run_to_end(run: Run) -> StreamEvent:
    """The run's `done` event, for a surface that answers in one piece; its `error` event is raised as
    its DomainError. The run itself ends whether or not this reader stays."""
    async with aclosing(run_events(run)) as events:
        async for item in events:
            if item.event.type == "error":
                event = item.event
                raise DomainError(
                    event.content, code=event.data.get("code"), status_code=event.status_code, headers=event.headers
                )
            if item.event.type == "done":
                return item.event
    raise DomainError(_("The answer ended unexpectedly."), code="server_error", status_code=500)
