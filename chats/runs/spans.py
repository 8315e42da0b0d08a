"""A run's spans (core/tracing.py): the socket frame that starts or resumes one, the run itself, and
every reader that resumes it, on any process."""

from __future__ import annotations

from contextlib import AbstractContextManager

from chats.events import StreamEvent
from chats.models import Run
from core import tracing


def run_attributes(run: Run) -> tracing.Attributes:
    return {"bytchat.run.id": str(run.pk), "gen_ai.conversation.id": str(run.chat_id), "bytchat.surface": run.surface}


def run_span_end(span: tracing.SpanLike, last: StreamEvent, *, events: int) -> None:
    """The run's span ends as the answer did: `done` with its finish reason, or `error` with its code
    (failed when the server or the model failed; a stop or a stopping process is not a failure)."""
    span.set_attribute("bytchat.run.events", events)
    if last.type == "done":
        span.set_attribute("bytchat.run.finish_reason", str(last.data.get("finish_reason", "")))
    else:
        code = str(last.data.get("code", "error"))
        tracing.span_failed(span, code, failed=last.status_code >= 500 and code != "interrupted")
    span.end()


def resume_span(run: Run, *, after: int, transport: str) -> AbstractContextManager[tracing.SpanLike]:
    """A reader resuming `run`: in the run's trace whichever process serves it (the traceparent stored
    with the run), linked to the request or frame that asked."""
    return tracing.span(
        "bytchat.run.resume",
        attributes={**run_attributes(run), "bytchat.run.resume.after": after, "bytchat.transport": transport},
        parent=run.trace_parent,
        link_current=True,
    )


def frame_span(frame_type: str, *, route: str, chat_id: object) -> AbstractContextManager[tracing.SpanLike]:
    """A socket's `message` or `resume` frame, the root of its own trace: a span per connection would
    last as long as the socket."""
    return tracing.request_span(
        f"websocket {frame_type}",
        attributes={"http.route": route, "bytchat.ws.frame.type": frame_type, "gen_ai.conversation.id": str(chat_id)},
    )
