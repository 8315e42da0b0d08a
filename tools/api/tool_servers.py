"""The bot owner's tool servers and tools: attach MCP servers, refresh and detach them, set each tool's policy.
Credentials are write-only: answers say whether there are any and name the headers, never their values."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.selectors import bot_get
from core.api.serializers import StrictSerializer, validated
from core.errors import DomainError
from tools.models import Tool, ToolPolicy, ToolServer
from tools.secrets import credentials_decrypt
from tools.selectors import bot_tools, tool_server_get, tool_server_list
from tools.services import (
    MAX_HEADER_VALUE_CHARS,
    MAX_HEADERS,
    bot_builtin_tools_ensure,
    tool_policy_set,
    tool_server_attach,
    tool_server_delete,
    tool_server_refresh,
)


class ToolSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(read_only=True, help_text="The name the model calls it by.")
    server = serializers.UUIDField(source="server_id", read_only=True, allow_null=True)
    builtin = serializers.SerializerMethodField(help_text="A built-in tool (no server).")

    class Meta:
        model = Tool
        fields = [
            "id",
            "name",
            "model_name",
            "server",
            "builtin",
            "description",
            "input_schema",
            "policy",
            "created_at",
        ]
        read_only_fields = fields

    def get_builtin(self, tool: Tool) -> bool:
        return tool.server_id is None


class ToolServerSerializer(serializers.ModelSerializer):
    has_credentials = serializers.SerializerMethodField()
    header_names = serializers.SerializerMethodField(help_text="The names of the stored headers (never the values).")
    credentials_readable = serializers.SerializerMethodField(
        help_text="False when the server's secret key changed since they were stored: attach the server again."
    )
    tools = ToolSerializer(many=True, read_only=True)

    class Meta:
        model = ToolServer
        fields = [
            "id",
            "name",
            "url",
            "has_credentials",
            "header_names",
            "credentials_readable",
            "tools_fetched_at",
            "fetch_error",
            "tools",
            "created_at",
        ]
        read_only_fields = fields

    def _headers(self, server: ToolServer) -> dict[str, str] | None:
        try:
            return credentials_decrypt(server.credentials)
        except DomainError:
            return None

    def get_has_credentials(self, server: ToolServer) -> bool:
        return bool(server.credentials)

    def get_header_names(self, server: ToolServer) -> list[str]:
        return sorted(self._headers(server) or {})

    def get_credentials_readable(self, server: ToolServer) -> bool:
        return self._headers(server) is not None


class ToolServerCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=32, help_text="1 to 32 of a-z, 0-9 and _; unique per bot.")
    url = serializers.CharField(max_length=500, help_text="The server's Streamable HTTP endpoint (http or https).")
    headers = serializers.DictField(
        child=serializers.CharField(max_length=MAX_HEADER_VALUE_CHARS, allow_blank=True, trim_whitespace=False),
        required=False,
        help_text=f"Headers sent with every request (at most {MAX_HEADERS}); stored encrypted, never returned.",
    )
    bearer = serializers.CharField(
        max_length=MAX_HEADER_VALUE_CHARS,
        required=False,
        trim_whitespace=False,
        help_text="A token sent as `Authorization: Bearer <token>`; stored encrypted, never returned.",
    )


class ToolPolicySerializer(StrictSerializer):
    policy = serializers.ChoiceField(choices=ToolPolicy.choices)


class ToolServerListCreateView(APIView):
    # 403: the servers-per-bot limit; 409: the name is taken; 502: the server could not be listed.
    error_statuses = {"POST": {403, 409, 502}}

    @extend_schema(responses={200: ToolServerSerializer(many=True)})
    def get(self, request: Request, bot_id) -> Response:
        return Response(ToolServerSerializer(tool_server_list(user=request.user, bot_id=bot_id), many=True).data)

    @extend_schema(
        request=ToolServerCreateSerializer,
        responses={201: ToolServerSerializer},
        description=(
            "Attaches an MCP server (Streamable HTTP) and fetches its tools at once; new tools get policy `ask`. "
            "The host must be allowed by the server's operator (MCP_ALLOWED_HOSTS): otherwise 400 "
            "`mcp_host_refused`. A server that cannot be listed is not attached: 502 `mcp_server_failed`."
        ),
    )
    def post(self, request: Request, bot_id) -> Response:
        bot_get(user=request.user, bot_id=bot_id)
        data = validated(ToolServerCreateSerializer, request.data)
        server = tool_server_attach(user=request.user, bot_id=bot_id, **data)
        server = tool_server_get(user=request.user, bot_id=bot_id, server_id=server.pk)
        return Response(ToolServerSerializer(server).data, status=status.HTTP_201_CREATED)


class ToolServerDetailView(APIView):
    @extend_schema(responses={200: ToolServerSerializer})
    def get(self, request: Request, bot_id, server_id) -> Response:
        server = tool_server_get(user=request.user, bot_id=bot_id, server_id=server_id)
        return Response(ToolServerSerializer(server).data)

    @extend_schema(responses={204: None}, description="Detaches the server; its tools go with it.")
    def delete(self, request: Request, bot_id, server_id) -> Response:
        tool_server_delete(user=request.user, bot_id=bot_id, server_id=server_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ToolServerRefreshView(APIView):
    # 409: credentials unreadable (the secret key changed); 502: the server could not be listed.
    error_statuses = {"POST": {400, 409, 502}}

    @extend_schema(
        request=None,
        responses={200: ToolServerSerializer},
        description=(
            "Fetches the tools again: tools still there keep their policy, removed ones are deleted, new ones "
            "get `ask`. A failure is kept in `fetch_error` and the tools stay as they were."
        ),
    )
    def post(self, request: Request, bot_id, server_id) -> Response:
        server = tool_server_refresh(user=request.user, bot_id=bot_id, server_id=server_id)
        return Response(ToolServerSerializer(server).data)


class ToolListView(APIView):
    @extend_schema(
        responses={200: ToolSerializer(many=True)},
        description=(
            "Every tool of the bot: the built-ins (`knowledge_search`, `web_search`; `deny` until turned on) "
            "and each server's, whatever their policy."
        ),
    )
    def get(self, request: Request, bot_id) -> Response:
        bot_builtin_tools_ensure(bot_get(user=request.user, bot_id=bot_id))
        return Response(ToolSerializer(bot_tools(user=request.user, bot_id=bot_id), many=True).data)


class ToolDetailView(APIView):
    @extend_schema(
        request=ToolPolicySerializer,
        responses={200: ToolSerializer},
        description="`allow`: called without asking; `ask`: the user approves each call; `deny`: not offered.",
    )
    def patch(self, request: Request, bot_id, tool_id) -> Response:
        data = validated(ToolPolicySerializer, request.data)
        return Response(ToolSerializer(tool_policy_set(user=request.user, bot_id=bot_id, tool_id=tool_id, **data)).data)
