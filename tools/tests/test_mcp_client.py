"""server_tools_list and server_tool_call against the real MCP test server (tests/mcp_server.py)."""

import logging

import pytest

from tests.mcp_server import FAIL_MESSAGE
from tools.hosts import HostRefused
from tools.mcp_client import ToolServerFailed, server_tool_call, server_tools_list
from tools.models import ToolServer
from tools.secrets import credentials_encrypt


@pytest.fixture
def loopback_allowed(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_CONNECT_SECONDS = 5
    settings.TOOL_CALL_SECONDS = 10
    return settings


def server_at(url: str, headers: dict | None = None) -> ToolServer:
    return ToolServer(name="test", url=url, credentials=credentials_encrypt(headers or {}))


async def test_tools_list_names_every_tool_with_its_description_and_schema(mcp_server, loopback_allowed):
    tools = {tool.name: tool for tool in await server_tools_list(server_at(mcp_server.url))}
    assert set(tools) == {"add", "echo", "weather", "slow", "big", "fail", "whoami"}
    assert tools["add"].description == "Adds two whole numbers."
    assert tools["add"].input_schema["properties"]["a"]["type"] == "integer"
    assert tools["add"].input_schema["required"] == ["a", "b"]


async def test_tool_call_returns_the_text_and_the_server_records_the_arguments(mcp_server, loopback_allowed):
    output = await server_tool_call(server_at(mcp_server.url), "add", {"a": 2, "b": 40})
    assert (output.text, output.chars, output.truncated, output.error) == ("42", 2, False, "")
    [call] = mcp_server.calls_of("add")
    assert call.arguments == {"a": 2, "b": 40}


async def test_the_stored_headers_reach_the_server(mcp_server, loopback_allowed):
    server = server_at(mcp_server.url, {"Authorization": "Bearer s3cret-token", "X-Api-Key": "key-123"})
    output = await server_tool_call(server, "whoami", {})
    assert output.text == "authorization=Bearer s3cret-token; x-api-key=key-123"
    assert mcp_server.calls_of("whoami")[0].headers["x-api-key"] == "key-123"


async def test_a_slow_tool_gives_a_timeout_error_naming_the_limit(mcp_server, loopback_allowed):
    loopback_allowed.TOOL_CALL_SECONDS = 0.5
    output = await server_tool_call(server_at(mcp_server.url), "slow", {"seconds": 30})
    assert output.error == "the tool did not answer within 0.5 s"
    assert output.text == ""


async def test_a_big_result_is_cut_with_a_note_saying_how_much_there_was(mcp_server, loopback_allowed):
    loopback_allowed.TOOL_RESULT_MAX_CHARS = 8000
    output = await server_tool_call(server_at(mcp_server.url), "big", {"chars": 120_000})
    assert output.truncated and output.chars == 120_000 and output.error == ""
    assert output.text.startswith("0123456789" * 10)
    assert output.text.endswith("[cut: the tool returned 120,000 characters; the first 8,000 are shown]")
    assert len(output.text) < 8100


async def test_a_result_within_the_limit_is_whole(mcp_server, loopback_allowed):
    loopback_allowed.TOOL_RESULT_MAX_CHARS = 100
    output = await server_tool_call(server_at(mcp_server.url), "big", {"chars": 100})
    assert (len(output.text), output.truncated) == (100, False)


async def test_a_failing_tool_gives_its_error_text(mcp_server, loopback_allowed):
    output = await server_tool_call(server_at(mcp_server.url), "fail", {})
    assert FAIL_MESSAGE in output.error
    assert output.text == ""


async def test_an_unknown_tool_gives_an_error_not_an_exception(mcp_server, loopback_allowed):
    output = await server_tool_call(server_at(mcp_server.url), "no_such_tool", {})
    assert "no_such_tool" in output.error


async def test_an_unreachable_server_gives_a_clear_error(loopback_allowed, unused_tcp_port):
    output = await server_tool_call(server_at(f"http://127.0.0.1:{unused_tcp_port}/mcp"), "add", {"a": 1, "b": 2})
    assert output.error == "the server could not be reached"
    with pytest.raises(ToolServerFailed, match="could not be reached"):
        await server_tools_list(server_at(f"http://127.0.0.1:{unused_tcp_port}/mcp"))


async def test_a_server_that_refuses_the_credentials_gives_the_http_status(mcp_bearer_server, loopback_allowed):
    output = await server_tool_call(server_at(mcp_bearer_server.url), "add", {"a": 1, "b": 2})
    assert output.error == "the server answered HTTP 401"
    good = server_at(mcp_bearer_server.url, {"Authorization": "Bearer mcp-test-token"})
    assert (await server_tool_call(good, "add", {"a": 1, "b": 2})).text == "3"


async def test_a_host_outside_the_allowed_hosts_is_not_called(mcp_server, settings):
    settings.MCP_ALLOWED_HOSTS = ["mcp.example.com"]
    output = await server_tool_call(server_at(mcp_server.url), "add", {"a": 1, "b": 2})
    assert "127.0.0.1 is not allowed" in output.error and "MCP_ALLOWED_HOSTS" in output.error
    assert mcp_server.calls == []
    with pytest.raises(HostRefused):
        await server_tools_list(server_at(mcp_server.url))


async def test_no_log_line_carries_the_credentials(mcp_server, loopback_allowed, caplog):
    caplog.set_level(logging.DEBUG)
    server = server_at(mcp_server.url, {"Authorization": "Bearer s3cret-token", "X-Api-Key": "key-123"})
    await server_tools_list(server)
    await server_tool_call(server, "echo", {"text": "hello"})
    await server_tool_call(server_at(mcp_server.url.replace("/mcp", "/nowhere"), {"X-Api-Key": "key-123"}), "add", {})
    assert caplog.records
    assert "s3cret-token" not in caplog.text and "key-123" not in caplog.text
