"""Reads on runs: a run its reader may see, and whether a chat is answering."""

from __future__ import annotations

import uuid

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import Run, RunStatus
from core.errors import NotFound


class RunNotFound(NotFound):
    code = "run_not_found"

    def default_message(self) -> str:
        return _("Run not found.")


def chat_answering(chat_id: uuid.UUID) -> bool:
    """A run is writing an answer in the chat (one whose process died does not count)."""
    return Run.objects.filter(chat_id=chat_id, status=RunStatus.RUNNING, lease_expires_at__gte=timezone.now()).exists()


def run_get(*, run_id: uuid.UUID | str, user: User | None = None, visitor_id: uuid.UUID | None = None) -> Run:
    """A run of the user's own chats (any surface, /v1 included), or of a widget visitor's chats; any
    other run, or an id that is not one, is a 404 (docs/reliability.md A1)."""
    try:
        run_id = uuid.UUID(str(run_id))
    except ValueError:
        raise RunNotFound() from None
    runs = Run.objects.select_related("message", "chat__bot")
    if visitor_id is not None:
        runs = runs.filter(chat__visitor_id=visitor_id)
    elif user is not None:
        runs = runs.filter(owner=user, chat__visitor_id__isnull=True)
    else:
        raise RunNotFound()
    run = runs.filter(pk=run_id).first()
    if run is None:
        raise RunNotFound()
    return run


def run_fresh(*, run_id: uuid.UUID) -> Run | None:
    """The run as stored now (None once its chat was deleted)."""
    return Run.objects.select_related("message").filter(pk=run_id).first()


def chat_running_run(*, chat_id: uuid.UUID) -> Run | None:
    return Run.objects.select_related("message").filter(chat_id=chat_id, status=RunStatus.RUNNING).first()


def runs_to_stop(*, holder: str) -> list[uuid.UUID]:
    """Runs `holder` writes that a reader on another process asked to stop (POST /runs/{id}/stop)."""
    running = Run.objects.filter(lease_holder=holder, status=RunStatus.RUNNING, stop_requested=True)
    return list(running.values_list("pk", flat=True))
