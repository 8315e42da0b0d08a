"""The owner's tool-server and tool API against the real MCP test server (tests/mcp_server.py)."""

import json

import pytest
from asgiref.sync import async_to_sync

from tests.mcp_server import McpTestServer
from tools.mcp_client import server_tool_call
from tools.models import Tool, ToolPolicy, ToolServer
from tools.selectors import tools_offered

ALL_TOOLS = {"add", "echo", "weather", "slow", "big", "fail", "whoami"}
TOKEN = "tok-4f9a1c3e-very-secret"
API_KEY = "key-77d0b2-also-secret"


@pytest.fixture(autouse=True)
def _mcp_settings(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_CONNECT_SECONDS = 5
    settings.TOOL_CALL_SECONDS = 10


def attach(api, bot, url, name="demo", **extra):
    return api.post(f"/bots/{bot.pk}/tool-servers", {"name": name, "url": url, **extra}, format="json")


def test_attach_fetches_the_tools_with_policy_ask(api, bot, mcp_server):
    response = attach(api, bot, mcp_server.url)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {
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
    }
    assert (body["name"], body["url"], body["has_credentials"], body["fetch_error"]) == (
        "demo",
        mcp_server.url,
        False,
        "",
    )
    assert body["tools_fetched_at"]
    tools = {tool["name"]: tool for tool in body["tools"]}
    assert set(tools) == ALL_TOOLS
    assert {tool["policy"] for tool in tools.values()} == {"ask"}
    assert tools["weather"]["model_name"] == "demo__weather"
    assert tools["weather"]["description"] == "Today's weather in a city."
    assert tools["add"]["input_schema"]["required"] == ["a", "b"]
    listed = api.get(f"/bots/{bot.pk}/tool-servers").json()
    assert [server["id"] for server in listed] == [body["id"]]
    assert api.get(f"/bots/{bot.pk}/tool-servers/{body['id']}").json()["tools"] == body["tools"]


def test_credentials_are_stored_encrypted_never_returned_and_sent_to_the_server(api, bot, mcp_server):
    response = attach(api, bot, mcp_server.url, headers={"X-Api-Key": API_KEY}, bearer=TOKEN)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["has_credentials"] is True and body["credentials_readable"] is True
    assert body["header_names"] == ["Authorization", "X-Api-Key"]
    answers = [
        response,
        api.get(f"/bots/{bot.pk}/tool-servers"),
        api.get(f"/bots/{bot.pk}/tool-servers/{body['id']}"),
        api.post(f"/bots/{bot.pk}/tool-servers/{body['id']}/refresh"),
        api.get(f"/bots/{bot.pk}/tools"),
    ]
    for answer in answers:
        assert answer.status_code == 200 or answer.status_code == 201
        assert TOKEN not in answer.content.decode() and API_KEY not in answer.content.decode()
    [raw] = ToolServer.objects.values_list("credentials", flat=True)
    assert raw and TOKEN not in raw and API_KEY not in raw and "X-Api-Key" not in raw
    output = async_to_sync(server_tool_call)(ToolServer.objects.get(), "whoami", {})
    assert output.text == f"authorization=Bearer {TOKEN}; x-api-key={API_KEY}"


def test_a_server_refusing_the_credentials_is_not_attached_and_the_status_is_named(api, bot, mcp_bearer_server):
    refused = attach(api, bot, mcp_bearer_server.url)
    assert refused.status_code == 502
    assert refused.json() == {
        "detail": "The tool server failed: the server answered HTTP 401.",
        "code": "mcp_server_failed",
    }
    assert not ToolServer.objects.exists()
    assert attach(api, bot, mcp_bearer_server.url, bearer="mcp-test-token").status_code == 201


def test_an_unreachable_server_is_not_attached_and_the_reason_is_named(api, bot, unused_tcp_port):
    response = attach(api, bot, f"http://127.0.0.1:{unused_tcp_port}/mcp")
    assert response.status_code == 502
    assert response.json()["detail"] == "The tool server failed: the server could not be reached."
    assert not ToolServer.objects.exists()


def test_another_users_bot_server_and_tool_are_not_found(api, other_api, bot, mcp_server):
    server = attach(api, bot, mcp_server.url).json()
    tool_id = server["tools"][0]["id"]
    base = f"/bots/{bot.pk}"
    answers = [
        other_api.get(f"{base}/tool-servers"),
        attach(other_api, bot, mcp_server.url, name="theirs"),
        other_api.get(f"{base}/tool-servers/{server['id']}"),
        other_api.delete(f"{base}/tool-servers/{server['id']}"),
        other_api.post(f"{base}/tool-servers/{server['id']}/refresh"),
        other_api.get(f"{base}/tools"),
        other_api.patch(f"{base}/tools/{tool_id}", {"policy": "allow"}, format="json"),
    ]
    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert ToolServer.objects.count() == 1
    assert Tool.objects.get(pk=tool_id).policy == ToolPolicy.ASK


def test_a_server_of_another_bot_of_the_same_owner_is_not_found_under_this_bot(api, bot, make_bot, user, mcp_server):
    server = attach(api, bot, mcp_server.url).json()
    other_bot = make_bot(owner=user, name="Other")
    assert api.get(f"/bots/{other_bot.pk}/tool-servers/{server['id']}").status_code == 404
    tool_id = server["tools"][0]["id"]
    assert api.patch(f"/bots/{other_bot.pk}/tools/{tool_id}", {"policy": "allow"}, format="json").status_code == 404


def test_a_host_outside_the_allowed_hosts_is_refused(api, bot, settings, mcp_server):
    settings.MCP_ALLOWED_HOSTS = ["mcp.example.com"]
    response = attach(api, bot, mcp_server.url)
    assert response.status_code == 400
    assert response.json()["code"] == "mcp_host_refused"
    assert "127.0.0.1" in response.json()["detail"] and "MCP_ALLOWED_HOSTS" in response.json()["detail"]
    assert mcp_server.calls == [] and not ToolServer.objects.exists()


def test_with_no_allowed_hosts_nothing_is_attached_and_the_operator_is_named(api, bot, settings, mcp_server):
    settings.MCP_ALLOWED_HOSTS = []
    response = attach(api, bot, mcp_server.url)
    assert response.status_code == 400
    assert "operator" in response.json()["detail"] and "MCP_ALLOWED_HOSTS" in response.json()["detail"]


def test_a_loopback_url_is_refused_under_star_and_allowed_when_listed(api, bot, settings, mcp_server):
    settings.MCP_ALLOWED_HOSTS = ["*"]
    response = attach(api, bot, mcp_server.url)
    assert response.status_code == 400 and response.json()["code"] == "mcp_host_refused"
    assert "private, loopback or reserved address (127.0.0.1)" in response.json()["detail"]
    settings.MCP_ALLOWED_HOSTS = ["*", "127.0.0.1"]
    assert attach(api, bot, mcp_server.url).status_code == 201


def test_a_name_resolving_to_loopback_is_refused_unless_listed_by_name(api, bot, settings, mcp_server):
    url = mcp_server.url.replace("127.0.0.1", "localhost")
    settings.MCP_ALLOWED_HOSTS = ["*", ".localhost"]
    response = attach(api, bot, url)
    assert response.status_code == 400
    assert "The host localhost resolves to a private, loopback or reserved address" in response.json()["detail"]
    settings.MCP_ALLOWED_HOSTS = ["localhost"]
    assert attach(api, bot, url).status_code == 201


def test_the_host_is_checked_again_before_each_call(api, bot, settings, mcp_server):
    attach(api, bot, mcp_server.url)
    settings.MCP_ALLOWED_HOSTS = ["*"]
    mcp_server.reset()
    output = async_to_sync(server_tool_call)(ToolServer.objects.get(), "add", {"a": 1, "b": 1})
    assert "private, loopback or reserved" in output.error
    assert mcp_server.calls == []
    refresh = api.post(f"/bots/{bot.pk}/tool-servers/{ToolServer.objects.get().pk}/refresh")
    assert refresh.status_code == 400 and refresh.json()["code"] == "mcp_host_refused"


def test_servers_per_bot_are_limited_and_names_are_unique_slugs(api, bot, settings, mcp_server):
    settings.MCP_SERVERS_PER_BOT = 2
    assert attach(api, bot, mcp_server.url, name="one").status_code == 201
    taken = attach(api, bot, mcp_server.url, name="one")
    assert (taken.status_code, taken.json()["code"]) == (409, "tool_server_name_taken")
    assert attach(api, bot, mcp_server.url, name="two").status_code == 201
    over = attach(api, bot, mcp_server.url, name="three")
    assert (over.status_code, over.json()["code"]) == (403, "too_many_tool_servers")
    assert "limit of 2 tool servers" in over.json()["detail"]
    # Not ending in "_" either: `a_` with a tool `x` and `a` with a tool `_x` would both be `a___x`.
    for bad in ["", "Upper", "with-dash", "x" * 33, "spa ce", "ñ", "a_", "_a"]:
        response = attach(api, bot, mcp_server.url, name=bad)
        assert response.status_code == 400, bad
        assert "name" in response.json()["detail"]
    assert ToolServer.objects.count() == 2


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"headers": {f"X-H{i}": "v" for i in range(11)}}, "at most 10 headers"),
        ({"headers": {"X-Api-Key": "v" * 2049}}, "headers"),
        ({"headers": {"X-Api-Key": "line\r\nX-Injected: 1"}}, "the value of X-Api-Key"),
        ({"headers": {"X-Api-Key": "caf\u00e9"}}, "the value of X-Api-Key"),
        ({"headers": {"Bad Name": "v"}}, "'Bad Name' is not a valid header name"),
        ({"headers": {"Host": "internal.example"}}, "Host is set by the MCP client"),
        ({"headers": {"Mcp-Session-Id": "x"}}, "Mcp-Session-Id is set by the MCP client"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "given twice"),
        ({"headers": {f"X-H{i}": "v" * 1000 for i in range(9)}}, "at most 8192 characters in all"),
        ({"headers": {"Authorization": "Basic abc"}, "bearer": "tok"}, "not both"),
        ({"bearer": "has space"}, "bearer"),
        ({"bearer": "x" * 2049}, "bearer"),
        ({"headers": ["X-Api-Key"]}, "headers"),
        ({"url": "x" * 501}, "url"),
        ({"other": 1}, "other"),
    ],
)
def test_malformed_or_oversized_credentials_are_refused_without_echoing_values(api, bot, mcp_server, extra, named):
    body = {"name": "demo", "url": mcp_server.url, **extra}
    response = api.post(f"/bots/{bot.pk}/tool-servers", body, format="json")
    assert response.status_code == 400, response.json()
    assert named in response.json()["detail"]
    assert "v" * 50 not in response.json()["detail"] and "X-Injected" not in response.json()["detail"]
    assert not ToolServer.objects.exists() and mcp_server.calls == []


