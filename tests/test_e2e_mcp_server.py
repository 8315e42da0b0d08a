"""Bytchat's MCP server (`/mcp`) driven by the `mcp` SDK's own Streamable HTTP client against a real server
with the fake upstream: the caller's bots and bases only, answers with citations, charged, and refused
without a good token (docs/reliability.md M1-M6)."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jwt
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from reportlab.pdfgen import canvas

from tests.live_server import LiveServer, new_user_auth, upstream_env

pytestmark = pytest.mark.e2e

QUOTA = 5
SIGNING_KEY = secrets.token_urlsafe(48)
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("mcp-server"),
        upstream_env(
            fake_openai_server,
            QUOTA_DAILY_FREE=str(QUOTA),
            JWT_SIGNING_KEY=SIGNING_KEY,
            # The last resort fails too (instead of the offline model), so a failing bot's answer fails.
            LLM_PROVIDER="custom",
            LLM_MODEL="fake-status-503",
            # Uploads are ingested as they are stored: no worker to wait for.
            TASKS_BACKEND="django_tasks.backends.immediate.ImmediateBackend",
        ),
    ).start()
    yield live
    live.stop()
    # The session manager stopped with the server (config/lifespan.py), and no request ever raised.
    assert not live.tracebacks(), live.tracebacks()


def pdf_with(text: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "Cover page")
    page.showPage()
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def bot_with(http: httpx.Client, auth: dict[str, str], name: str, model: str = "fake-echo") -> str:
    body = {"name": name, "initial_configs": [{"provider": "custom", "model_id": model}]}
    response = http.post("/bots/", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def account(server) -> dict[str, Any]:
    """A user with two bots, one trained with a PDF (its base is their only knowledge base), and a personal API
    key; and a stranger with a bot of their own."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        auth = new_user_auth(http)
        navigator = bot_with(http, auth, "Navegante Ñandú")
        plain = bot_with(http, auth, "Plain")
        upload = http.post(
            f"/bots/{navigator}/train",
            files={"file": ("lighthouse.pdf", pdf_with("The Vermilion lighthouse guards the reef of Isla Brava."))},
            headers=auth,
        )
        assert upload.status_code == 202, upload.text
        document = http.get(f"/bots/{navigator}/documents/{upload.json()['id']}", headers=auth).json()
        assert document["status"] == "ready", document
        key = http.post("/api-keys", json={"name": "mcp"}, headers=auth).json()["key"]
        stranger = new_user_auth(http)
        stranger_bot = bot_with(http, stranger, "Stranger")
    return {
        "auth": auth,
        "key": key,
        "navigator": navigator,
        "plain": plain,
        "document": upload.json()["id"],
        "stranger": stranger,
        "stranger_bot": stranger_bot,
    }


def connect(server, token: str, *, mode: str = "legacy") -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(server.url + "/mcp", http_client=http), mode=mode)


def token_of(auth: dict[str, str]) -> str:
    return auth["Authorization"].removeprefix("Bearer ")


async def tools_of(server, token: str) -> list[types.Tool]:
    async with connect(server, token) as client:
        return (await client.list_tools()).tools


async def call(server, token: str, name: str, arguments: dict[str, Any], *, mode: str = "legacy"):
    async with connect(server, token, mode=mode) as client:
        return await client.call_tool(name, arguments)


def ask_tool(tools: list[types.Tool], bot_id: str) -> types.Tool:
    return next(tool for tool in tools if tool.name.startswith("ask_") and tool.name.endswith(bot_id[:8]))


def test_the_sdk_lists_exactly_the_callers_bots_and_bases(server, account):
    tools = asyncio.run(tools_of(server, token_of(account["auth"])))
    names = sorted(tool.name for tool in tools)
    assert names == sorted(
        [
            f"ask_navegante_nandu_{account['navigator'][:8]}",
            f"ask_plain_{account['plain'][:8]}",
            *[name for name in names if name.startswith("search_")],
        ]
    )
    assert len([name for name in names if name.startswith("search_")]) == 1  # the trained bot's base
    assert all(TOOL_NAME.fullmatch(name) for name in names)
    ask = ask_tool(tools, account["navigator"])
    assert ask.input_schema["required"] == ["question"] and ask.input_schema["properties"]["question"]["maxLength"]
    assert "Navegante Ñandú" in ask.description and ask.output_schema["required"] == ["answer", "citations", "model"]
    search = next(tool for tool in tools if tool.name.startswith("search_"))
    assert search.input_schema["properties"]["limit"]["maximum"] == 20
    # The stranger sees their own bot only; none of the first user's tools is theirs.
    theirs = asyncio.run(tools_of(server, token_of(account["stranger"])))
    assert [tool.name for tool in theirs] == [f"ask_stranger_{account['stranger_bot'][:8]}"]


