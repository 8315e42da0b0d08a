"""The MCP server itself (the SDK's low-level `Server`) and its Streamable HTTP session manager: stateless,
so any server process of `make cluster` can answer any request (no session affinity).

Imported on the first `/mcp` request only (chats/mcp/endpoint.py): the SDK imports OpenTelemetry's
propagators, which a process that never serves `/mcp` does without (docs/reliability.md L5).
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from django.conf import settings
from django.utils.translation import gettext as _
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from accounts.models import User
from bots.origins import origin_normalize
from chats.mcp import schemas
from chats.mcp.calls import error_result, tool_call
from chats.mcp.catalog import ASK, McpTool, mcp_tool_list
from chats.mcp.endpoint import USER_KEY
from chats.streaming import released

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Bytchat's bots and knowledge bases, as tools: ask_<bot> asks one of your bots a question (each call is "
    "charged to your daily quota); search_<base> returns the passages of one of your knowledge bases that "
    "match a query."
)


def caller(ctx: ServerRequestContext[Any, Any]) -> User:
    """The authenticated user of the HTTP request this message came in (never absent: the endpoint refused it)."""
    request = ctx.request
    user = request.scope.get(USER_KEY) if request is not None else None
    if not isinstance(user, User):
        raise RuntimeError("an MCP request reached the server without its caller")
    return user


def tool_of(entry: McpTool) -> types.Tool:
    ask = entry.kind == ASK
    return types.Tool(
        name=entry.name,
        title=entry.title,
        description=entry.description,
        input_schema=schemas.ask_input() if ask else schemas.search_input(),
        output_schema=schemas.ask_output() if ask else schemas.search_output(),
    )


async def list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    entries = await released(mcp_tool_list)(user=caller(ctx))
    return types.ListToolsResult(tools=[tool_of(entry) for entry in entries])


async def call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    user = caller(ctx)
    try:
        return await tool_call(user=user, name=params.name, arguments=params.arguments)
    except Exception:
        # A fault of ours is the caller's tool error, not a protocol crash (docs/reliability.md M4).
        logger.exception("MCP tool call failed")
        return error_result(_("The tool failed; try again later."), "server_error")


def build_server() -> Server[Any]:
    return Server(
        "bytchat",
        version=settings.VERSION,
        title="Bytchat",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def allowed_hosts() -> list[str]:
    """ALLOWED_HOSTS as Django reads it (with DEBUG and none set: the local names)."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def transport_security() -> TransportSecuritySettings:
    """The SDK's DNS-rebinding protection from ALLOWED_HOSTS: each name on any port as `Host`, and as an
    `Origin` over http or https (plus WS_ALLOWED_ORIGINS). The SDK matches names exactly, so a subdomain
    pattern (`.example.com`) admits `example.com` only; `*` (DEBUG only) turns the check off."""
    hosts = allowed_hosts()
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = sorted({host.lstrip(".").lower() for host in hosts if host.lstrip(".")})
    origins = [f"{scheme}://{name}{port}" for name in names for scheme in ("http", "https") for port in ("", ":*")]
    origins += [origin for origin in map(origin_normalize, settings.WS_ALLOWED_ORIGINS) if origin]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*names, *(f"{name}:*" for name in names)],
        allowed_origins=origins,
    )


def session_manager() -> StreamableHTTPSessionManager:
    """A new manager (one `run()` each): stateless, answers as the SDK sends them (SSE), the request body
    limit Bytchat's own (config/body_limit.py refused a larger one already)."""
    return StreamableHTTPSessionManager(
        app=build_server(),
        stateless=True,
        security_settings=transport_security(),
        max_request_body_size=settings.MAX_REQUEST_BYTES,
    )
