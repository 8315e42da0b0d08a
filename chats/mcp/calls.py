"""A tool call: `ask_<bot>` answers through the one engine (a chat of its own, charged like any answer);
`search_<base>` returns the base's best passages. Every refusal is a tool result with `isError`, never a
protocol error (docs/reliability.md M3, M4)."""

from __future__ import annotations

import uuid
from typing import Any

import mcp_types as types
from django.conf import settings
from django.utils.translation import gettext as _

from accounts.models import User
from bots.selectors import bot_get
from chats.events import StreamEvent
from chats.mcp.catalog import ASK, McpTool, mcp_tool_get
from chats.mcp.schemas import SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX
from chats.models import Surface
from chats.runs.reader import run_to_end
from chats.runs.runner import run_begin
from chats.services import turn_start
from chats.streaming import released
from chats.types import ReplyRequest
from core.errors import DomainError
from core.text import text_problem
from knowledge.retrieval import Passage, search

EXCERPT_CHARS = 500


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def error_result(detail: str, code: str, *, retry_after: str | None = None) -> types.CallToolResult:
    """A refusal as the tool's result; `retry_after` (seconds) where HTTP would send Retry-After (the quota)."""
    structured: dict[str, Any] = {"detail": detail, "code": code}
    if retry_after is not None and retry_after.isdigit():
        structured["retry_after"] = int(retry_after)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=detail)], structured_content=structured, is_error=True
    )


def _invalid(message: str) -> DomainError:
    return DomainError(message, code="invalid_argument")


def _arguments(arguments: dict[str, Any] | None, allowed: set[str]) -> dict[str, Any]:
    arguments = arguments or {}
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        raise _invalid(_("Unknown arguments: %(names)s.") % {"names": ", ".join(name[:50] for name in unknown[:5])})
    return arguments


def _text(arguments: dict[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(_("Give %(name)s as text.") % {"name": name})
    if len(value) > settings.CHAT_MAX_QUERY_CHARS:
        raise _invalid(_("%(name)s is at most %(n)d characters.") % {"name": name, "n": settings.CHAT_MAX_QUERY_CHARS})
    problem = text_problem(value)
    if problem:
        raise _invalid(f"{name}: {problem}")
    return value


def _limit(arguments: dict[str, Any]) -> int:
    value = arguments.get("limit", SEARCH_LIMIT_DEFAULT)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SEARCH_LIMIT_MAX:
        raise _invalid(_("limit is a whole number from 1 to %(n)d.") % {"n": SEARCH_LIMIT_MAX})
    return value


def _citation(cited: dict[str, Any]) -> dict[str, Any]:
    return {
        "document_id": str(cited.get("document_id", "")),
        "filename": str(cited.get("filename", "")),
        "page": cited.get("page"),
        "excerpt": _excerpt(str(cited.get("text", ""))),
    }


def _where(item: dict[str, Any]) -> str:
    if item["page"] is None:
        return item["filename"]
    return _("%(filename)s, page %(page)s") % {"filename": item["filename"], "page": item["page"]}


def _ask_prepare(*, user: User, bot_id: uuid.UUID, question: str) -> tuple[ReplyRequest, None]:
    bot = bot_get(user=user, bot_id=bot_id)
    reply, _task_type = turn_start(user=user, prompt=question, bot=bot, surface=Surface.MCP)
    return reply, None


def answer_result(event: StreamEvent, reply: ReplyRequest) -> types.CallToolResult:
    """The `done` event as the tool's result: the answer, then its sources; the same as structured content."""
    citations = [_citation(cited) for cited in event.data.get("citations") or []]
    model = event.data.get("model") or (event.answered_by or reply.spec).model
    text = event.content
    if citations:
        sources = [f"[{n}] {_where(item)}: {item['excerpt']}" for n, item in enumerate(citations, start=1)]
        text = "\n".join([text, "", _("Sources:"), *sources])
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content={"answer": event.content, "citations": citations, "model": model},
    )


async def ask(*, user: User, tool: McpTool, arguments: dict[str, Any] | None) -> types.CallToolResult:
    question = _text(_arguments(arguments, {"question"}), "question")
    live, _extra = await run_begin(_ask_prepare, user=user, bot_id=tool.object_id, question=question)
    return answer_result(await run_to_end(live.run), live.request)


def passages_result(passages: list[Passage]) -> types.CallToolResult:
    found = [
        {
            "document_id": str(passage.document_id),
            "filename": passage.filename,
            "page": passage.page,
            "excerpt": _excerpt(passage.text),
            "score": round(float(passage.score), 6),
        }
        for passage in passages
    ]
    lines = [f"[{n}] {_where(item)} ({item['score']:.3f}): {item['excerpt']}" for n, item in enumerate(found, 1)]
    return types.CallToolResult(
        content=[types.TextContent(type="text", text="\n".join(lines) or _("No passage matches the query."))],
        structured_content={"passages": found},
    )


async def find(*, user: User, tool: McpTool, arguments: dict[str, Any] | None) -> types.CallToolResult:
    arguments = _arguments(arguments, {"query", "limit"})
    query, limit = _text(arguments, "query"), _limit(arguments)
    passages = await released(search)(owner_id=user.pk, query=query, knowledge_base_ids=(tool.object_id,), limit=limit)
    return passages_result(passages)


async def tool_call(*, user: User, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
    """The caller's tool `name` called; a name that is not theirs is `unknown_tool` (docs/reliability.md M2)."""
    tool = await released(mcp_tool_get)(user=user, name=name)
    if tool is None:
        return error_result(_("Unknown tool: %(name)s.") % {"name": name[:100]}, "unknown_tool")
    try:
        if tool.kind == ASK:
            return await ask(user=user, tool=tool, arguments=arguments)
        return await find(user=user, tool=tool, arguments=arguments)
    except DomainError as exc:
        return error_result(exc.message, exc.code, retry_after=exc.headers.get("Retry-After"))
