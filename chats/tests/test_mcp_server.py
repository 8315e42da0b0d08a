"""The MCP server's parts that need no running server: tool names, the caller's catalogue and its bound, who
may call (an inactive user's token or key is refused), and the rebinding protection drawn from ALLOWED_HOSTS
(docs/reliability.md M1, M2, M5, M6)."""

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from accounts.services import api_key_create
from chats.mcp.catalog import mcp_tool_get, mcp_tool_list
from chats.mcp.endpoint import caller, language
from chats.mcp.names import slug, tool_name
from chats.mcp.server import transport_security
from core.errors import NotAuthenticated
from knowledge.models import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
VALID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ID = uuid.UUID("0123abcd-0000-4000-8000-000000000000")


def test_tool_names_fold_accents_keep_to_the_allowed_characters_and_64_at_most():
    assert slug("Café Ñandú — Señal!") == "cafe_nandu_senal"
    assert tool_name("ask", "Café Ñandú", ID) == "ask_cafe_nandu_0123abcd"
    # Nothing left of the name: the prefix and the id alone.
    assert tool_name("ask", "日本語 🤖", ID) == "ask_0123abcd"
    long = tool_name("search", "x" * 500 + " y", ID)
    assert VALID.fullmatch(long) and len(long) <= 64 and long.endswith("_0123abcd")
    for name in ("a/b\\c", "../etc", "<script>", "tab\there", "   "):
        assert VALID.fullmatch(tool_name("ask", name, ID))


def tokens_for(user) -> dict[str, str]:
    return {"jwt": str(AccessToken.for_user(user)), "key": api_key_create(user=user, name="mcp")[1]}


def scope_with(token: str | None) -> dict:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token is not None else []
    return {"type": "http", "path": "/mcp", "headers": headers}


@pytest.mark.django_db(transaction=True)
async def test_an_access_token_or_a_key_names_the_caller_and_an_inactive_users_are_refused(make_user):
    from asgiref.sync import sync_to_async

    active = await sync_to_async(make_user)()
    inactive = await sync_to_async(make_user)()
    active_tokens = await sync_to_async(tokens_for)(active)
    inactive_tokens = await sync_to_async(tokens_for)(inactive)
    inactive.is_active = False
    await inactive.asave(update_fields=["is_active"])
    for token in active_tokens.values():
        assert (await caller(scope_with(token))).pk == active.pk
    for kind, token in inactive_tokens.items():
        with pytest.raises(NotAuthenticated) as refused:
            await caller(scope_with(token))
        assert refused.value.code == ("api_key_not_valid" if kind == "key" else "token_not_valid")
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(NotAuthenticated):
        await caller(scope_with(None))


def test_tools_are_the_callers_bots_then_bases_bounded_and_another_users_are_no_tool(make_user, make_bot, settings):
    owner, stranger = make_user(), make_user()
    bots = [make_bot(owner=owner, name=f"Bot {n}") for n in range(3)]
    KnowledgeBase.objects.create(owner=owner, name="Apuntes")
    theirs = make_bot(owner=stranger, name="Theirs")
    tools = mcp_tool_list(user=owner)
    assert [tool.kind for tool in tools] == ["ask", "ask", "ask", "search"]
    assert [tool.object_id for tool in tools[:3]] == [bot.pk for bot in reversed(bots)]  # newest first
    stranger_tool = mcp_tool_list(user=stranger)[0]
    assert stranger_tool.object_id == theirs.pk
    assert mcp_tool_get(user=owner, name=stranger_tool.name) is None
    assert mcp_tool_get(user=owner, name=tools[-1].name).title == "Apuntes"
    settings.MCP_SERVER_MAX_TOOLS = 2
    assert [tool.kind for tool in mcp_tool_list(user=owner)] == ["ask", "ask"]
    # A tool past the bound is not callable either: the call looks it up in the same listing.
    assert mcp_tool_get(user=owner, name=tools[-1].name) is None


def test_rebinding_protection_admits_the_allowed_hosts_on_any_port(settings):
    settings.ALLOWED_HOSTS = ["chat.example.com", ".example.org", "127.0.0.1"]
    settings.WS_ALLOWED_ORIGINS = ["https://app.example.net"]
    security = transport_security()
    assert security.enable_dns_rebinding_protection
    assert set(security.allowed_hosts) == {
        "chat.example.com",
        "chat.example.com:*",
        "example.org",
        "example.org:*",
        "127.0.0.1",
        "127.0.0.1:*",
    }
    assert {"https://chat.example.com", "http://127.0.0.1:*", "https://app.example.net"} <= set(
        security.allowed_origins
    )
    assert not any("evil" in origin for origin in security.allowed_origins)


def test_language_follows_accept_language_among_the_ones_bytchat_speaks():
    def scope(value: str) -> dict:
        return {"headers": [(b"accept-language", value.encode())]}

    assert language(scope("es-ES,es;q=0.9")) == "es"
    assert language(scope("fr, de;q=0.5")) == "en"
    assert language({"headers": []}) == "en"


def test_the_asgi_application_loads_without_the_sdk_until_mcp_is_asked():
    """The SDK imports OpenTelemetry's propagators: a process that never serves /mcp does without them (L5)."""
    script = (
        "import sys, config.asgi; "
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'opentelemetry.propagate'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