def test_tools_past_the_limit_are_left_out_with_a_note(api, bot, settings, mcp_server):
    settings.MCP_TOOLS_PER_SERVER = 3
    body = attach(api, bot, mcp_server.url).json()
    assert len(body["tools"]) == 3
    assert body["fetch_error"] == "4 tools left out: at most 3 per server"


def test_tools_whose_model_name_would_pass_64_characters_are_left_out(api, bot, mcp_server):
    body = attach(api, bot, mcp_server.url, name="n" * 32).json()
    # `<32 characters>__weather` is 41: every test tool fits.
    assert {tool["name"] for tool in body["tools"]} == ALL_TOOLS


def test_refresh_keeps_policies_drops_removed_tools_and_adds_new_ones_as_ask(api, bot):
    own = McpTestServer().start()
    try:
        body = attach(api, bot, own.url).json()
        tools = {tool["name"]: tool["id"] for tool in body["tools"]}
        assert api.patch(f"/bots/{bot.pk}/tools/{tools['add']}", {"policy": "allow"}, format="json").status_code == 200
        api.patch(f"/bots/{bot.pk}/tools/{tools['echo']}", {"policy": "deny"}, format="json")
        own.mcp.remove_tool("weather")

        def forecast(city: str) -> str:
            """Tomorrow's weather."""
            return f"Rain in {city}."

        own.mcp.add_tool(forecast)
        response = api.post(f"/bots/{bot.pk}/tool-servers/{body['id']}/refresh")
        assert response.status_code == 200, response.json()
        after = {tool["name"]: tool for tool in response.json()["tools"]}
        assert set(after) == (ALL_TOOLS - {"weather"}) | {"forecast"}
        policies = (after["add"]["policy"], after["echo"]["policy"], after["forecast"]["policy"])
        assert policies == ("allow", "deny", "ask")
        assert after["add"]["id"] == tools["add"]
        assert not Tool.objects.filter(pk=tools["weather"]).exists()
    finally:
        own.stop()


