"""Redis stopped under a real server: logins and sign-ups answer 503 and recover; a socket whose
channel layer fails is told and closed while its answer runs on, is stored complete, and can be
resumed on a new socket once Redis is back (docs/reliability.md)."""

import asyncio
import json
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.live_server import LiveServer, upstream_env
from tests.redis_server import RedisServer

pytestmark = pytest.mark.e2e
PASSWORD = "una-clave-segura"
# 40 tokens, 300 ms apart: still streaming when Redis is stopped after the fifth.
SLOW_MODEL = "fake-tokens-40-300"


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def server(redis_server, fake_openai_server, tmp_path):
    data_dir = tmp_path / "live"
    data_dir.mkdir()
    live = LiveServer(data_dir, upstream_env(fake_openai_server, REDIS_URL=redis_server.url())).start()
    yield live
    live.stop()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def sign_up(http: httpx.Client) -> tuple[str, dict[str, str]]:
    email = f"redis-{uuid.uuid4().hex[:8]}@example.com"
    assert http.post("/users/", json={"email": email, "password": PASSWORD}).status_code == 200
    token = http.post("/token", data={"username": email, "password": PASSWORD}).json()["access_token"]
    return email, {"Authorization": f"Bearer {token}"}


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == "service_unavailable" and "temporarily unavailable" in body["detail"]


def test_login_and_sign_up_answer_503_while_redis_is_down_and_work_once_it_is_back(http, redis_server):
    email, _auth = sign_up(http)
    redis_server.stop()
    assert_unavailable(http.post("/token", data={"username": email, "password": PASSWORD}))
    assert_unavailable(http.post("/users/", json={"email": "new-" + email, "password": PASSWORD}))
    redis_server.start()
    assert http.post("/token", data={"username": email, "password": PASSWORD}).status_code == 200
    assert http.post("/users/", json={"email": "new-" + email, "password": PASSWORD}).status_code == 200


async def test_a_socket_whose_channel_layer_fails_is_told_its_answer_runs_on_and_is_resumed_once_redis_is_back(
    http, redis_server, fake_openai_server
):
    # A socket losing the channel layer no longer stops its answer: the answer is stored complete and can be resumed.
    _email, auth = sign_up(http)
    bot = http.post(
        "/bots/",
        json={"name": "slow", "initial_configs": [{"provider": "custom", "model_id": SLOW_MODEL}]},
        headers=auth,
    ).json()
    session = http.post("/chat/sessions", json={"bot_id": bot["id"]}, headers=auth).json()
    fake_openai_server.reset()
    frames: list[dict] = []
    async with connect(session["websocket_url"], proxy=None, open_timeout=5) as ws:
        assert json.loads(await ws.recv())["type"] == "system"
        await ws.send(json.dumps({"type": "message", "content": "tell me a long story"}))
        async with asyncio.timeout(20):
            while len(frames) < 5:
                frames.append(json.loads(await ws.recv()))
            await asyncio.to_thread(redis_server.stop)
            try:
                while True:
                    frames.append(json.loads(await ws.recv()))
            except ConnectionClosed:
                pass
    chunks, error = frames[:-1], frames[-1]
    assert all(frame["type"] == "chunk" for frame in chunks), frames
    assert error["type"] == "error" and error["code"] == "shared_state_unavailable", frames
    assert ws.close_code == 4503  # the server closed it, it did not crash (1011)
    seen = "".join(frame["content"] for frame in chunks)
    assert seen.startswith("t0 t1 t2 t3 t4 ") and len(seen.split()) < 40
    await asyncio.to_thread(redis_server.start)

    # Once Redis is back, a new socket resumes the answer where the client left it.
    url = http.post(f"/chat/sessions/{session['session_id']}/websocket", headers=auth).json()["websocket_url"]
    async with connect(url, proxy=None, open_timeout=5) as ws:
        greeting = json.loads(await ws.recv())
        assert greeting["type"] == "system"
        run_id = chunks[0]["run_id"]
        await ws.send(json.dumps({"type": "resume", "run_id": run_id, "after": chunks[-1]["seq"]}))
        resumed = []
        async with asyncio.timeout(20):
            while not resumed or resumed[-1]["type"] not in ("done", "error"):
                resumed.append(json.loads(await ws.recv()))
    answer = chunks + resumed
    assert [frame["seq"] for frame in answer] == list(range(1, len(answer) + 1))
    done = answer[-1]
    expected = " ".join(f"t{i}" for i in range(40)) + " "
    assert done["type"] == "done" and done["finish_reason"] == "stop", done
    assert "".join(frame["content"] for frame in answer[:-1]) == done["content"] == expected
    # The upstream request was left to finish its 40 tokens.
    assert await asyncio.to_thread(fake_openai_server.wait_for, lambda: fake_openai_server.completed == 1)
    assert fake_openai_server.disconnects == 0
    history = http.get(f"/chat/sessions/{session['session_id']}/history", headers=auth).json()["history"]
    assert [(item["role"], item["status"]) for item in history] == [("user", "complete"), ("assistant", "complete")]
    assert history[1]["content"] == expected
