"""Client frames of the chat-session socket, parsed and checked. Pure functions: no database, no network."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from django.utils.translation import gettext as _

from chats.feedback.input import FeedbackInput, feedback_input_parse
from core.errors import DomainError
from core.text import text_problem
from tools.approvals import DecisionRequest, approval_decision_parse

FrameType = Literal["message", "stop", "resume", "approval", "feedback"]
FIELDS: dict[str, set[str]] = {
    "message": {"type", "content", "context"},
    "stop": {"type"},
    "resume": {"type", "run_id", "after"},
    "approval": {"type", "run_id", "approval_id", "decision", "arguments"},
    "feedback": {"type", "message_id", "rating", "tags", "comment"},
}


class FrameError(DomainError):
    """A frame the client got wrong: answered with an error frame, the socket stays open."""

    code = "invalid_frame"


@dataclass(frozen=True, slots=True)
class ClientFrame:
    type: FrameType
    content: str = ""
    context: dict[str, Any] | None = None
    # A `resume`: the run, and the last sequence number the client saw (0: from the start).
    run_id: uuid.UUID | None = None
    after: int = 0
    # An `approval` (docs/tools.md): the tool call decided, and how (its run: `run_id`, or the one running).
    approval_id: uuid.UUID | None = None
    decision: DecisionRequest | None = None
    # A `feedback` (docs/feedback.md): the answer rated, and the rating (None: cleared).
    message_id: uuid.UUID | None = None
    feedback: FeedbackInput | None = None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_frame(*, text: str | None, data: bytes | None, max_bytes: int, max_chars: int) -> ClientFrame:
    """A `message` (non-empty `content`, optional `context` object), a `stop`, or a `resume` (`run_id`,
    optional `after` ≥ 0); else FrameError.

    The size is checked on the raw text before it is parsed (docs/reliability.md E5).
    """
    if text is None:
        raise FrameError(_("Binary frames are not supported; send JSON text frames."), code="binary_frame")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise FrameError(
            _("The frame is too large (%(size)d bytes; at most %(max)d).") % {"size": size, "max": max_bytes},
            code="frame_too_large",
        )
    try:
        body = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise FrameError(_("The frame is not valid JSON."), code="invalid_json") from exc
    if not isinstance(body, dict):
        raise FrameError(_("A frame must be a JSON object with a type."), code="invalid_frame")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise FrameError(
            _(
                'Unknown frame type; send {"type": "message", "content": ...}, {"type": "stop"}, '
                '{"type": "resume", "run_id": ..., "after": ...}, '
                '{"type": "approval", "approval_id": ..., "decision": "approve" or "reject"} '
                'or {"type": "feedback", "message_id": ..., "rating": "up" or "down"}.'
            ),
            code="unknown_type",
        )
    unknown = sorted(set(body) - FIELDS[kind])
    if unknown:
        raise FrameError(
            _("Unknown field(s) in a %(type)s frame: %(fields)s.")
            % {"type": kind, "fields": ", ".join(name[:40] for name in unknown[:5])},
            code="unknown_field",
        )
    if kind == "stop":
        return ClientFrame(type="stop")
    if kind == "resume":
        return _resume_frame(body)
    if kind == "approval":
        return _approval_frame(body)
    if kind == "feedback":
        return _feedback_frame(body)
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise FrameError(_("content must be a non-empty string."), code="empty_content")
    content = content.strip()
    if problem := text_problem(content):
        raise FrameError(_("content: %(problem)s") % {"problem": problem}, code="invalid_characters")
    if len(content) > max_chars:
        raise FrameError(
            _("content is too long (%(length)d characters; at most %(max)d).")
            % {"length": len(content), "max": max_chars},
            code="content_too_long",
        )
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise FrameError(
            _("context must be a JSON object whose values are numbers, booleans or null."), code="invalid_context"
        )
    return ClientFrame(type="message", content=content, context=context)


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _approval_frame(body: dict[str, Any]) -> ClientFrame:
    approval_id = _uuid_or_none(body.get("approval_id"))
    if approval_id is None:
        raise FrameError(_("approval_id must be the id an approval_request frame gave."), code="invalid_approval_id")
    run_id = _uuid_or_none(body.get("run_id"))
    if body.get("run_id") is not None and run_id is None:
        raise FrameError(_("run_id must be the id of a run, as its frames name it."), code="invalid_run_id")
    try:
        decision = approval_decision_parse({k: body[k] for k in ("decision", "arguments") if k in body})
    except DomainError as exc:
        raise FrameError(exc.message, code=exc.code) from None
    return ClientFrame(type="approval", run_id=run_id, approval_id=approval_id, decision=decision)


def _feedback_frame(body: dict[str, Any]) -> ClientFrame:
    message_id = _uuid_or_none(body.get("message_id"))
    if message_id is None:
        raise FrameError(
            _("message_id must be the id of an answer, as its done frame names it."), code="invalid_message_id"
        )
    if "rating" not in body:
        raise FrameError(_('rating must be "up", "down" or null (null clears the rating).'), code="invalid_rating")
    try:
        feedback = feedback_input_parse(body, clearable=True)
    except DomainError as exc:
        raise FrameError(exc.message, code=exc.code) from None
    return ClientFrame(type="feedback", message_id=message_id, feedback=feedback)


def _resume_frame(body: dict[str, Any]) -> ClientFrame:
    try:
        run_id = uuid.UUID(body.get("run_id")) if isinstance(body.get("run_id"), str) else None
    except ValueError:
        run_id = None
    if run_id is None:
        raise FrameError(_("run_id must be the id of a run, as its frames name it."), code="invalid_run_id")
    after = body.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**31:
        raise FrameError(_("after must be a whole number ≥ 0: the last seq this client saw."), code="invalid_after")
    return ClientFrame(type="resume", run_id=run_id, after=after)
