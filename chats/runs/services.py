"""Writes on runs: the rows an answer starts with, its checkpoints, its end, and runs whose process died."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import CallRecord, model_calls_record
from bots.llm.embeddings import embeddings_enabled
from chats.models import Chat, Message, MessageStatus, Role, Run, RunStatus
from chats.runs.process import process_id
from chats.search.embeddings import message_embeddings_schedule
from core.tracing import current_traceparent
from tools.approvals import approvals_close
from tools.models import ToolCall, ToolCallStatus


def interrupted_reason() -> str:
    return _("The server process writing this answer stopped; what was written before is kept.")


def lease_expiry() -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=settings.RUN_LEASE_SECONDS)


def run_rows_create(
    *, chat: Chat, question: Message, surface: str, run_id: uuid.UUID, new_question: bool = False
) -> tuple[Message, Run]:
    """The answer's message (status `streaming`) and its run, leased to this process, and with
    `new_question` the question too (one INSERT for both messages); call inside the transaction that
    stores the turn, which a chat already running an answer rolls back with an IntegrityError (one
    running run per chat: the chat's answer lock)."""
    answer = Message(chat=chat, parent=question, role=Role.ASSISTANT, status=MessageStatus.STREAMING)
    Message.objects.bulk_create([question, answer] if new_question else [answer])
    run = Run(
        id=run_id,
        chat=chat,
        question=question,
        message=answer,
        owner_id=chat.owner_id,
        surface=surface,
        lease_holder=process_id(),
        lease_expires_at=lease_expiry(),
        trace_parent=current_traceparent(),
    )
    run.save(force_insert=True)
    return answer, run


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A run's text so far, and the position it stands for."""

    run_id: uuid.UUID
    message_id: uuid.UUID
    text: str
    seq: int


def runs_checkpoint(*, checkpoints: Sequence[Checkpoint]) -> set[uuid.UUID]:
    """Several runs' text so far, on one connection; the runs that must stop here instead (a stop was
    asked through another process, or the run is no longer this process's).

    A transaction per run: one holding several runs' rows deadlocked on PostgreSQL with the keeper's
    lease renewal, one UPDATE that locks all of the process's runs in its own order (bench/relay.py
    --cluster)."""
    refused = set()
    for checkpoint in checkpoints:
        with transaction.atomic():
            kept = Run.objects.filter(pk=checkpoint.run_id, status=RunStatus.RUNNING, stop_requested=False).update(
                seq=checkpoint.seq
            )
            if kept:
                Message.objects.filter(pk=checkpoint.message_id).update(content=checkpoint.text)
            else:
                refused.add(checkpoint.run_id)
    return refused


class RunFate(enum.Enum):
    STORED = "stored"
    GONE = "gone"  # deleted with its chat
    TAKEN = "taken"  # ended by another process (its lease lapsed)
    HANDED_OVER = "handed over"  # its process stopped while it waited for a tool approval (run_hand_over)


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a run ended, as stored: the run's status and last position, and the answer's final fields
    (None: the answer wrote nothing and failed, so its message is removed)."""

    status: RunStatus
    seq: int
    message: dict[str, Any] | None
    error_code: str = ""
    error: str = ""
    # It called tools: approvals it still waits on are closed with it (an answer without tools costs no query).
    used_tools: bool = False


def run_finish(
    *,
    run: Run,
    end: RunEnd,
    calls: Sequence[CallRecord],
    user_id: int,
    surface: str,
) -> RunFate:
    """The answer and its run in their final state, with the model calls behind it, in one
    transaction; the chat's answer lock goes with the run's status. When the run is no longer this
    process's (deleted with its chat, or interrupted), only the calls are stored."""
    now = timezone.now()
    with transaction.atomic():
        ended = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=end.status,
            seq=end.seq,
            ended_at=now,
            lease_holder="",
            error_code=end.error_code[:64],
            error=end.error[:500],
        )
        if ended:
            if end.message is None:
                _answer_row_remove(run)
            else:
                Message.objects.filter(pk=run.message_id).update(**end.message)
        if calls:
            model_calls_record(user_id=user_id, surface=surface, calls=calls)
        if ended and end.used_tools:
            approvals_close(run_id=run.pk)
        if ended:
            if embeddings_enabled():  # without a provider a turn registers nothing
                transaction.on_commit(message_embeddings_schedule)
            return RunFate.STORED
        return RunFate.TAKEN if Run.objects.filter(pk=run.pk).exists() else RunFate.GONE


def run_abandon(*, run: Run) -> None:
    """A run whose turn failed before it was launched: its answer's row and the run go, the question stays."""
    with transaction.atomic():
        _answer_row_remove(run)
        Run.objects.filter(pk=run.pk).delete()


