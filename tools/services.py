"""Writes on a bot's tool servers and tools: attach (fetching the tools at once), refresh, delete, policies,
and the built-in tools' rows (docs/tools.md "Tool servers")."""

from __future__ import annotations

import json
import re
import uuid

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot
from bots.selectors import bot_get
from core.errors import Conflict, DomainError
from tools.hosts import mcp_url_check
from tools.mcp_client import ListedTool, server_tools_list
from tools.models import Tool, ToolPolicy, ToolServer
from tools.secrets import credentials_encrypt
from tools.selectors import tool_get, tool_server_get

# Neither a server name ending nor a tool name starting with "_": `<server>__<tool>` names one tool only.
SERVER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_]{0,31}(?<!_))?$")
TOOL_NAME = re.compile(r"^[A-Za-z0-9-][A-Za-z0-9_-]{0,63}$")
# The model calls a server's tool `<server>__<tool>`; OpenAI-compatible APIs take function names of 64 at most.
MODEL_NAME_MAX = 64
# RFC 9110 token characters.
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]*$")
MAX_HEADERS = 10
MAX_HEADER_VALUE_CHARS = 2048
MAX_HEADERS_TOTAL_CHARS = 8192
# Headers the MCP transport sets itself, or that would change how the request is framed.
RESERVED_HEADERS = {
    "accept",
    "accept-encoding",
    "connection",
    "content-length",
    "content-type",
    "host",
    "last-event-id",
    "mcp-protocol-version",
    "mcp-session-id",
    "te",
    "transfer-encoding",
    "upgrade",
}
MAX_DESCRIPTION_CHARS = 2000
MAX_SCHEMA_CHARS = 16_000
BUILTIN_TOOLS = {
    "knowledge_search": "Searches the bot's knowledge bases for passages that answer a question.",
    "web_search": "Searches the web (the server's SearxNG) and returns the results with their links.",
}


def _invalid(message: str) -> DomainError:
    return DomainError(message, code="invalid")


def server_name_clean(name: str) -> str:
    if not isinstance(name, str) or not SERVER_NAME.match(name):
        raise _invalid(_("name: use 1 to 32 lower-case letters, digits and underscores."))
    return name


def credentials_clean(headers: dict[str, str] | None, bearer: str | None) -> dict[str, str]:
    """The headers to send, `bearer` as `Authorization: Bearer ...`; refuses names and values the
    transport owns or that are malformed or too long. Errors name the header, never its value."""
    headers = dict(headers or {})
    if len(headers) > MAX_HEADERS:
        raise _invalid(_("headers: at most %(n)d headers.") % {"n": MAX_HEADERS})
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise _invalid(_("headers: %(name)r is not a valid header name.") % {"name": str(name)[:64]})
        if name.lower() in RESERVED_HEADERS:
            raise _invalid(_("headers: %(name)s is set by the MCP client and cannot be given.") % {"name": name})
        if name.lower() in {existing.lower() for existing in clean}:
            raise _invalid(_("headers: %(name)s is given twice.") % {"name": name})
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE_CHARS or not HEADER_VALUE.match(value):
            raise _invalid(
                _("headers: the value of %(name)s must be printable ASCII of at most %(n)d characters.")
                % {"name": name, "n": MAX_HEADER_VALUE_CHARS}
            )
        clean[name] = value
    if bearer:
        if any(name.lower() == "authorization" for name in clean):
            raise _invalid(_("bearer: give the token either as bearer or as an Authorization header, not both."))
        if len(bearer) > MAX_HEADER_VALUE_CHARS or not re.match(r"^[\x21-\x7e]+$", bearer):
            raise _invalid(
                _("bearer: the token must be printable ASCII without spaces, of at most %(n)d characters.")
                % {"n": MAX_HEADER_VALUE_CHARS}
            )
        clean["Authorization"] = f"Bearer {bearer}"
    if sum(len(name) + len(value) for name, value in clean.items()) > MAX_HEADERS_TOTAL_CHARS:
        raise _invalid(_("headers: at most %(n)d characters in all.") % {"n": MAX_HEADERS_TOTAL_CHARS})
    return clean


def tools_clean(*, server_name: str, listed: list[ListedTool]) -> tuple[list[ListedTool], str]:
    """The tools that can be offered, at most MCP_TOOLS_PER_SERVER, and a note on those left out."""
    kept: list[ListedTool] = []
    names: set[str] = set()
    bad_names: list[str] = []
    bad_schemas: list[str] = []
    over = 0
    for tool in listed:
        name = tool.name
        if not TOOL_NAME.match(name) or len(server_name) + 2 + len(name) > MODEL_NAME_MAX or name in names:
            bad_names.append(name[:64])
            continue
        schema = tool.input_schema
        if not isinstance(schema, dict) or len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
            bad_schemas.append(name)
            continue
        if len(kept) >= settings.MCP_TOOLS_PER_SERVER:
            over += 1
            continue
        names.add(name)
        kept.append(ListedTool(name=name, description=tool.description[:MAX_DESCRIPTION_CHARS], input_schema=schema))
    notes = []
    if bad_names:
        notes.append(
            _(
                "tools left out, their names not usable (letters, digits, _ and -; %(n)d with the server's "
                "name): %(names)s"
            )
            % {"n": MODEL_NAME_MAX, "names": ", ".join(repr(name) for name in bad_names[:5])}
        )
    if bad_schemas:
        notes.append(
            _("tools left out, their input schema too large: %(names)s") % {"names": ", ".join(bad_schemas[:5])}
        )
    if over:
        notes.append(
            _("%(over)d tools left out: at most %(n)d per server") % {"over": over, "n": settings.MCP_TOOLS_PER_SERVER}
        )
    return kept, "; ".join(notes)[:500]


