"""Reads on tool servers and tools, scoped to the bot's owner; `tools_offered` is the engine's."""

from __future__ import annotations

import uuid

from django.db.models import F, QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from bots.selectors import bot_get
from core.errors import NotFound
from tools.models import Tool, ToolPolicy, ToolServer


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