def test_a_failed_refresh_keeps_the_tools_and_records_the_error(api, bot):
    own = McpTestServer().start()
    body = attach(api, bot, own.url).json()
    own.stop()
    response = api.post(f"/bots/{bot.pk}/tool-servers/{body['id']}/refresh")
    assert response.status_code == 502
    assert response.json()["code"] == "mcp_server_failed"
    after = api.get(f"/bots/{bot.pk}/tool-servers/{body['id']}").json()
    assert after["fetch_error"] == "The tool server failed: the server could not be reached."
    assert len(after["tools"]) == len(ALL_TOOLS)


def test_delete_detaches_the_server_and_its_tools(api, bot, mcp_server):
    body = attach(api, bot, mcp_server.url).json()
    assert api.delete(f"/bots/{bot.pk}/tool-servers/{body['id']}").status_code == 204
    assert api.get(f"/bots/{bot.pk}/tool-servers/{body['id']}").status_code == 404
    assert not Tool.objects.filter(server__isnull=False).exists()
    assert api.get(f"/bots/{bot.pk}/tool-servers").json() == []


def test_builtins_are_listed_denied_until_the_owner_turns_them_on(api, bot, mcp_server):
    attach(api, bot, mcp_server.url)
    tools = api.get(f"/bots/{bot.pk}/tools").json()
    assert [tool["name"] for tool in tools[:2]] == ["knowledge_search", "web_search"]
    assert [(tool["builtin"], tool["policy"], tool["server"]) for tool in tools[:2]] == [(True, "deny", None)] * 2
    assert len(tools) == 2 + len(ALL_TOOLS)
    assert len(api.get(f"/bots/{bot.pk}/tools").json()) == len(tools)  # made once
    offered = {tool.model_name for tool in tools_offered(bot_id=bot.pk)}
    assert offered == {f"demo__{name}" for name in ALL_TOOLS}
    by_name = {tool["name"]: tool["id"] for tool in tools}
    patched = api.patch(f"/bots/{bot.pk}/tools/{by_name['web_search']}", {"policy": "ask"}, format="json")
    assert patched.status_code == 200 and patched.json()["policy"] == "ask"
    api.patch(f"/bots/{bot.pk}/tools/{by_name['fail']}", {"policy": "deny"}, format="json")
    offered = [tool.model_name for tool in tools_offered(bot_id=bot.pk)]
    assert offered[0] == "web_search"
    assert set(offered) == {"web_search"} | {f"demo__{name}" for name in ALL_TOOLS - {"fail"}}