def _answer_row_remove(run: Run) -> None:
    """The answer's row goes (it wrote nothing); the chat points at the question again."""
    Message.objects.filter(pk=run.message_id).delete()
    Chat.objects.filter(pk=run.chat_id, current_node__isnull=True).update(current_node=run.question_id)


def run_adopt(*, run_id: uuid.UUID) -> Run | None:
    """Take over a running run whose lease lapsed (its process died while it waited for a tool approval);
    None if it is not running, or its lease holds."""
    taken = Run.objects.filter(
        pk=run_id, status=RunStatus.RUNNING, lease_expires_at__lt=timezone.now(), stop_requested=False
    ).update(lease_holder=process_id(), lease_expires_at=lease_expiry())
    if not taken:
        return None
    return Run.objects.select_related("message", "question", "chat__bot", "owner").get(pk=run_id)


def run_end_unheld(*, run_id: uuid.UUID, status: RunStatus, error_code: str = "", error: str = "") -> bool:
    """End a run no process holds (its lease lapsed while it waited for a tool approval), keeping its
    text: stopped (`cancelled`), or failed when it could not be taken up (`error`). False if a process
    holds it meanwhile or it ended."""
    finish_reason = "cancelled" if status == RunStatus.CANCELLED else "error"
    with transaction.atomic():
        ended = Run.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, lease_expires_at__lt=timezone.now()
        ).update(
            status=status,
            seq=F("seq") + 1,  # its last event: its readers rebuild it from the row
            ended_at=timezone.now(),
            lease_holder="",
            error_code=error_code[:64],
            error=error[:500],
        )
        if not ended:
            return False
        Message.objects.filter(run__pk=run_id).update(
            status=MessageStatus(status), finish_reason=finish_reason, error=error[:500]
        )
        approvals_close(run_id=run_id)
    return True


def run_hand_over(*, run: Run, calls: Sequence[CallRecord], user_id: int, surface: str) -> None:
    """This process is stopping while the run waits for a tool approval: it is left `running` with its
    lease lapsed (not interrupted) and the model calls made so far recorded, for the process that takes
    the decision to go on with it (chats/runs/resume.py)."""
    with transaction.atomic():
        Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, lease_holder=process_id()).update(
            lease_holder="", lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        if calls:
            model_calls_record(user_id=user_id, surface=surface, calls=calls)


def runs_lease_renew(*, holder: str) -> int:
    """Push back the lease of every run this process is writing: one statement for all of them."""
    return Run.objects.filter(lease_holder=holder, status=RunStatus.RUNNING).update(lease_expires_at=lease_expiry())


def run_stop_request(*, run: Run) -> bool:
    """Ask the process writing `run` to stop it (it reads the flag at its next checkpoint or beat)."""
    return bool(Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(stop_requested=True))


def run_interrupt(*, run: Run, seq: int) -> bool:
    """Mark a run whose lease lapsed as `interrupted` at position `seq`, keeping its checkpointed text;
    False if it ended meanwhile (or its process renewed it)."""
    with transaction.atomic():
        interrupted = (
            Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, lease_expires_at__lt=timezone.now())
            .exclude(Q(Exists(_awaiting_decision())) & Q(stop_requested=False))
            .update(status=RunStatus.INTERRUPTED, seq=seq, ended_at=timezone.now(), error_code="interrupted")
        )
        if interrupted:
            approvals_close(run_id=run.pk)
        if interrupted and run.message_id is not None:
            Message.objects.filter(pk=run.message_id).update(
                status=MessageStatus.INTERRUPTED,
                finish_reason="interrupted",
                error=interrupted_reason(),
            )
    return bool(interrupted)


def _awaiting_decision() -> QuerySet:
    """A run's tool call that keeps it alive without a process (docs/tools.md): one waiting for its
    approval, in time, or one decided lately whose run is being taken up again (chats/runs/resume.py)."""
    now = timezone.now()
    recently = now - datetime.timedelta(seconds=4 * settings.RUN_LEASE_SECONDS)
    return ToolCall.objects.filter(run_id=OuterRef("pk")).filter(
        Q(status=ToolCallStatus.PENDING, expires_at__gt=now)
        | Q(status__in=(ToolCallStatus.APPROVED, ToolCallStatus.REJECTED), result="", decided_at__gt=recently)
    )


def runs_expired(*, chat_id: uuid.UUID | None = None, limit: int = 100) -> list[Run]:
    """Running runs whose process stopped renewing their lease (a run waiting for a tool approval waits on)."""
    runs = Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=timezone.now()).exclude(
        Q(Exists(_awaiting_decision())) & Q(stop_requested=False)
    )
    if chat_id is not None:
        runs = runs.filter(chat_id=chat_id)
    return list(runs.select_related("message")[:limit])
