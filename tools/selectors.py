"""Reads on tool servers and tools, scoped to the bot's owner; `tools_offered` is the engine's."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import F, QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from bots.selectors import bot_get
from core.errors import NotFound
from tools.models import Tool, ToolCall, ToolCallStatus, ToolPolicy, ToolServer


class ApprovalNotFound(NotFound):
    code = "approval_not_found"

    def default_message(self) -> str:
        return _("No such approval in this run.")


def tool_server_list(*, user: User, bot_id: uuid.UUID | str) -> QuerySet[ToolServer]:
    bot = bot_get(user=user, bot_id=bot_id)
    return ToolServer.objects.filter(bot=bot).prefetch_related("tools").order_by("created_at")


def tool_server_get(*, user: User, bot_id: uuid.UUID | str, server_id: uuid.UUID | str) -> ToolServer:
    server = tool_server_list(user=user, bot_id=bot_id).filter(pk=server_id).first()
    if server is None:
        raise NotFound(_("Tool server not found."), code="tool_server_not_found")
    return server


def _tools_ordered(queryset: QuerySet[Tool]) -> QuerySet[Tool]:
    # Built-ins first, then each server's tools in the order the servers were attached.
    return queryset.select_related("server").order_by(F("server__created_at").asc(nulls_first=True), "name")


def bot_tools(*, user: User, bot_id: uuid.UUID | str) -> list[Tool]:
    """Every tool of the caller's bot, whatever its policy (the API's list)."""
    bot = bot_get(user=user, bot_id=bot_id)
    return list(_tools_ordered(Tool.objects.filter(bot=bot)))


def tool_get(*, user: User, bot_id: uuid.UUID | str, tool_id: uuid.UUID | str) -> Tool:
    bot = bot_get(user=user, bot_id=bot_id)
    tool = Tool.objects.select_related("server").filter(bot=bot, pk=tool_id).first()
    if tool is None:
        raise NotFound(_("Tool not found."), code="tool_not_found")
    return tool


def tools_offered(*, bot_id: uuid.UUID | str, approvals: bool = True) -> list[Tool]:
    """The tools the bot's model is offered: policy `allow`, and `ask` where someone can approve a call,
    with their server (one query)."""
    policies = [ToolPolicy.ALLOW, ToolPolicy.ASK] if approvals else [ToolPolicy.ALLOW]
    return list(_tools_ordered(Tool.objects.filter(bot_id=bot_id, policy__in=policies)))


def call_get(*, call_id: uuid.UUID) -> ToolCall:
    return ToolCall.objects.get(pk=call_id)


def run_tool_calls(*, run_id: uuid.UUID) -> list[ToolCall]:
    return list(ToolCall.objects.filter(run_id=run_id).order_by("round", "index"))


def run_pending_approvals(*, run_id: uuid.UUID) -> list[ToolCall]:
    return list(ToolCall.objects.filter(run_id=run_id, status=ToolCallStatus.PENDING).order_by("round", "index"))


def approval_of_user(*, user: Any, approval_id: Any) -> ToolCall:
    """A tool call of one of the user's own runs (the /v1 API names it by its id alone); else a 404."""
    try:
        call_pk = uuid.UUID(str(approval_id))
    except ValueError:
        raise ApprovalNotFound() from None
    # The user's own chats: a widget visitor's approvals are the visitor's (as chats.runs.selectors.run_get).
    call = (
        ToolCall.objects.select_related("run")
        .filter(pk=call_pk, run__owner=user, run__chat__visitor_id__isnull=True)
        .first()
    )
    if call is None:
        raise ApprovalNotFound()
    return call


def approval_payload(call: ToolCall) -> dict[str, Any]:
    return {
        "approval_id": str(call.pk),
        "run_id": str(call.run_id),
        "tool": call.tool_name,
        "arguments": call.arguments,
        "status": call.status,
        "decided_by": call.decided_by,
        "decided_at": call.decided_at.isoformat() if call.decided_at else None,
        "expires_at": call.expires_at.isoformat() if call.expires_at else None,
    }