def test_tools_offered_is_one_query(bot, api, mcp_server, django_assert_num_queries):
    attach(api, bot, mcp_server.url)
    with django_assert_num_queries(1):
        assert all(tool.server.name == "demo" for tool in tools_offered(bot_id=bot.pk))


@pytest.mark.parametrize("body", [{"policy": "always"}, {}, {"policy": "allow", "name": "x"}, {"policy": None}])
def test_a_bad_policy_is_400(api, bot, mcp_server, body):
    tool_id = attach(api, bot, mcp_server.url).json()["tools"][0]["id"]
    response = api.patch(f"/bots/{bot.pk}/tools/{tool_id}", body, format="json")
    assert response.status_code == 400
    assert Tool.objects.get(pk=tool_id).policy == ToolPolicy.ASK


def test_credentials_written_under_another_secret_key_are_reported_not_a_500(api, bot, settings, mcp_server):
    body = attach(api, bot, mcp_server.url, bearer=TOKEN).json()
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    shown = api.get(f"/bots/{bot.pk}/tool-servers/{body['id']}").json()
    assert (shown["has_credentials"], shown["credentials_readable"], shown["header_names"]) == (True, False, [])
    refresh = api.post(f"/bots/{bot.pk}/tool-servers/{body['id']}/refresh")
    assert (refresh.status_code, refresh.json()["code"]) == (409, "mcp_credentials_unreadable")
    output = async_to_sync(server_tool_call)(ToolServer.objects.get(), "add", {"a": 1, "b": 1})
    assert "cannot be read" in output.error


def test_an_explicit_secrets_key_is_used_instead_of_the_secret_key(api, bot, settings, mcp_server):
    from cryptography.fernet import Fernet

    settings.MCP_SECRETS_KEY = Fernet.generate_key().decode()
    body = attach(api, bot, mcp_server.url, bearer=TOKEN).json()
    settings.SECRET_KEY = "a-rotated-secret-key-" + "y" * 40
    assert api.get(f"/bots/{bot.pk}/tool-servers/{body['id']}").json()["credentials_readable"] is True
    raw = ToolServer.objects.get().credentials
    assert json.loads(Fernet(settings.MCP_SECRETS_KEY).decrypt(raw.encode())) == {"Authorization": f"Bearer {TOKEN}"}


def test_unauthenticated_requests_are_401(anon, bot):
    assert anon.get(f"/bots/{bot.pk}/tool-servers").status_code == 401
    assert anon.get(f"/bots/{bot.pk}/tools").status_code == 401
