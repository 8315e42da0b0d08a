"""Runs whose process died: marked `interrupted` by whichever process notices first (docs/reliability.md E12).

A run's lease is renewed every RUN_LEASE_RENEW_SECONDS by the process writing it (chats/runs/keeper.py).
Once it has lapsed, the run is marked `interrupted` with the text of its last checkpoint, its Redis
log gets the terminal `error` event (code `interrupted`) that its readers wait for, and the chat is
free again. Its stream and socket slots lapse on their own (core/slots.py).
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from redis.exceptions import RedisError, ResponseError

from chats.events import StreamEvent
from chats.models import Run, RunStatus
from chats.runs.log import RunEvent, _stream_key, encode, local_log
from chats.runs.selectors import run_fresh
from chats.runs.services import run_interrupt, runs_expired
from core.redis_clients import redis_configured, sync_redis

logger = logging.getLogger(__name__)


def interrupted_event(text: str) -> StreamEvent:
    return StreamEvent(
        "error",
        _("The server process writing this answer stopped; what was written before is kept."),
        {"code": "interrupted", "partial": text},
        503,
    )


def _log_last_seq(run_id: uuid.UUID) -> int:
    if not redis_configured():
        return 0
    try:
        entries = sync_redis().xrevrange(_stream_key(str(run_id)), count=1)
    except RedisError:
        return 0
    return int(entries[0][0].decode().split("-", 1)[0]) if entries else 0


def run_interrupt_lapsed(run: Run) -> RunEvent | None:
    """Interrupt `run` if its lease has lapsed (and this process is not writing it); the terminal
    event it was given, or None when it was not interrupted here."""
    if local_log(str(run.pk)) is not None:
        return None  # this process writes it: its keeper renews the lease
    seq = max(run.seq, _log_last_seq(run.pk)) + 1
    if not run_interrupt(run=run, seq=seq):
        return None
    text = run.message.content if run.message_id is not None and run.message is not None else ""
    event = interrupted_event(text)
    logger.warning("run %s of chat %s interrupted: its process stopped renewing its lease", run.pk, run.chat_id)
    if redis_configured():
        key = _stream_key(str(run.pk))
        try:
            sync_redis().xadd(key, {"e": encode(event)}, id=f"{seq}-0")
            sync_redis().expire(key, settings.RUN_LOG_TTL_SECONDS)
        except ResponseError:
            pass  # the log has a later event: its writer is alive after all, and readers get its end
        except RedisError:
            logger.warning("could not write the interruption of run %s to its log", run.pk)
    return RunEvent(seq, event)


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
