"""One chat through every API (000, 002, 003, 004) against a real server with real clients."""

import asyncio
import json
import threading
import time

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.helpers import parse_sse
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("surfaces"),
        upstream_env(
            fake_openai_server,
            LLM_PROVIDER="custom",
            LLM_MODEL="fake-echo",
            LLM_CHAT_MODELS="custom/fake-tokens-80-20",
        ),
    ).start()
    yield live
    live.stop()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=15) as client:
        yield client


def login(http: httpx.Client) -> tuple[str, dict[str, str]]:
    from tests.live_server import new_user_auth

    headers = new_user_auth(http)
    return headers["Authorization"].removeprefix("Bearer "), headers


async def socket_turn(url: str, content: str) -> list[dict]:
    """Connect, read the greeting, ask once; every frame up to the answer's last."""
    async with asyncio.timeout(15), connect(url, proxy=None, open_timeout=5) as socket:
        assert json.loads(await socket.recv())["type"] == "system"
        await socket.send(json.dumps({"type": "message", "content": content}))
        frames = []
        while not frames or frames[-1]["type"] not in ("done", "error"):
            frames.append(json.loads(await socket.recv()))
        return frames


def websocket_url(http: httpx.Client, headers: dict[str, str], chat_id: str) -> str:
    response = http.post(f"/chat/sessions/{chat_id}/websocket", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["websocket_url"]


def test_one_chat_is_the_same_chat_in_every_api(http, fake_openai_server):
    token, headers = login(http)
    # 004 creates the chat and answers its first Human message over SSE (authenticated by ?token=).
    chat_id = http.post("/chats/create", json={"name": "Shared"}, headers=headers).json()["id"]
    human = {"chat_id": chat_id, "role": "Human", "message": "first via 004"}
    assert http.post("/conversations/create", json=human, headers=headers).status_code == 201
    inference = http.get(f"/conversations/inference/{chat_id}", params={"token": token})
    events = parse_sse(inference.content)
    assert events[-1][0] == "done" and events[-1][1]["content"] == "Echo: first via 004"

    # 002 lists it as a conversation and continues it with its history.
    listed = http.get("/conversations", headers=headers).json()
    assert [(c["id"], c["title"]) for c in listed] == [(chat_id, "Shared")]
    asked = http.post(f"/conversations/{chat_id}/ask", json={"prompt": "second via 002"}, headers=headers)
    assert asked.status_code == 201 and asked.json()["response"]["message"] == "Echo: second via 002"
    sent = [m["content"] for m in fake_openai_server.requests[-1].body["messages"][1:]]
    assert sent == ["first via 004", "Echo: first via 004", "second via 002"]

    # 003 opens it as a session over WebSocket.
    frames = asyncio.run(socket_turn(websocket_url(http, headers, chat_id), "third via 003"))
    assert frames[-1]["type"] == "done" and frames[-1]["content"] == "Echo: third via 003"
    assert "".join(f["content"] for f in frames if f["type"] == "chunk") == "Echo: third via 003"

    # 000 continues it too.
    answer = http.post("/chat", json={"token": token, "text": "fourth via 000", "chat_id": chat_id})
    assert answer.status_code == 200 and answer.text == "Echo: fourth via 000"

    questions = ["first via 004", "second via 002", "third via 003", "fourth via 000"]
    history = http.get(f"/chat/sessions/{chat_id}/history", headers=headers).json()["history"]
    assert [h["content"] for h in history if h["role"] == "user"] == questions
    assert [h["content"] for h in history if h["role"] == "assistant"] == [f"Echo: {q}" for q in questions]
    conversations = http.get(f"/chats/{chat_id}/conversations", headers=headers).json()
    assert [c["role"] for c in conversations] == ["Human", "Assistant"] * 4
    assert len(http.get(f"/conversations/{chat_id}/messages", headers=headers).json()) == 8

    # Deleted through 003, it is gone everywhere.
    assert http.delete(f"/chat/sessions/{chat_id}", headers=headers).json()["status"] == "deleted"
    assert http.get(f"/conversations/{chat_id}/messages", headers=headers).status_code == 404
    assert http.get(f"/chats/{chat_id}", headers=headers).status_code == 404


def test_a_chat_answering_through_one_api_refuses_a_second_answer_from_another(http, server):
    token, headers = login(http)
    started = http.post("/conversations/new", json={"prompt": "hello", "title": "Busy"}, headers=headers)
    chat_id = started.json()["response"]["conversation_id"]
    slow = {}

    def ask_slowly() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = {"prompt": "a long answer", "model": "custom/fake-tokens-80-20"}
            slow["response"] = client.post(f"/conversations/{chat_id}/ask", json=body, headers=headers)

    thread = threading.Thread(target=ask_slowly)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the slow question is stored and being answered
        messages = http.get(f"/conversations/{chat_id}/messages", headers=headers).json()
        if any(m["message"] == "a long answer" for m in messages):
            break
        time.sleep(0.05)
    frames = asyncio.run(socket_turn(websocket_url(http, headers, chat_id), "me too"))
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "chat_busy"
    inference = http.get(f"/conversations/inference/{chat_id}", params={"token": token})
    assert inference.status_code == 409
    thread.join(30)
    assert slow["response"].status_code == 201
    assert slow["response"].json()["response"]["message"].startswith("t0 t1 t2")
    # Free again: the socket's question is answered now.
    frames = asyncio.run(socket_turn(websocket_url(http, headers, chat_id), "my turn"))
    assert frames[-1]["type"] == "done" and frames[-1]["content"] == "Echo: my turn"
