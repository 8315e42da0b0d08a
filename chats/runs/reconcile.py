"""Runs whose process died: marked `interrupted` by whichever process notices first (docs/reliability.md E12).

A run's lease is renewed every RUN_LEASE_RENEW_SECONDS by the process writing it (chats/runs/keeper.py).
Once it has lapsed, the run is marked `interrupted` with the text of its last checkpoint, its Redis
log gets the terminal `error` event (code `interrupted`) that its readers wait for, and the chat is
free again. Its stream and socket slots lapse on their own (core/slots.py).
"""

from __future__ import annotations

import logging
import uuid

from django.utils import timezone

from chats.events import StreamEvent
from chats.models import Run, RunStatus
from chats.runs.log import RunEvent, local_log, redis_log_end, redis_log_last_seq
from chats.runs.selectors import run_fresh
from chats.runs.services import interrupted_reason, run_interrupt, runs_expired
from core import metrics
from core.redis_clients import redis_configured

logger = logging.getLogger(__name__)


def interrupted_event(text: str) -> StreamEvent:
    return StreamEvent("error", interrupted_reason(), {"code": "interrupted", "partial": text}, 503)


def run_interrupt_lapsed(run: Run) -> RunEvent | None:
    """Interrupt `run` if its lease has lapsed (and this process is not writing it); the terminal
    event it was given, or None when it was not interrupted here."""
    if local_log(str(run.pk)) is not None:
        return None  # this process writes it: its keeper renews the lease
    seq = max(run.seq, redis_log_last_seq(str(run.pk)) if redis_configured() else 0) + 1
    if not run_interrupt(run=run, seq=seq):
        return None
    text = run.message.content if run.message_id is not None and run.message is not None else ""
    end = RunEvent(seq, interrupted_event(text))
    metrics.runs_ended.labels(run.surface, RunStatus.INTERRUPTED).inc()
    logger.warning("run %s of chat %s interrupted: its process stopped renewing its lease", run.pk, run.chat_id)
    if redis_configured():
        redis_log_end(str(run.pk), end)
    return end


def runs_reconcile(*, chat_id: uuid.UUID | None = None) -> int:
    """Interrupt every run (of `chat_id`, or all) whose lease lapsed; how many were interrupted."""
    return sum(1 for run in runs_expired(chat_id=chat_id) if run_interrupt_lapsed(run) is not None)


def run_as_it_stands(run: Run) -> Run:
    """`run`, interrupted first if its process died: the first process asked about a run sees its end,
    even where no keeper runs (docs/reliability.md E12)."""
    lapsed = run.status == RunStatus.RUNNING and run.lease_expires_at and run.lease_expires_at < timezone.now()
    if lapsed and run_interrupt_lapsed(run) is not None:
        return run_fresh(run_id=run.pk) or run
    return run
