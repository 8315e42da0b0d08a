"""Runs taken up again: a run whose process died while it waited for a tool approval is not lost. It
stays `running` (the chat waits with it) while its approval is pending, in time; once decided, the
process that took the decision, or any that notices the lapsed lease, takes the run over and goes on
from the events it had logged (docs/tools.md, docs/reliability.md N5)."""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid

from django.utils import timezone
from django.utils.translation import gettext as _

from chats.models import Run, RunStatus
from chats.runs.log import redis_log_last_seq
from chats.runs.process import process_id
from chats.runs.runner import LiveRun, live_run, run_launch
from chats.runs.selectors import run_fresh
from chats.runs.services import run_adopt, run_end_unheld
from chats.services import turn_resume
from chats.streaming import released
from chats.types import ReplyRequest
from core.errors import DomainError
from core.redis_clients import redis_configured

logger = logging.getLogger(__name__)

_watching: dict[uuid.UUID, asyncio.Task] = {}


def _take_over(run_id: uuid.UUID) -> ReplyRequest | None:
    run = run_adopt(run_id=run_id)
    if run is None:
        return None
    if redis_configured():  # its events go on after the last one the dead process copied to Redis
        run.seq = max(run.seq, redis_log_last_seq(str(run.pk)))
    try:
        return turn_resume(run=run)
    except Exception as exc:  # its bot's model is gone, say: it ends `error`, the chat is free
        logger.warning("run %s could not be taken over: %s", run_id, exc)
        lapsed = timezone.now() - datetime.timedelta(seconds=1)
        Run.objects.filter(pk=run_id, lease_holder=process_id()).update(lease_expires_at=lapsed)
        message = exc.message if isinstance(exc, DomainError) else _("The answer could not go on after the approval.")
        run_end_unheld(
            run_id=run_id, status=RunStatus.ERROR, error_code=getattr(exc, "code", "server_error"), error=message
        )
        return None


async def run_take_up(run_id: uuid.UUID) -> LiveRun | None:
    """Go on with the run here if its lease lapsed (its process died); None if it runs elsewhere or ended."""
    if live_run(run_id) is not None:
        return None
    request = await released(_take_over)(run_id=run_id)
    if request is None:
        return None
    logger.warning("run %s taken over: its process stopped while it waited for a tool approval", run_id)
    return run_launch(request)


async def _watch(run_id: uuid.UUID) -> None:
    """Until the run is written again (by its own process, or taken over here once its lease lapses)."""
    seq = None
    while True:
        run: Run | None = await released(run_fresh)(run_id=run_id)
        if run is None or run.status != RunStatus.RUNNING or live_run(run_id) is not None:
            return
        if seq is not None and run.seq != seq:
            return  # its process is alive and went on
        seq = run.seq
        if run.lease_expires_at is not None and run.lease_expires_at <= timezone.now():
            await run_take_up(run_id)
            return
        wait = (run.lease_expires_at - timezone.now()).total_seconds() if run.lease_expires_at else 1.0
        await asyncio.sleep(min(max(wait, 0.05) + 0.05, 5.0))


def run_decided(run_id: uuid.UUID) -> None:
    """A decision was taken on this process for a run this process does not write: it is taken over here
    once its lease lapses, unless its own process goes on first (one watcher a run)."""
    if live_run(run_id) is not None or run_id in _watching:
        return
    task = asyncio.get_running_loop().create_task(_watch(run_id), name=f"take up run {run_id}")
    _watching[run_id] = task
    task.add_done_callback(lambda done: _watched(run_id, done))


def _watched(run_id: uuid.UUID, task: asyncio.Task) -> None:
    _watching.pop(run_id, None)
    if not task.cancelled() and task.exception() is not None:
        logger.error("run %s: taking it over failed", run_id, exc_info=task.exception())
