"""The 004 flow (chats, conversations, SSE inference with and without web search) through a real
server, read with httpx streaming the way a browser's EventSource would (token in the query, no headers)."""

import json
import uuid

import httpx
import pytest

from tests.e2e_helpers import eventually
from tests.live_server import LiveServer, log_tracebacks, upstream_env

pytestmark = pytest.mark.e2e
PASSWORD = "una-clave-segura"


@pytest.fixture(scope="module")
def server(fake_openai_server, fake_searxng_server, tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("live-004"),
        upstream_env(
            fake_openai_server,
            SEARXNG_URL=fake_searxng_server.url,
            WEB_SEARCH_TIMEOUT="2",
        ),
    ).start()
    yield live
    live.stop()


@pytest.fixture
def http(server, fake_openai_server, fake_searxng_server):
    fake_openai_server.reset()
    fake_searxng_server.reset()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def login(http: httpx.Client) -> tuple[dict[str, str], dict]:
    email = f"e2e-004-{uuid.uuid4().hex[:8]}@example.com"
    assert http.post("/users/", json={"email": email, "password": PASSWORD}).status_code == 200
    tokens = http.post("/token", data={"username": email, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}, tokens


def chat_with_bot(http: httpx.Client, auth: dict[str, str], model_id: str, name: str = "Chat 1") -> dict:
    bot = http.post(
        "/bots/",
        json={"name": model_id, "initial_configs": [{"provider": "custom", "model_id": model_id}]},
        headers=auth,
    )
    assert bot.status_code == 201
    chat = http.post("/chats/create", json={"name": name, "bot_id": bot.json()["id"]}, headers=auth)
    assert chat.status_code == 201
    return chat.json()


def ask(http: httpx.Client, auth: dict[str, str], chat_id: str, text: str) -> dict:
    response = http.post(
        "/conversations/create", json={"chat_id": chat_id, "role": "Human", "message": text}, headers=auth
    )
    assert response.status_code == 201
    return response.json()


def sse_events(lines):
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


def test_documented_flow_with_an_eventsource_style_client(http, server, fake_openai_server, fake_searxng_server):
    auth, tokens = login(http)
    chat = chat_with_bot(http, auth, "fake-tokens-20-30")
    assert set(chat) == {"id", "name", "created_at", "updated_at"}
    assert [row["id"] for row in http.get("/chats/", headers=auth).json()] == [chat["id"]]
    assert http.get(f"/chats/{chat['id']}", headers=auth).json() == chat
    question = ask(http, auth, chat["id"], "count for me")
    assert question["role"] == "Human"

    token = {"token": tokens["access_token"]}
    with http.stream(
        "GET", f"/conversations/inference/{chat['id']}", params=token, headers={"Accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
        assert next(events)[0] == "chunk"
        assert fake_openai_server.completed == 0, "first chunk only after the upstream finished: buffered"
        rest = list(events)
    kind, done = rest[-1]
    assert kind == "done" and done["content"].split() == [f"t{i}" for i in range(20)]
    listed = http.get(f"/chats/{chat['id']}/conversations", headers=auth).json()
    assert [(row["role"], row["message"]) for row in listed] == [
        ("Human", "count for me"),
        ("Assistant", done["content"]),
    ]
    # The same chat, through the 002 and 003 surfaces.
    [conversation] = http.get("/conversations", headers=auth).json()
    assert (conversation["id"], conversation["title"]) == (chat["id"], "Chat 1")
    assert conversation["current_node"] == done["message_id"]
    assert http.get("/chat/sessions", headers=auth).json()["sessions"] == [chat["id"]]

    renamed = http.put(
        f"/chats/update/{chat['id']}", json={"name": "Renamed", "updated_at": "2001-01-01T00:00:00Z"}, headers=auth
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed"
    assert not renamed.json()["updated_at"].startswith("2001")

    searched = chat_with_bot(http, auth, "fake-echo", "Searched")
    ask(http, auth, searched["id"], "where is the treasure")
    fake_searxng_server.results.append({"url": fake_searxng_server.canary_url, "title": "t", "content": "fetch me"})
    with http.stream("GET", f"/conversations/inference_internet/{searched['id']}", params=token) as response:
        events = list(sse_events(response.iter_lines()))
    kind, done = events[-1]
    assert kind == "done" and done["content"] == "Echo: where is the treasure"
    assert [c["url"] for c in done["citations"]][-1] == fake_searxng_server.canary_url
    assert "https://example.org/pirates" in [c["url"] for c in done["citations"]]
    assert fake_searxng_server.canary_hits == 0

    deleted = http.delete(f"/chats/delete/{chat['id']}", headers=auth)
    assert deleted.status_code == 200 and deleted.json()["detail"]
    assert http.get(f"/chats/{chat['id']}", headers=auth).status_code == 404
    assert [row["id"] for row in http.get("/chats", headers=auth).json()] == [searched["id"]]


def test_stream_tokens_other_than_a_valid_access_token_are_401_json(http):
    auth, tokens = login(http)
    chat = chat_with_bot(http, auth, "fake-echo")
    ask(http, auth, chat["id"], "hi")
    for token in ("garbage", tokens["refresh_token"], tokens["access_token"] + "x"):
        response = http.get(f"/conversations/inference/{chat['id']}", params={"token": token})
        assert response.status_code == 401 and response.json()["detail"]
    _other_auth, other_tokens = login(http)
    response = http.get(f"/conversations/inference/{chat['id']}", params={"token": other_tokens["access_token"]})
    assert response.status_code == 404


def test_a_client_that_disconnects_leaves_the_answer_running_and_the_chat_free_after(http, fake_openai_server):
    auth, tokens = login(http)
    chat = chat_with_bot(http, auth, "fake-tokens-40-20")
    ask(http, auth, chat["id"], "count")
    fake_openai_server.reset()
    streamed = []
    with http.stream("GET", f"/conversations/inference/{chat['id']}", params={"token": tokens["access_token"]}) as r:
        for _kind, data in sse_events(r.iter_lines()):
            streamed.append(data["content"])
            if len(streamed) >= 3:
                break
    # The answer runs on to its end on the server (docs/runs.md), and is stored whole.
    assert fake_openai_server.wait_for(lambda: fake_openai_server.completed == 1, timeout=10)
    assert fake_openai_server.disconnects == 0
    assert eventually(
        lambda: len(http.get(f"/chats/{chat['id']}/conversations", headers=auth).json()[-1]["message"].split()) == 40
    )
    listed = http.get(f"/chats/{chat['id']}/conversations", headers=auth).json()
    assert listed[-1]["role"] == "Assistant" and listed[-1]["message"].startswith("".join(streamed))
    # Then the chat is free again on the real server: a new answer is not refused as busy.
    with http.stream("GET", f"/conversations/inference/{listed[0]['id']}", headers=auth) as response:
        assert response.status_code == 200
        assert next(sse_events(response.iter_lines()))[0] == "chunk"


def test_query_tokens_stay_out_of_the_server_log(http, server):
    auth, tokens = login(http)
    chat = chat_with_bot(http, auth, "fake-echo")
    ask(http, auth, chat["id"], "hi")
    response = http.get(f"/conversations/inference/{chat['id']}", params={"token": tokens["access_token"]})
    assert response.status_code == 200
    assert http.get(f"/conversations/inference/{chat['id']}", params={"token": "garbage-e2e-token"}).status_code == 401
    # The request log's line is written once the app is done with the request, just after its last byte.
    chat_id = chat["id"]
    path = f'"path": "/conversations/inference/{chat_id}"'
    assert eventually(lambda: server.log().count(path) == 2, timeout=10)
    log = server.log()
    assert tokens["access_token"] not in log and "garbage-e2e-token" not in log
    assert not log_tracebacks(log), log_tracebacks(log)
