"""Tool calls as stored: a round's calls, their approvals and decisions, their results (docs/tools.md).

A call whose tool has policy `ask` is `pending` until the user approves (its arguments as the model wrote
them, or edited) or rejects it, or until TOOL_APPROVAL_SECONDS pass (then `expired`, a rejection). The row
is the approval: it outlives the connection that showed it and the process that asked.
"""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from core.errors import Conflict, DomainError
from tools.models import Decision, Tool, ToolCall, ToolCallStatus, ToolPolicy
from tools.selectors import ApprovalNotFound

# An approver's edited arguments: a JSON object of at most this many characters.
EDITED_ARGUMENTS_MAX_CHARS = 16_000


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A call of a round as the engine decided it before anything ran."""

    call_id: str
    tool_id: uuid.UUID | None
    tool_name: str
    arguments: dict[str, Any]
    status: ToolCallStatus
    result: str = ""


def round_record(
    *, run_id: uuid.UUID, message_id: uuid.UUID, round_number: int, calls: list[PlannedCall], said: str = ""
) -> list[ToolCall]:
    """The round's calls, in one statement; those that wait for approval expire after TOOL_APPROVAL_SECONDS."""
    now = timezone.now()
    expires = now + datetime.timedelta(seconds=settings.TOOL_APPROVAL_SECONDS)
    rows = [
        ToolCall(
            run_id=run_id,
            message_id=message_id,
            round=round_number,
            index=index,
            call_id=call.call_id[:100],
            tool_id=call.tool_id,
            tool_name=call.tool_name[:200],
            arguments=call.arguments,
            status=call.status,
            decided_by="" if call.status == ToolCallStatus.PENDING else Decision.POLICY,
            decided_at=None if call.status == ToolCallStatus.PENDING else now,
            expires_at=expires if call.status == ToolCallStatus.PENDING else None,
            result=call.result,
            result_chars=len(call.result),
            said_before=said if index == 0 else "",
        )
        for index, call in enumerate(calls)
    ]
    ToolCall.objects.bulk_create(rows)
    return rows


def arguments_parse(raw: str) -> dict[str, Any] | None:
    """The model's arguments as a JSON object, or None when they are not one."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def edited_arguments_check(arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, dict):
        raise DomainError(_("arguments must be a JSON object."), code="invalid_arguments")
    if len(json.dumps(arguments, ensure_ascii=False)) > EDITED_ARGUMENTS_MAX_CHARS:
        raise DomainError(
            _("arguments may be at most %(n)d characters of JSON.") % {"n": EDITED_ARGUMENTS_MAX_CHARS},
            code="invalid_arguments",
        )
    return arguments


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    approve: bool
    arguments: dict[str, Any] | None = None


def approval_decision_parse(data: Any) -> DecisionRequest:
    """`{"decision": "approve" | "reject", "arguments": {...}?}` as sent by any surface, or a 400 naming
    what is wrong (edited arguments only with an approval)."""
    if not isinstance(data, dict):
        raise DomainError(_('Send a JSON object: {"decision": "approve" or "reject"}.'), code="invalid_decision")
    decision = data.get("decision")
    if decision not in ("approve", "reject"):
        raise DomainError(_('decision must be "approve" or "reject".'), code="invalid_decision")
    arguments = data.get("arguments")
    if arguments is not None and decision == "reject":
        raise DomainError(_("Edited arguments go with an approval, not a rejection."), code="invalid_decision")
    if arguments is not None:
        arguments = edited_arguments_check(arguments)
    return DecisionRequest(approve=decision == "approve", arguments=arguments)


def arguments_valid_for(tool: Tool | None, arguments: dict[str, Any]) -> dict[str, Any]:
    """Edited arguments as the tool's input schema wants them, or a 400 naming the first problem."""
    from tools.builtin import QUERY_SCHEMA

    if tool is None:
        raise Conflict(
            _("The tool of this call is gone; it cannot be approved with other arguments."), code="tool_gone"
        )
    schema = QUERY_SCHEMA if tool.server_id is None else tool.input_schema
    if not isinstance(schema, dict) or not schema:
        return arguments
    try:
        validator = validator_for(schema)(schema)
        problem = next(iter(sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))), None)
    except SchemaError:
        return arguments  # the server's schema is not one: the server judges the arguments itself
    if problem is not None:
        where = "/".join(str(part) for part in problem.path) or "arguments"
        raise DomainError(
            _("The edited arguments do not fit the tool (%(where)s: %(problem)s).")
            % {"where": where, "problem": problem.message[:200]},
            code="invalid_arguments",
        )
    return arguments