def test_ask_answers_through_the_engine_with_citations_and_is_charged(server, account):
    auth = account["auth"]
    tools = asyncio.run(tools_of(server, token_of(auth)))
    with httpx.Client(base_url=server.url, timeout=15) as http:
        before = http.get("/usage", headers=auth).json()["today"]["requests"]
    result = asyncio.run(
        call(server, token_of(auth), ask_tool(tools, account["navigator"]).name, {"question": "What guards the reef?"})
    )
    assert not result.is_error
    structured = result.structured_content
    assert structured["answer"] == "Echo: What guards the reef?" and structured["model"] == "fake-echo"
    cited = structured["citations"][0]
    assert (cited["filename"], cited["page"], cited["document_id"]) == ("lighthouse.pdf", 2, account["document"])
    assert "Vermilion lighthouse" in cited["excerpt"]
    text = result.content[0].text
    assert text.startswith("Echo: What guards the reef?") and "lighthouse.pdf, page 2" in text
    with httpx.Client(base_url=server.url, timeout=15) as http:
        usage = http.get("/usage", headers=auth).json()
        # Charged like any answer, by the surface that asked; a chat of its own, not one of the listed ones.
        assert usage["today"]["requests"] == before + 1
        assert {row["surface"] for row in usage["by_surface"]} >= {"mcp"}
        assert http.get("/conversations", headers=auth).json() == []


def test_search_returns_passages_with_document_page_and_score(server, account):
    token = token_of(account["auth"])
    search = next(tool for tool in asyncio.run(tools_of(server, token)) if tool.name.startswith("search_"))
    result = asyncio.run(call(server, token, search.name, {"query": "Vermilion lighthouse reef", "limit": 3}))
    assert not result.is_error
    passages = result.structured_content["passages"]
    assert 1 <= len(passages) <= 3
    assert (passages[0]["filename"], passages[0]["page"], passages[0]["document_id"]) == (
        "lighthouse.pdf",
        2,
        account["document"],
    )
    assert passages[0]["score"] > 0 and "Vermilion" in passages[0]["excerpt"]
    assert "lighthouse.pdf, page 2" in result.content[0].text
    nothing = asyncio.run(call(server, token, search.name, {"query": "zebra quantum"}))
    assert not nothing.is_error and nothing.structured_content == {"passages": []}


def test_another_users_tool_and_bad_arguments_are_error_results(server, account):
    token = token_of(account["auth"])
    with httpx.Client(base_url=server.url, timeout=15) as http:
        before = http.get("/usage", headers=account["auth"]).json()["today"]["requests"]
    theirs = f"ask_stranger_{account['stranger_bot'][:8]}"
    refused = asyncio.run(call(server, token, theirs, {"question": "hello"}))
    assert refused.is_error and refused.structured_content["code"] == "unknown_tool"
    assert "Unknown tool" in refused.content[0].text
    ask = ask_tool(asyncio.run(tools_of(server, token)), account["plain"]).name
    too_long = asyncio.run(call(server, token, ask, {"question": "x" * 16_001}))
    assert too_long.is_error and too_long.structured_content["code"] == "invalid_argument"
    assert "16000" in too_long.content[0].text
    for arguments in ({}, {"question": ""}, {"question": 42}, {"question": "hi", "extra": 1}, {"question": "a\x00b"}):
        result = asyncio.run(call(server, token, ask, arguments))
        assert result.is_error and result.structured_content["code"] == "invalid_argument", arguments
    # None of those reached the model: nothing was charged for them.
    with httpx.Client(base_url=server.url, timeout=15) as http:
        assert http.get("/usage", headers=account["auth"]).json()["today"]["requests"] == before


def expired(token: str) -> str:
    """The same access token, signed with the server's key, an hour past its expiry."""
    _header, payload, _signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = int(time.time()) - 3600
    return jwt.encode(claims, SIGNING_KEY, algorithm="HS256", headers={"typ": "JWT"})


def test_no_bad_or_expired_token_is_a_401_json_before_the_sdk(server, account):
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    cases = {
        "none": {},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "unknown key": {"Authorization": "Bearer byt_" + "x" * 43},
        "expired": {"Authorization": f"Bearer {expired(token_of(account['auth']))}"},
    }
    with httpx.Client(base_url=server.url, timeout=15) as http:
        for case, headers in cases.items():
            for path in ("/mcp", "/mcp/"):
                response = http.post(path, json=initialize, headers={**accept, **headers})
                assert response.status_code == 401, (case, response.text)
                assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
                body = response.json()
                assert set(body) == {"detail", "code"} and body["code"] in (
                    "not_authenticated",
                    "token_not_valid",
                    "api_key_not_valid",
                ), case
        assert http.get("/mcp", headers=cases["garbage"]).status_code == 401
    # The SDK's client cannot get past it either: its request fails (the SDK reports the 401 as an MCPError).
    with pytest.raises(BaseExceptionGroup) as refused:
        asyncio.run(tools_of(server, "not-a-token"))
    assert refused.value.subgroup(lambda error: isinstance(error, MCPError)) is not None


