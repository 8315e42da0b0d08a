"""Tool approvals through real servers: an approval pending when its server process is killed is decided
after a restart, and the answer goes on from where it stopped (docs/tools.md, docs/reliability.md N5)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from conftest import POSTGRES_CONFIGURED
from tests.e2e_helpers import bot_with, sign_up, sse_events
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.e2e
# Short leases, so a killed process's runs lapse in seconds.
SERVER_SETTINGS = {"RUN_LEASE_SECONDS": "2", "RUN_LEASE_RENEW_SECONDS": "0.5", "TOOL_APPROVAL_SECONDS": "120"}


def server_on(data_dir: Path, fake_openai_server, *, like: LiveServer | None = None) -> LiveServer:
    """A server process; `like` another one's database and secret key (a restart of it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    live = LiveServer(data_dir, upstream_env(fake_openai_server, **SERVER_SETTINGS))
    if like is not None:
        live.env["SECRET_KEY"] = like.env["SECRET_KEY"]
        if not POSTGRES_CONFIGURED:
            live.env["DATABASE_URL"] = f"sqlite:///{Path(like.env['DATA_DIR']) / 'db.sqlite3'}"
    return live


async def tool_policy_set(http: httpx.AsyncClient, auth: dict[str, str], bot_id: str, name: str, policy: str) -> None:
    tools = await http.get(f"/bots/{bot_id}/tools", headers=auth)
    assert tools.status_code == 200, tools.text
    tool = next(t for t in tools.json() if t["name"] == name)
    changed = await http.patch(f"/bots/{bot_id}/tools/{tool['id']}", json={"policy": policy}, headers=auth)
    assert changed.status_code == 200, changed.text


async def test_an_approval_pending_when_its_process_is_killed_is_decided_after_a_restart(fake_openai_server, tmp_path):
    fake_openai_server.reset()
    first = server_on(tmp_path / "first", fake_openai_server).start()
    restarted = None
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=20) as http:
            _token, auth = await sign_up(http)
            bot_id = await bot_with(http, auth, "fake-tools")
            await tool_policy_set(http, auth, bot_id, "knowledge_search", "ask")
            headers = {**auth, "Accept": "text/event-stream"}
            body = {"query": 'call knowledge_search {"query": "harbour"}'}
            async with http.stream("POST", f"/chat/{bot_id}", json=body, headers=headers) as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                events = []
                while not events or events[-1]["event"] != "approval_request":
                    events += await sse_events(lines, 1)
                first.process.kill()  # SIGKILL while the approval is pending: nothing stored, nothing given back
                first.process.wait(10)
        request = events[-1]["data"]
        run_id, approval_id = request["run_id"], request["approval_id"]

        restarted = server_on(tmp_path / "restarted", fake_openai_server, like=first).start()
        async with httpx.AsyncClient(base_url=restarted.url, timeout=20) as http:
            await asyncio.sleep(float(SERVER_SETTINGS["RUN_LEASE_SECONDS"]) + 1)  # the dead process's lease lapsed
            state = (await http.get(f"/runs/{run_id}", headers=auth)).json()
            # Not interrupted: it waits for its decision, which is still listed.
            assert state["status"] == "running", state
            assert [a["approval_id"] for a in state["approvals"]] == [approval_id]
            decided = await http.post(
                f"/runs/{run_id}/approvals/{approval_id}", json={"decision": "approve"}, headers=auth
            )
            assert decided.status_code == 200, decided.text
            follow = {**auth, "Last-Event-ID": f"{run_id}:{request['seq']}"}
            async with http.stream("GET", f"/runs/{run_id}/events", headers=follow) as response:
                assert response.status_code == 200
                rest = await sse_events(response.aiter_lines())
            kinds = [event["event"] for event in rest]
            assert kinds[-1] == "done", rest
            assert "approval_decided" in kinds and "tool_result" in kinds
            # Numbered on from the killed process's events, and the answer keeps what it wrote before.
            assert rest[0]["data"]["seq"] > request["seq"]
            deadline = time.monotonic() + 10
            while (state := (await http.get(f"/runs/{run_id}", headers=auth)).json())["status"] == "running":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert state["status"] == "complete", state
            assert state["content"].startswith("Checking. Tool said:"), state["content"]
            assert state["approvals"] == []
    finally:
        if restarted is not None:
            restarted.stop()
            assert not restarted.tracebacks(), restarted.tracebacks()
        first.stop()


def test_the_openai_sdk_answers_an_approval_as_a_tool_call_and_gets_the_rest_of_the_answer(
    fake_openai_server, tmp_path
):
    """docs/reliability.md N4: the official SDK, streamed and not, against a real server."""
    import openai

    fake_openai_server.reset()
    live = server_on(tmp_path, fake_openai_server).start()
    try:
        auth = asyncio.run(_signed_up(live.url))
        bot_id = asyncio.run(_tooled_bot(live.url, auth))
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=auth["Authorization"].split()[1], max_retries=0)
        messages = [{"role": "user", "content": 'call knowledge_search {"query": "harbour"}'}]
        reply = client.chat.completions.create(model=f"bot-{bot_id}", messages=messages)
        assert reply.choices[0].finish_reason == "tool_calls"
        call = reply.choices[0].message.tool_calls[0]
        assert (call.function.name, json.loads(call.function.arguments)) == ("knowledge_search", {"query": "harbour"})
        messages += [
            reply.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "approve"},
        ]
        stream = client.chat.completions.create(model=f"bot-{bot_id}", messages=messages, stream=True)
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith("Tool said:") and chunks[-1].choices[0].finish_reason == "stop"
        # The same answer again (the SDK's retry after a lost response) reads the same rest; another is refused.
        again = client.chat.completions.create(model=f"bot-{bot_id}", messages=messages)
        assert again.choices[0].message.content == text
        messages[-1] = {**messages[-1], "content": "reject"}
        with pytest.raises(openai.ConflictError):
            client.chat.completions.create(model=f"bot-{bot_id}", messages=messages)
    finally:
        live.stop()
        assert not live.tracebacks(), live.tracebacks()


async def _signed_up(url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        return (await sign_up(http))[1]


async def _tooled_bot(url: str, auth: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        bot_id = await bot_with(http, auth, "fake-tools")
        await tool_policy_set(http, auth, bot_id, "knowledge_search", "ask")
        return bot_id
