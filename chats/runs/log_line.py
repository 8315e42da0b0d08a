"""A run's one log line when it ends (logger `bytchat.runs`, event `run`): ids, surface, model, tokens, time; never
the question's or the answer's text (docs/reliability.md L4)."""

from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.logs import request_id_var, run_id_var
from core.metrics import model_label

if TYPE_CHECKING:
    from chats.runs.runner import LiveRun

logger = logging.getLogger("bytchat.runs")


@dataclass(frozen=True, slots=True)
class RunOrigin:
    """Where a run began: the request (or socket) that started it, when, and the context its task runs in,
    which names the run, so every line logged while it is written carries its id."""

    request_id: str | None
    started: float
    context: contextvars.Context


def run_origin(run_id: str, context: contextvars.Context | None = None) -> RunOrigin:
    """`context`: the one the run's task is to run in (its span's), or else a copy of the current one."""
    context = context if context is not None else contextvars.copy_context()
    context.run(run_id_var.set, run_id)
    return RunOrigin(request_id_var.get(), time.monotonic(), context)


def run_log_line(live: LiveRun, status: str) -> None:
    answer, request, origin = live.answer, live.request, live.origin
    duration_ms = round((time.monotonic() - origin.started) * 1000, 1)
    logger.info(
        "run %s %s in %.0fms",
        live.id,
        status,
        duration_ms,
        extra={
            "event": "run",
            "run_id": live.id,
            "chat_id": str(request.chat.pk),
            "surface": request.surface,
            "status": str(status),
            "provider": answer.spec.provider,
            "model": model_label(answer.spec.model),
            "prompt_tokens": answer.usage.prompt_tokens,
            "completion_tokens": answer.usage.completion_tokens,
            "duration_ms": duration_ms,
            "request_id": origin.request_id,
        },
    )
