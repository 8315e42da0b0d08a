"""The tools one caller sees: each of their bots (`ask_…`) and knowledge bases (`search_…`), never another user's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.utils.translation import gettext as _

from accounts.models import User
from bots.selectors import bot_list
from chats.mcp.names import tool_name
from knowledge.selectors import knowledge_base_list

ASK, SEARCH = "ask", "search"
DESCRIPTION_CHARS = 1000


@dataclass(frozen=True, slots=True)
class McpTool:
    name: str
    kind: Literal["ask", "search"]
    object_id: uuid.UUID
    title: str
    description: str


def _ask_description(name: str, description: str) -> str:
    text = _("Ask the bot “%(name)s” a question: it answers from its documents, with citations.") % {"name": name}
    return f"{text}\n{description}"[:DESCRIPTION_CHARS].strip()


def _search_description(name: str) -> str:
    return _(
        "Search the knowledge base “%(name)s”: the passages that best match a query, with their document, "
        "page and score."
    ) % {"name": name}


def mcp_tool_list(*, user: User) -> list[McpTool]:
    """The caller's bots (newest first), then their knowledge bases (by name): at most MCP_SERVER_MAX_TOOLS."""
    limit = settings.MCP_SERVER_MAX_TOOLS
    bots = bot_list(user=user).prefetch_related(None).only("id", "name", "description")[:limit]
    tools = [
        McpTool(tool_name(ASK, bot.name, bot.pk), ASK, bot.pk, bot.name, _ask_description(bot.name, bot.description))
        for bot in bots
    ]
    room = limit - len(tools)
    if room > 0:
        bases = knowledge_base_list(owner=user).only("id", "name")[:room]
        tools += [
            McpTool(tool_name(SEARCH, base.name, base.pk), SEARCH, base.pk, base.name, _search_description(base.name))
            for base in bases
        ]
    return tools


def mcp_tool_get(*, user: User, name: str) -> McpTool | None:
    """The caller's tool of that name (as listed), or None: another user's bot is no tool of theirs."""
    return next((tool for tool in mcp_tool_list(user=user) if tool.name == name), None)
