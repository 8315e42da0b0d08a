"""The 003 chat sessions through a real server, a real WebSocket client and real HTTP (the seed's flow)."""

import asyncio
import json
import time
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.live_server import LiveServer, log_tracebacks, upstream_env

pytestmark = pytest.mark.e2e
SEED_CONTEXT = {"total_spent": 12450.50, "total_invoices": 48, "total_suppliers": 12}


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("live-sessions"),
        upstream_env(
            fake_openai_server,
            LLM_LOCAL_WORD_DELAY="0",
        ),
    ).start()
    yield live
    live.stop()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def sign_up(http: httpx.Client) -> tuple[dict[str, str], str]:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    assert http.post("/users/", json={"email": email, "password": "una-clave-segura"}).status_code == 200
    token = http.post("/token", data={"username": email, "password": "una-clave-segura"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}, token


def session_with_model(http: httpx.Client, auth: dict[str, str], model_id: str, context=None) -> dict:
    bot = http.post(
        "/bots/",
        json={"name": model_id, "initial_configs": [{"provider": "custom", "model_id": model_id}]},
        headers=auth,
    )
    body = {"bot_id": bot.json()["id"]} | ({"context": context} if context else {})
    created = http.post("/chat/sessions", json=body, headers=auth)
    assert created.status_code == 201, created.text
    return created.json()


def open_socket(url: str, **kwargs):
    # proxy=None: environment proxies must not divert loopback traffic.
    return connect(url, proxy=None, open_timeout=5, max_size=2**20, **kwargs)


async def frames_until_end(socket, timeout: float = 10) -> list[dict]:
    frames = []
    async with asyncio.timeout(timeout):
        while not frames or frames[-1]["type"] not in ("done", "error"):
            frames.append(json.loads(await socket.recv()))
    return frames


async def until(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        await asyncio.sleep(0.05)
    return predicate()


async def test_the_seed_flow_create_connect_stream_history_context_delete(http, server, fake_openai_server):
    auth, _token = sign_up(http)
    data = session_with_model(http, auth, "fake-echo", context=SEED_CONTEXT)
    assert data["status"] == "created"
    assert data["websocket_url"].startswith(f"ws://127.0.0.1:{server.port}/chat/ws/{data['session_id']}?ticket=")
    fake_openai_server.reset()
    # The seed's frontend: `new WebSocket(data.websocket_url)`, then JSON frames.
    async with open_socket(data["websocket_url"]) as ws:
        assert json.loads(await ws.recv())["type"] == "system"
        await ws.send(
            json.dumps({"type": "message", "content": "Explícame mis gastos", "context": {"total_spent": 10000}})
        )
        frames = await frames_until_end(ws)
    # Chunks are coalesced (RUN_COALESCE_MS): their number is not the model's; their text is.
    assert [frame["type"] for frame in frames[:-1]] == ["chunk"] * (len(frames) - 1) and len(frames) >= 2
    assert frames[-1]["type"] == "done"
    assert frames[-1]["content"] == "".join(frame["content"] for frame in frames[:-1]) == "Echo: Explícame mis gastos"
    system = fake_openai_server.requests[-1].body["messages"][0]["content"]
    assert '"total_spent": 10000' in system and '"total_invoices": 48' in system

    session_id = data["session_id"]
    history = http.get(f"/chat/sessions/{session_id}/history", headers=auth).json()
    assert history["session_id"] == session_id
    assert [(item["role"], item["content"]) for item in history["history"]] == [
        ("user", "Explícame mis gastos"),
        ("assistant", "Echo: Explícame mis gastos"),
    ]
    updated = http.post(f"/chat/sessions/{session_id}/context", json={"total_spent": 2000}, headers=auth)
    assert updated.json() == {"status": "updated", "session_id": session_id}
    listed = http.get("/chat/sessions", headers=auth).json()
    assert listed == {"sessions": [session_id], "count": 1}
    deleted = http.delete(f"/chat/sessions/{session_id}", headers=auth)
    assert deleted.json() == {"status": "deleted", "session_id": session_id}
    assert http.get("/chat/sessions", headers=auth).json() == {"sessions": [], "count": 0}


async def test_handshake_policy_origin_ticket_and_token(http, server):
    auth, token = sign_up(http)
    session_id = http.post("/chat/sessions", headers=auth).json()["session_id"]

    def fresh_url() -> str:
        return http.post(f"/chat/sessions/{session_id}/websocket", headers=auth).json()["websocket_url"]

    url = fresh_url()
    async with open_socket(url, origin=f"http://127.0.0.1:{server.port}") as ws:
        assert json.loads(await ws.recv())["type"] == "system"
    with pytest.raises(InvalidStatus) as reused:
        async with open_socket(url):
            pass
    assert reused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as foreign:
        async with open_socket(fresh_url(), origin="https://evil.example"):
            pass
    assert foreign.value.response.status_code == 403
    ws_base = server.url.replace("http://", "ws://")
    async with open_socket(f"{ws_base}/chat/ws/{session_id}?token={token}") as ws:
        assert json.loads(await ws.recv())["type"] == "system"
    other_auth, other_token = sign_up(http)
    for refused in (f"/chat/ws/{session_id}?token={other_token}", f"/chat/ws/{session_id}", "/chat/ws/elsewhere"):
        with pytest.raises(InvalidStatus) as denied:
            async with open_socket(ws_base + refused):
                pass
        assert denied.value.response.status_code == 403
    assert http.post(f"/chat/sessions/{session_id}/websocket", headers=other_auth).status_code == 404


async def test_a_second_socket_watches_the_answer_with_numbered_frames(http, server):
    auth, _token = sign_up(http)
    data = session_with_model(http, auth, "fake-tokens-40-10")
    second_url = http.post(f"/chat/sessions/{data['session_id']}/websocket", headers=auth).json()["websocket_url"]
    async with open_socket(data["websocket_url"]) as speaker, open_socket(second_url) as watcher:
        for ws in (speaker, watcher):
            assert json.loads(await ws.recv())["type"] == "system"
        await speaker.send(json.dumps({"type": "message", "content": "go"}))
        spoken, watched = await asyncio.gather(frames_until_end(speaker), frames_until_end(watcher))
    expected = " ".join(f"t{i}" for i in range(40)) + " "
    for frames in (spoken, watched):
        assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
        assert frames[-1]["type"] == "done" and frames[-1]["content"] == expected
        assert "".join(frame["content"] for frame in frames[:-1]) == expected
    # Both read the run's log: the watcher gets the very frames the asker does.
    assert watched == spoken


async def test_closing_mid_answer_leaves_it_running_a_new_socket_resumes_it_and_a_dropped_upstream_is_an_error(
    http, server, fake_openai_server
):
    # A socket that closes no longer cancels the answer: it runs to its end, stored `complete`, and can be resumed.
    auth, _token = sign_up(http)
    data = session_with_model(http, auth, "fake-tokens-60-40")
    fake_openai_server.reset()
    seen: list[dict] = []
    async with open_socket(data["websocket_url"]) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "message", "content": "go"}))
        while not "".join(frame["content"] for frame in seen).startswith("t0 t1 t2 "):
            seen.append(json.loads(await ws.recv()))
    assert {frame["type"] for frame in seen} == {"chunk"}
    run_id = seen[0]["run_id"]
    url = http.post(f"/chat/sessions/{data['session_id']}/websocket", headers=auth).json()["websocket_url"]
    async with open_socket(url) as ws:
        greeting = json.loads(await ws.recv())
        assert greeting["type"] == "system" and greeting["run_id"] == run_id
        await ws.send(json.dumps({"type": "resume", "run_id": run_id, "after": seen[-1]["seq"]}))
        resumed = await frames_until_end(ws)
    frames = seen + resumed
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    done = frames[-1]
    assert done["type"] == "done" and done["finish_reason"] == "stop"
    expected = " ".join(f"t{i}" for i in range(60)) + " "
    assert "".join(frame["content"] for frame in frames[:-1]) == done["content"] == expected
    assert await until(lambda: fake_openai_server.completed == 1)
    assert fake_openai_server.disconnects == 0

    def last_answer(session_id: str) -> dict:
        return http.get(f"/chat/sessions/{session_id}/history", headers=auth).json()["history"][-1]

    answer = last_answer(data["session_id"])
    assert answer["role"] == "assistant" and answer["status"] == "complete" and answer["content"] == expected

    dropped = session_with_model(http, auth, "fake-drop-3")
    async with open_socket(dropped["websocket_url"]) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "message", "content": "uno dos tres cuatro"}))
        frames = await frames_until_end(ws)
    # Chunks are coalesced: the three the model sent may come as fewer frames, with the same text.
    assert [frame["type"] for frame in frames] == ["chunk"] * (len(frames) - 1) + ["error"] and len(frames) >= 2
    assert frames[-1]["partial"] == "".join(frame["content"] for frame in frames[:-1])
    assert last_answer(dropped["session_id"])["status"] == "error"


async def test_tickets_and_tokens_stay_out_of_the_server_log(http, server):
    auth, token = sign_up(http)
    data = http.post("/chat/sessions", headers=auth).json()
    async with open_socket(data["websocket_url"]) as ws:
        await ws.recv()
    assert await until(lambda: f"/chat/ws/{data['session_id']}" in server.log())  # the access log is there...
    log = server.log()
    assert data["websocket_url"].split("ticket=")[1] not in log
    assert token not in log
    assert not log_tracebacks(log), log_tracebacks(log)
    assert "took too long to shut down" not in log