def approval_decide(
    *,
    run_id: uuid.UUID,
    approval_id: uuid.UUID | str,
    approve: bool,
    arguments: dict[str, Any] | None = None,
    by: Decision,
    user_id: int | None = None,
    after_seq: int | None = None,
) -> ToolCall:
    """Approve (with the arguments as asked, or edited) or reject a pending call of the run. A call already
    decided, or past its time, is a 409 saying so; one that is not the run's is a 404."""
    try:
        call_pk = uuid.UUID(str(approval_id))
    except ValueError:
        raise ApprovalNotFound() from None
    now = timezone.now()
    changes: dict[str, Any] = {
        "status": ToolCallStatus.APPROVED if approve else ToolCallStatus.REJECTED,
        "decided_by": by,
        "decided_by_user_id": user_id,
        "decided_at": now,
        "decided_after_seq": after_seq,
    }
    if approve and arguments is not None:
        if by == Decision.VISITOR:  # the owner's tool, maybe with the owner's credentials: as the model asked
            raise DomainError(
                _("A visitor approves or rejects a call as the assistant asked it; arguments cannot be edited."),
                code="invalid_decision",
            )
        asked = ToolCall.objects.select_related("tool").filter(pk=call_pk, run_id=run_id).first()
        if asked is None:
            raise ApprovalNotFound()
        changes.update(
            arguments=arguments_valid_for(asked.tool, edited_arguments_check(arguments)), arguments_edited=True
        )
    with transaction.atomic():
        decided = ToolCall.objects.filter(
            pk=call_pk, run_id=run_id, status=ToolCallStatus.PENDING, expires_at__gt=now
        ).update(**changes)
        call = ToolCall.objects.filter(pk=call_pk, run_id=run_id).first()
    if call is None:
        raise ApprovalNotFound()
    if not decided:
        if call.status == ToolCallStatus.PENDING:  # past its time: nobody decided
            approval_expire(call_id=call.pk)
            call.refresh_from_db()
        raise Conflict(
            _("This approval was already closed (%(status)s).") % {"status": call.get_status_display()},
            code="approval_closed",
        )
    return call


def approval_repeats(call: ToolCall, *, user_id: int, approve: bool) -> bool:
    """Whether `call` was already decided this way by this user through /v1 (a retried request)."""
    if call.decided_by_user_id != user_id or call.decided_after_seq is None:
        return False
    rejected = call.status in (ToolCallStatus.REJECTED, ToolCallStatus.EXPIRED)
    return approve != rejected and call.decided_by == Decision.USER


def approval_expire(*, call_id: uuid.UUID) -> bool:
    """A pending call past its time is rejected as `expired`; False if it was decided meanwhile."""
    return bool(
        ToolCall.objects.filter(pk=call_id, status=ToolCallStatus.PENDING, expires_at__lte=timezone.now()).update(
            status=ToolCallStatus.EXPIRED, decided_by=Decision.EXPIRY, decided_at=timezone.now()
        )
    )


def approvals_close(*, run_id: uuid.UUID) -> int:
    """The run ended (stopped, failed, interrupted) while calls waited or ran: those waiting are closed as
    expired, those approved or running as failed (their outcome is not known)."""
    now = timezone.now()
    closed = ToolCall.objects.filter(run_id=run_id, status=ToolCallStatus.PENDING).update(
        status=ToolCallStatus.EXPIRED, decided_by=Decision.EXPIRY, decided_at=now
    )
    unfinished = ToolCall.objects.filter(
        run_id=run_id, status__in=(ToolCallStatus.APPROVED, ToolCallStatus.RUNNING)
    ).update(status=ToolCallStatus.FAILED, error=_("The answer ended before this call was finished."))
    return closed + unfinished


def call_start(*, call_id: uuid.UUID) -> bool:
    """An allowed or approved call starts, if its tool is still turned on (the owner may have denied it
    while the call waited); False otherwise, or if it is not waiting to start (a resumed run's call that
    was already running when its process died)."""
    return bool(
        ToolCall.objects.filter(
            pk=call_id,
            status=ToolCallStatus.APPROVED,
            tool__policy__in=(ToolPolicy.ALLOW, ToolPolicy.ASK),
        ).update(status=ToolCallStatus.RUNNING)
    )


def call_finish(
    *,
    call_id: uuid.UUID,
    status: ToolCallStatus,
    result: str,
    result_chars: int,
    truncated: bool,
    error: str,
    duration_ms: int | None,
    citations: list[dict[str, Any]],
) -> None:
    ToolCall.objects.filter(pk=call_id).update(
        status=status,
        result=result,
        result_chars=result_chars,
        truncated=truncated,
        error=error[:500],
        duration_ms=duration_ms,
        citations=citations,
    )