def _tools_sync(*, server: ToolServer, listed: list[ListedTool]) -> None:
    """Existing tools keep their policy and are updated; removed ones are deleted; new ones get `ask`."""
    existing = {tool.name: tool for tool in Tool.objects.filter(server=server)}
    wanted = {tool.name: tool for tool in listed}
    Tool.objects.filter(server=server).exclude(name__in=list(wanted)).delete()
    for name, tool in wanted.items():
        row = existing.get(name)
        if row is None:
            Tool.objects.create(
                bot_id=server.bot_id,
                server=server,
                name=name,
                description=tool.description,
                input_schema=tool.input_schema,
                policy=ToolPolicy.ASK,
            )
        elif (row.description, row.input_schema) != (tool.description, tool.input_schema):
            row.description, row.input_schema = tool.description, tool.input_schema
            row.save(update_fields=["description", "input_schema"])


def _fetch(server: ToolServer) -> list[ListedTool]:
    # The API's views are sync; the MCP client is async (bounded by MCP_CONNECT_SECONDS + TOOL_CALL_SECONDS).
    return async_to_sync(server_tools_list)(server)


def tool_server_attach(
    *,
    user: User,
    bot_id: uuid.UUID | str,
    name: str,
    url: str,
    headers: dict[str, str] | None = None,
    bearer: str | None = None,
) -> ToolServer:
    """Attaches an MCP server to the caller's bot and fetches its tools at once (new tools: `ask`).
    A server that cannot be listed is not stored: the refusal names why (400 host refused, 502 server failed)."""
    bot = bot_get(user=user, bot_id=bot_id)
    name = server_name_clean(name)
    if not isinstance(url, str) or len(url) > ToolServer._meta.get_field("url").max_length:
        raise _invalid(_("url: at most 500 characters."))
    credentials = credentials_clean(headers, bearer)
    mcp_url_check(url)
    _limits_check(bot=bot, name=name)
    server = ToolServer(bot=bot, name=name, url=url, credentials=credentials_encrypt(credentials))
    kept, notes = tools_clean(server_name=name, listed=_fetch(server))
    try:
        with transaction.atomic():
            _limits_check(bot=bot, name=name, lock=True)
            server.tools_fetched_at = timezone.now()
            server.fetch_error = notes
            server.save()
            _tools_sync(server=server, listed=kept)
    except IntegrityError as exc:
        raise _name_taken(name) from exc
    return server


def _name_taken(name: str) -> Conflict:
    return Conflict(
        _("This bot already has a tool server named %(name)s.") % {"name": name}, code="tool_server_name_taken"
    )


def _limits_check(*, bot: Bot, name: str, lock: bool = False) -> None:
    if lock:
        # Two attachments at once cannot both pass the count.
        Bot.objects.select_for_update().filter(pk=bot.pk).first()
    servers = ToolServer.objects.filter(bot=bot)
    if servers.filter(name=name).exists():
        raise _name_taken(name)
    if servers.count() >= settings.MCP_SERVERS_PER_BOT:
        raise DomainError(
            _("This bot has reached the limit of %(n)d tool servers.") % {"n": settings.MCP_SERVERS_PER_BOT},
            code="too_many_tool_servers",
            status_code=403,
        )


def tool_server_refresh(*, user: User, bot_id: uuid.UUID | str, server_id: uuid.UUID | str) -> ToolServer:
    """Fetches the server's tools again. A failure is kept in `fetch_error` (the tools stay as they were)
    and raised."""
    server = tool_server_get(user=user, bot_id=bot_id, server_id=server_id)
    try:
        listed = _fetch(server)
    except DomainError as exc:
        ToolServer.objects.filter(pk=server.pk).update(fetch_error=exc.message[:500])
        raise
    kept, notes = tools_clean(server_name=server.name, listed=listed)
    with transaction.atomic():
        _tools_sync(server=server, listed=kept)
        server.tools_fetched_at = timezone.now()
        server.fetch_error = notes
        server.save(update_fields=["tools_fetched_at", "fetch_error"])
    return tool_server_get(user=user, bot_id=bot_id, server_id=server_id)


def tool_server_delete(*, user: User, bot_id: uuid.UUID | str, server_id: uuid.UUID | str) -> None:
    """Detaches the server and deletes its tools; past tool calls keep their name and result."""
    tool_server_get(user=user, bot_id=bot_id, server_id=server_id).delete()


def tool_policy_set(*, user: User, bot_id: uuid.UUID | str, tool_id: uuid.UUID | str, policy: str) -> Tool:
    if policy not in ToolPolicy.values:
        raise _invalid(_("policy: one of allow, ask, deny."))
    tool = tool_get(user=user, bot_id=bot_id, tool_id=tool_id)
    if tool.policy != policy:
        tool.policy = policy
        tool.save(update_fields=["policy"])
    return tool


def bot_builtin_tools_ensure(bot: Bot) -> list[Tool]:
    """The bot's built-in tools' rows (`knowledge_search`, `web_search`), made on first use with policy
    `deny`: a built-in is offered only once the owner sets it to `allow` or `ask`."""
    tools = []
    for name, description in BUILTIN_TOOLS.items():
        # get_or_create reads the row again if a parallel request made it first (tools_builtin_once_per_bot).
        tool, _created = Tool.objects.get_or_create(
            bot=bot, server=None, name=name, defaults={"description": description, "policy": ToolPolicy.DENY}
        )
        tools.append(tool)
    return tools
