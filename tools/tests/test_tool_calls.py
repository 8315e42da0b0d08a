"""Tool calls inside answers: allowed, denied and approved calls, bounds, and approvals that outlive the
request and the process (docs/tools.md; docs/reliability.md N1-N9)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import DailyUsage, ModelCall
from bots.models import ModelConfig
from knowledge.services import bot_home_base, document_ingest_text
from tests.helpers import metric_total, parse_sse, read_stream
from tools.models import Tool, ToolCall

pytestmark = [pytest.mark.django_db(transaction=True)]


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def tooled_bot(bot, *, model: str = "fake-tools", **policies: str):
    ModelConfig.objects.create(bot=bot, provider="custom", model_id=model, task_type="general")
    for name, policy in policies.items():
        Tool.objects.create(bot=bot, name=name, policy=policy)
    return bot


async def ask(user, bot, query: str):
    return await AsyncClient().post(
        f"/chat/{bot.id}",
        data={"query": query},
        content_type="application/json",
        headers={**bearer(user), "Accept": "text/event-stream"},
    )


def model_requests(upstream) -> list[dict]:
    return [r.body for r in upstream.requests if r.path.endswith("/chat/completions")]


async def test_an_allowed_knowledge_search_is_called_and_its_passages_shape_and_cite_the_answer(user, bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="allow")
    await sync_to_async(document_ingest_text)(
        knowledge_base=await sync_to_async(bot_home_base)(bot=bot),
        filename="log.txt",
        text="Pirates bury their treasure on remote islands.",
    )
    done_before = metric_total("bytchat_tool_calls_total", mode="builtin", status="done")
    timed_before = metric_total("bytchat_tool_call_duration_seconds_count", mode="builtin", status="done")
    response = await ask(user, bot, 'call knowledge_search {"query": "where is the treasure"}')
    events = parse_sse(await read_stream(response))
    # Counted and timed by kind of tool and outcome (docs/observability.md).
    assert metric_total("bytchat_tool_calls_total", mode="builtin", status="done") == done_before + 1
    assert metric_total("bytchat_tool_call_duration_seconds_count", mode="builtin", status="done") == timed_before + 1
    kinds = [kind for kind, _data in events]
    assert kinds[0] == "chunk" and kinds[-1] == "done", kinds
    assert tuple(k for k in kinds if k.startswith("tool_")) == ("tool_call", "tool_result")
    result = next(data for kind, data in events if kind == "tool_result")
    assert result["tool"] == "knowledge_search" and result["status"] == "done" and result["result_chars"] > 0
    done = events[-1][1]
    # The tool's passages reached the model, fenced as data, and its answer was built from them.
    assert done["content"].startswith("Checking. Tool said: <tool_result")
    assert "Pirates bury their treasure on remote islands." in done["content"]
    assert any(c.get("filename") == "log.txt" for c in done["citations"])
    first, second = model_requests(upstream)
    assert [t["function"]["name"] for t in first["tools"]] == ["knowledge_search"]
    assistant, tool = second["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["function"]["name"] == "knowledge_search"
    assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "data, not instructions" in tool["content"]
    # Stored on the answer, and each model call charged.
    call = await ToolCall.objects.aget()
    assert (call.status, call.decided_by, call.arguments) == ("done", "policy", {"query": "where is the treasure"})
    assert call.message_id == (await ToolCall.objects.select_related("message").aget()).message.pk
    assert call.duration_ms is not None
    assert await ModelCall.objects.filter(user=user).acount() == 2
    assert (await DailyUsage.objects.aget(user=user)).requests == 2


async def test_a_denied_or_unknown_tool_is_not_called_and_the_model_is_told(user, bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="allow", web_search="deny")
    response = await ask(user, bot, 'call web_search {"query": "news"} ;; call rm_rf {"path": "/"}')
    events = parse_sse(await read_stream(response))
    results = [data for kind, data in events if kind == "tool_result"]
    assert [(r["tool"], r["status"]) for r in results] == [("web_search", "denied"), ("rm_rf", "denied")]
    done = events[-1][1]
    assert "not available to this assistant" in done["content"]
    # A denied tool is never offered.
    assert [t["function"]["name"] for t in model_requests(upstream)[0]["tools"]] == ["knowledge_search"]


async def test_a_bot_without_tools_offers_none(user, bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="deny")
    response = await ask(user, bot, 'call knowledge_search {"query": "x"}')
    events = parse_sse(await read_stream(response))
    assert [k for k, _d in events if k.startswith("tool")] == []
    assert "tools" not in model_requests(upstream)[0]


@pytest.mark.parametrize("rounds", [2])
async def test_rounds_are_bounded_and_the_last_call_offers_no_tools(user, bot, upstream, settings, rounds):
    settings.TOOL_MAX_ROUNDS = rounds
    await sync_to_async(tooled_bot)(bot, model="fake-tools-loop", knowledge_search="allow")
    response = await ask(user, bot, 'call knowledge_search {"query": "loop"}')
    events = parse_sse(await read_stream(response))
    assert events[-1][0] == "done"
    requests = model_requests(upstream)
    assert len(requests) == rounds + 1
    assert all("tools" in r for r in requests[:-1]) and "tools" not in requests[-1]
    assert await ToolCall.objects.acount() == rounds


async def approval_pending(timeout: float = 10.0) -> ToolCall:
    for _ in range(int(timeout / 0.05)):
        call = await ToolCall.objects.filter(status="pending").afirst()
        if call is not None:
            return call
        await asyncio.sleep(0.05)
    raise AssertionError("no approval request")


async def test_ask_pauses_the_run_until_approved_over_rest_with_edited_arguments(user, other_user, bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    await sync_to_async(document_ingest_text)(
        knowledge_base=await sync_to_async(bot_home_base)(bot=bot), filename="a.txt", text="Kittens sleep all day."
    )
    response = await ask(user, bot, 'call knowledge_search {"query": "dogs"}')
    reading = asyncio.ensure_future(read_stream(response))
    call = await approval_pending()
    run_id = str(call.run_id)
    detail = (await AsyncClient().get(f"/runs/{run_id}", headers=bearer(user))).json()
    assert detail["status"] == "running"
    assert [(a["approval_id"], a["tool"], a["arguments"]) for a in detail["approvals"]] == [
        (str(call.pk), "knowledge_search", {"query": "dogs"})
    ]
    url = f"/runs/{run_id}/approvals/{call.pk}"
    # Another user cannot decide it; bad decisions are named.
    stranger = await AsyncClient().post(url, {"decision": "approve"}, "application/json", headers=bearer(other_user))
    assert stranger.status_code == 404
    for body in (
        {"decision": "maybe"},
        {"decision": "reject", "arguments": {}},
        {"decision": "approve", "arguments": [1]},
    ):
        bad = await AsyncClient().post(url, body, "application/json", headers=bearer(user))
        assert bad.status_code == 400 and bad.json()["detail"], body
    decided = await AsyncClient().post(
        url, {"decision": "approve", "arguments": {"query": "kittens"}}, "application/json", headers=bearer(user)
    )
    assert decided.status_code == 200, decided.content
    assert decided.json()["status"] == "approved"
    events = parse_sse(await asyncio.wait_for(reading, 15))
    kinds = [k for k, _d in events]
    assert kinds.index("approval_request") < kinds.index("approval_decided") < kinds.index("tool_result")
    assert "Kittens sleep all day." in events[-1][1]["content"]
    again = await AsyncClient().post(url, {"decision": "reject"}, "application/json", headers=bearer(user))
    assert again.status_code == 409 and again.json()["code"] == "approval_closed"
    stored = await ToolCall.objects.aget(pk=call.pk)
    assert (stored.status, stored.decided_by, stored.decided_by_user_id, stored.arguments_edited) == (
        "done",
        "user",
        user.pk,
        True,
    )


async def test_a_rejected_call_is_not_run_and_the_model_is_told(user, bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    response = await ask(user, bot, 'call knowledge_search {"query": "dogs"}')
    reading = asyncio.ensure_future(read_stream(response))
    call = await approval_pending()
    decided = await AsyncClient().post(
        f"/runs/{call.run_id}/approvals/{call.pk}", {"decision": "reject"}, "application/json", headers=bearer(user)
    )
    assert decided.status_code == 200
    events = parse_sse(await asyncio.wait_for(reading, 15))
    assert "The user rejected this call of knowledge_search" in events[-1][1]["content"]
    assert (await ToolCall.objects.aget()).status == "rejected"


async def test_an_approval_nobody_gives_expires_as_rejected(user, bot, upstream, settings):
    settings.TOOL_APPROVAL_SECONDS = 1
    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    response = await ask(user, bot, 'call knowledge_search {"query": "dogs"}')
    events = parse_sse(await asyncio.wait_for(read_stream(response), 15))
    assert "Nobody approved this call of knowledge_search in time" in events[-1][1]["content"]
    call = await ToolCall.objects.aget()
    assert (call.status, call.decided_by) == ("expired", "expiry")


async def test_a_stopped_run_closes_its_pending_approval(user, bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    response = await ask(user, bot, 'call knowledge_search {"query": "dogs"}')
    reading = asyncio.ensure_future(read_stream(response))
    call = await approval_pending()
    stopped = await AsyncClient().post(f"/runs/{call.run_id}/stop", headers=bearer(user))
    assert stopped.json()["status"] == "cancelled"
    events = parse_sse(await asyncio.wait_for(reading, 15))
    assert events[-1][1]["finish_reason"] == "cancelled"
    assert (await ToolCall.objects.aget()).status == "expired"
    late = await AsyncClient().post(
        f"/runs/{call.run_id}/approvals/{call.pk}", {"decision": "approve"}, "application/json", headers=bearer(user)
    )
    assert late.status_code == 409


async def test_a_run_waiting_when_its_process_stops_is_handed_over_and_goes_on_once_decided(user, bot, upstream):
    from chats.models import Run
    from chats.runs.runner import live_run, runs_shutdown

    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    response = await ask(user, bot, 'call knowledge_search {"query": "dogs"}')
    reading = asyncio.ensure_future(read_stream(response))
    call = await approval_pending()
    await runs_shutdown(grace=0)  # as a draining process does
    run = await Run.objects.aget(pk=call.run_id)
    assert live_run(run.pk) is None
    # Handed over, not interrupted: still running, its lease given up, the approval still pending.
    assert (run.status, run.lease_holder) == ("running", "")
    detail = (await AsyncClient().get(f"/runs/{run.pk}", headers=bearer(user))).json()
    assert detail["status"] == "running" and [a["approval_id"] for a in detail["approvals"]] == [str(call.pk)]
    decided = await AsyncClient().post(
        f"/runs/{run.pk}/approvals/{call.pk}", {"decision": "approve"}, "application/json", headers=bearer(user)
    )
    assert decided.status_code == 200
    events = parse_sse(await asyncio.wait_for(reading, 15))
    assert events[-1][0] == "done" and events[-1][1]["content"].startswith("Checking. Tool said:")
    seqs = [data["seq"] for _kind, data in events]
    assert seqs == sorted(set(seqs)), seqs  # numbered on, none repeated
    assert (await Run.objects.aget(pk=run.pk)).status == "complete"
    # The model that goes on reads its own words before the tools, and the call it made.
    assistant = next(m for m in model_requests(upstream)[-1]["messages"] if m.get("tool_calls"))
    assert assistant["content"] == "Checking. "
    # The first model call was recorded when it was handed over, the second by the run that went on.
    assert await ModelCall.objects.filter(user=user).acount() == 2


async def mcp_tools(bot, mcp_server, **policies: str) -> None:
    """The real MCP test server attached to `bot` as `lab`, with these policies for its tools."""
    from tools.services import tool_server_attach

    server = await sync_to_async(tool_server_attach)(user=bot.owner, bot_id=bot.id, name="lab", url=mcp_server.url)
    for name, policy in policies.items():
        await Tool.objects.filter(server=server, name=name).aupdate(policy=policy)


@pytest.fixture
def mcp_allowed(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]


async def test_an_allowed_mcp_tool_is_called_and_its_result_shapes_the_answer(
    user, bot, upstream, mcp_server, mcp_allowed
):
    await sync_to_async(tooled_bot)(bot)
    await mcp_tools(bot, mcp_server, add="allow", weather="deny")
    response = await ask(user, bot, 'call lab__add {"a": 2, "b": 40}')
    events = parse_sse(await read_stream(response))
    assert "42" in events[-1][1]["content"] and events[-1][0] == "done"
    assert [(c.tool, c.arguments) for c in mcp_server.calls] == [("add", {"a": 2, "b": 40})]
    # Offered by the name the model calls it (server__tool), with the server's schema; a denied tool is not.
    offered = {t["function"]["name"]: t["function"] for t in model_requests(upstream)[0]["tools"]}
    assert "lab__weather" not in offered and offered["lab__add"]["parameters"]["properties"].keys() >= {"a", "b"}


async def test_an_oversized_or_slow_mcp_result_is_cut_with_a_clear_note(
    user, bot, upstream, mcp_server, mcp_allowed, settings
):
    settings.TOOL_RESULT_MAX_CHARS = 100
    settings.TOOL_CALL_SECONDS = 0.5
    await sync_to_async(tooled_bot)(bot)
    await mcp_tools(bot, mcp_server, big="allow", slow="allow")
    response = await ask(user, bot, 'call lab__big {"chars": 5000} ;; call lab__slow {"seconds": 5}')
    events = parse_sse(await read_stream(response))
    results = {data["tool"]: data for kind, data in events if kind == "tool_result"}
    assert results["lab__big"]["truncated"] and results["lab__big"]["result_chars"] == 5000
    assert results["lab__slow"]["status"] == "failed" and "0.5" in results["lab__slow"]["error"]
    second = model_requests(upstream)[1]["messages"]
    big, slow = [m["content"] for m in second if m["role"] == "tool"]
    assert "[cut: the tool returned 5,000 characters; the first 100 are shown]" in big
    assert len(big) < 600
    # A failure reaches the model fenced as data too: the server wrote its text.
    assert results["lab__slow"]["error"] in slow and slow.startswith('<tool_result name="lab__slow" status="failed">')
    calls = {c.tool_name: c async for c in ToolCall.objects.all()}
    assert (calls["lab__big"].result_chars, calls["lab__big"].truncated) == (5000, True)


async def handed_over(user, bot, query: str = 'call knowledge_search {"query": "dogs"}'):
    """An answer waiting for its approval when its process stops (runs_shutdown), and its reader."""
    from chats.runs.runner import runs_shutdown

    response = await ask(user, bot, query)
    reading = asyncio.ensure_future(read_stream(response))
    call = await approval_pending()
    await runs_shutdown(grace=0)
    return call, reading


async def decide(user, call, decision: str = "approve", **body):
    return await AsyncClient().post(
        f"/runs/{call.run_id}/approvals/{call.pk}",
        {"decision": decision, **body},
        "application/json",
        headers=bearer(user),
    )


async def test_stopping_an_answer_no_process_holds_ends_it_and_a_later_decision_is_refused(user, bot, upstream):
    from chats.models import Run

    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    call, reading = await handed_over(user, bot)
    stopped = await AsyncClient().post(f"/runs/{call.run_id}/stop", headers=bearer(user))
    assert stopped.json()["status"] == "cancelled"
    assert (await decide(user, call)).status_code == 409
    events = parse_sse(await asyncio.wait_for(reading, 15))
    assert events[-1][0] == "done" and events[-1][1]["finish_reason"] == "cancelled"
    assert (await Run.objects.aget(pk=call.run_id)).status == "cancelled"
    assert (await ToolCall.objects.aget()).status == "expired"


async def test_an_answer_that_cannot_be_taken_up_ends_as_an_error_and_frees_the_chat(user, bot, upstream, settings):
    from chats.models import Run

    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    call, reading = await handed_over(user, bot)
    # The process that takes the decision has no key for the bot's provider (a redeploy with other settings).
    settings.LLM_PROVIDERS = {**settings.LLM_PROVIDERS, "custom": {**settings.LLM_PROVIDERS["custom"], "base_url": ""}}
    assert (await decide(user, call)).status_code == 200
    events = parse_sse(await asyncio.wait_for(reading, 15))
    assert events[-1][0] == "error" and events[-1][1]["code"] == "provider_not_configured"
    run = await Run.objects.aget(pk=call.run_id)
    assert (run.status, run.error_code, run.lease_holder) == ("error", "provider_not_configured", "")


async def test_a_resumed_answer_waiting_on_a_second_approval_still_has_its_model_time(user, bot, upstream, settings):
    settings.LLM_TOTAL_TIMEOUT = 1.0
    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    first, reading = await handed_over(
        user, bot, 'call knowledge_search {"query": "a"} ;; call knowledge_search {"query": "b"}'
    )
    assert (await decide(user, first)).status_code == 200
    second = None
    for _ in range(100):
        second = await ToolCall.objects.exclude(pk=first.pk).filter(status="pending").afirst()
        if second is not None:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # the user decides the second call after LLM_TOTAL_TIMEOUT
    assert (await decide(user, second)).status_code == 200
    events = parse_sse(await asyncio.wait_for(reading, 15))
    assert events[-1][0] == "done", events[-1]


async def test_a_visitor_cannot_edit_arguments_and_edited_ones_must_fit_the_tool(user, bot, upstream):
    from chats.models import Chat, Run
    from chats.visitors import visitor_new, visitor_token_issue

    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    response = await ask(user, bot, 'call knowledge_search {"query": "dogs"}')
    reading = asyncio.ensure_future(read_stream(response))
    call = await approval_pending()
    bad = await decide(user, call, arguments={"query": 7})
    assert bad.status_code == 400 and "query" in bad.json()["detail"], bad.json()
    # The answer is the owner's; a visitor's chat is the visitor's, and a visitor never edits arguments.
    visitor = await sync_to_async(visitor_new)(bot)
    run = await Run.objects.aget(pk=call.run_id)
    await Chat.objects.filter(pk=run.chat_id).aupdate(visitor_id=visitor.id)
    headers = {"Authorization": f"Visitor {await sync_to_async(visitor_token_issue)(visitor)}"}
    edited = await AsyncClient().post(
        f"/runs/{call.run_id}/approvals/{call.pk}",
        {"decision": "approve", "arguments": {"query": "cats"}},
        "application/json",
        headers=headers,
    )
    assert edited.status_code == 400 and edited.json()["code"] == "invalid_decision"
    # From the page that embeds the widget (another origin), when its socket is down: CORS allows it.
    url = f"/runs/{call.run_id}/approvals/{call.pk}"
    page = {"Origin": "https://shop.example.com"}
    preflight = await AsyncClient().options(url, headers={**page, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == page["Origin"]
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    plain = await AsyncClient().post(url, {"decision": "approve"}, "application/json", headers={**headers, **page})
    assert plain.status_code == 200 and plain.json()["decided_by"] == "visitor"
    assert plain["Access-Control-Allow-Origin"] == page["Origin"]
    await asyncio.wait_for(reading, 15)


async def test_a_tool_turned_off_while_its_call_waits_is_not_run(user, bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="ask")
    response = await ask(user, bot, 'call knowledge_search {"query": "dogs"}')
    reading = asyncio.ensure_future(read_stream(response))
    call = await approval_pending()
    await Tool.objects.filter(bot=bot).aupdate(policy="deny")
    assert (await decide(user, call)).status_code == 200
    events = parse_sse(await asyncio.wait_for(reading, 15))
    assert "was turned off while this call waited" in events[-1][1]["content"]
    assert (await ToolCall.objects.aget()).status == "denied"


async def test_an_allowed_web_search_is_called_and_cited_and_offered_only_with_searxng(user, bot, upstream, searxng):
    await sync_to_async(tooled_bot)(bot, web_search="allow")
    response = await ask(user, bot, 'call web_search {"query": "harbour tides"}')
    events = parse_sse(await read_stream(response))
    done = events[-1][1]
    first_result = searxng.results[0]
    assert first_result["title"] in done["content"] and "untrusted data" in done["content"]
    assert any(c.get("url") == first_result["url"] for c in done["citations"])


async def test_without_searxng_web_search_is_not_offered(user, bot, upstream, settings):
    settings.SEARXNG_URL = ""
    await sync_to_async(tooled_bot)(bot, web_search="allow")
    response = await ask(user, bot, 'call web_search {"query": "harbour tides"}')
    events = parse_sse(await read_stream(response))
    assert "tools" not in model_requests(upstream)[0]
    assert [k for k, _d in events if k.startswith("tool")] == []


async def test_knowledge_search_reads_only_the_bots_own_documents(user, other_user, bot, make_bot, upstream):
    await sync_to_async(tooled_bot)(bot, knowledge_search="allow")
    stranger = await sync_to_async(make_bot)(owner=other_user, name="Stranger")
    await sync_to_async(document_ingest_text)(
        knowledge_base=await sync_to_async(bot_home_base)(bot=stranger),
        filename="secret.txt",
        text="The vault combination is 4711 and only the stranger knows it.",
    )
    response = await ask(user, bot, 'call knowledge_search {"query": "vault combination"}')
    events = parse_sse(await read_stream(response))
    done = events[-1][1]
    assert "4711" not in done["content"] and "No passage of the documents matches" in done["content"]
    assert done["citations"] == []