def test_a_personal_api_key_works_in_either_of_the_sdks_modes(server, account):
    for mode in ("legacy", "auto"):
        tools = asyncio.run(tools_of(server, account["key"]))
        assert {tool.name for tool in tools} >= {f"ask_plain_{account['plain'][:8]}"}
        plain = ask_tool(tools, account["plain"]).name
        result = asyncio.run(call(server, account["key"], plain, {"question": f"by key, {mode}"}, mode=mode))
        assert not result.is_error and result.structured_content["answer"] == f"Echo: by key, {mode}"


def test_past_the_quota_a_call_is_an_error_result_naming_it(server):
    with httpx.Client(base_url=server.url, timeout=15) as http:
        auth = new_user_auth(http)
        bot = bot_with(http, auth, "Counter")
    token = token_of(auth)

    async def calls() -> list[types.CallToolResult]:
        async with connect(server, token) as client:
            name = ask_tool((await client.list_tools()).tools, bot).name
            return [await client.call_tool(name, {"question": f"q{n}"}) for n in range(QUOTA + 1)]

    *answered, refused = asyncio.run(calls())
    assert not any(result.is_error for result in answered)
    assert refused.is_error and refused.structured_content["code"] == "quota_exceeded"
    assert refused.structured_content["retry_after"] > 0  # seconds to the quota's reset, HTTP's Retry-After
    assert "model calls" in refused.content[0].text
    with httpx.Client(base_url=server.url, timeout=15) as http:
        assert http.post("/usage", json={}, headers=auth).json() == {"usage": QUOTA}


def test_an_upstream_failure_is_an_error_result_and_not_charged(server):
    with httpx.Client(base_url=server.url, timeout=15) as http:
        auth = new_user_auth(http)
        bot = bot_with(http, auth, "Broken", model="fake-status-500")
    token = token_of(auth)
    name = ask_tool(asyncio.run(tools_of(server, token)), bot).name
    result = asyncio.run(call(server, token, name, {"question": "anyone there?"}))
    assert result.is_error and result.structured_content["code"].startswith("provider_") and result.content[0].text
    with httpx.Client(base_url=server.url, timeout=15) as http:
        assert http.post("/usage", json={}, headers=auth).json() == {"usage": 0}


def test_a_foreign_host_or_origin_is_refused_by_the_sdks_rebinding_protection(server, account):
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {account['key']}",
        "MCP-Protocol-Version": "2025-11-25",
    }
    with httpx.Client(base_url=server.url, timeout=15) as http:
        assert http.post("/mcp", json=ping, headers={**headers, "Host": "rebound.example"}).status_code == 421
        origin = {**headers, "Origin": "http://rebound.example"}
        assert http.post("/mcp", json=ping, headers=origin).status_code == 403
        own = {**headers, "Origin": server.url}
        listed = http.post("/mcp", json=ping, headers=own)
        assert listed.status_code == 200, listed.text
        assert uuid.UUID(account["plain"]).hex[:8] in listed.text


class RoundRobin(httpx2.AsyncBaseTransport):
    """Each request to the next of `ports`, as nginx spreads requests over `make cluster`'s server processes."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = itertools.cycle(ports)
        self.inner = httpx2.AsyncHTTPTransport()
        self.sent: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self.ports)
        request.url = request.url.copy_with(port=port)
        self.sent.append(port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_any_server_process_answers_any_request_of_one_client(server, account, fake_openai_server):
    """Stateless: no session lives in a process, so a client's requests may land on different processes."""
    other = LiveServer(
        Path(server.env["DATA_DIR"]),
        upstream_env(fake_openai_server, JWT_SIGNING_KEY=SIGNING_KEY, QUOTA_DAILY_FREE=str(QUOTA)),
    )
    other.log_path = Path(server.env["DATA_DIR"]) / "other-server.log"
    other.start()
    try:
        transport = RoundRobin([server.port, other.port])

        async def session() -> tuple[list[str], types.CallToolResult]:
            http = httpx2.AsyncClient(
                headers=account["auth"], transport=transport, timeout=httpx2.Timeout(30, read=300)
            )
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http), mode="legacy") as client:
                names = [tool.name for tool in (await client.list_tools()).tools]
                plain = next(name for name in names if name.endswith(account["plain"][:8]))
                return names, await client.call_tool(plain, {"question": "from either process"})

        names, result = asyncio.run(session())
        assert len(names) == 3 and result.structured_content["answer"] == "Echo: from either process"
        assert set(transport.sent) == {server.port, other.port}
        assert '"POST /mcp 200' in other.log()
    finally:
        other.stop()
