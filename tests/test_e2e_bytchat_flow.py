"""The 001 flow through a real server with real HTTP clients (the README walk-through)."""

import json
import time
import uuid

import httpx
import pytest

from tests.live_server import LiveServer, log_tracebacks, upstream_env

pytestmark = pytest.mark.e2e
SEED_BOT = {
    "name": "Mi Nuevo Asistente",
    "description": "Un bot para pruebas.",
    "initial_configs": [{"task_type": "general", "provider": "google", "model_id": "gemini-1.5-flash-latest"}],
}


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("live"),
        upstream_env(
            fake_openai_server,
            GOOGLE_API_KEY="",
            LLM_LOCAL_WORD_DELAY="0.01",
        ),
        with_worker=True,  # the walk-through trains the bot, as under `make run`
    ).start()
    yield live
    live.stop()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def wait_ready(http: httpx.Client, auth: dict[str, str], bot_id: str, document_id: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        document = http.get(f"/bots/{bot_id}/documents/{document_id}", headers=auth).json()
        if document["status"] in ("ready", "failed") or time.monotonic() > deadline:
            return document
        time.sleep(0.2)


def register_and_login(http: httpx.Client) -> dict[str, str]:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    created = http.post("/users/", json={"email": email, "password": "una-clave-segura"})
    assert created.status_code == 200 and created.json()["email"] == email
    assert "password" not in created.json()
    token = http.post("/token", data={"username": email, "password": "una-clave-segura"})
    assert token.status_code == 200 and token.json()["token_type"] == "bearer"
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def fake_wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def sse_events(lines):
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


def test_readme_walkthrough_streams_an_answer_from_the_local_provider(http, server):
    assert http.get("/").json()["Status"] == "Running"
    auth = register_and_login(http)
    bot = http.post("/bots/", json=SEED_BOT, headers=auth)
    assert bot.status_code == 201
    bot_id = bot.json()["id"]
    prompt = {"system_prompt": "Ahora eres un robot pirata que habla como tal."}
    assert http.put(f"/bots/{bot_id}", json=prompt, headers=auth).status_code == 200
    # The seed's Gemini config has no key on this server: a clear 503 naming the provider.
    refused = http.post(f"/chat/{bot_id}", params={"query": "hola"}, headers=auth)
    assert refused.status_code == 503 and "google" in refused.json()["detail"]
    http.delete(f"/bots/{bot_id}/models/{bot.json()['model_configs'][0]['id']}", headers=auth)
    added = http.post(
        f"/bots/{bot_id}/models/",
        json={"provider": "local", "model_id": "bytchat-local", "task_type": "general"},
        headers=auth,
    )
    assert added.status_code == 201
    # The offline model answers from the bot's documents (never from its system prompt).
    facts = {"file": ("tesoro.txt", b"Los piratas entierran el tesoro en islas lejanas.\n", "text/plain")}
    document = http.post(f"/bots/{bot_id}/train", files=facts, headers=auth)
    assert document.status_code == 202
    assert wait_ready(http, auth, bot_id, document.json()["id"])["status"] == "ready"
    with http.stream(
        "POST", f"/chat/{bot_id}", params={"query": "¿Dónde entierran el tesoro los piratas?"}, headers=auth
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        pieces = [piece for piece in response.iter_text() if piece]
    answer = "".join(pieces)
    assert "Los piratas entierran el tesoro en islas lejanas." in answer and "robot pirata" not in answer
    assert len(pieces) > 3, "the answer arrived in one piece: the stream was buffered"


def test_sse_first_chunk_arrives_while_the_model_is_still_writing(http, server, fake_openai_server):
    auth = register_and_login(http)
    bot = http.post(
        "/bots/",
        json={"name": "slow", "initial_configs": [{"provider": "custom", "model_id": "fake-tokens-30-50"}]},
        headers=auth,
    ).json()
    fake_openai_server.reset()
    with http.stream(
        "POST", f"/chat/{bot['id']}", json={"query": "go"}, headers={**auth, "Accept": "text/event-stream"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
        first = next(events)
        assert first[0] == "chunk"
        assert fake_openai_server.completed == 0, "first chunk only after the upstream finished: buffered"
        rest = list(events)
    assert rest[-1][0] == "done"
    assert rest[-1][1]["content"].split() == [f"t{i}" for i in range(30)]
    assert fake_openai_server.requests[-1].headers["Authorization"] == "Bearer e2e-provider-key"


def test_upstream_drop_midway_ends_the_stream_with_an_error_event(http, server):
    auth = register_and_login(http)
    bot = http.post(
        "/bots/",
        json={"name": "drop", "initial_configs": [{"provider": "custom", "model_id": "fake-drop-2"}]},
        headers=auth,
    ).json()
    with http.stream(
        "POST", f"/chat/{bot['id']}?query=a+b+c", headers={**auth, "Accept": "text/event-stream"}
    ) as response:
        events = list(sse_events(response.iter_lines()))
    assert [kind for kind, _ in events] == ["chunk", "chunk", "error"]
    assert events[-1][1]["code"] == "stream_interrupted"


def test_a_client_that_disconnects_leaves_the_answer_running_to_its_end(http, server, fake_openai_server):
    auth = register_and_login(http)
    bot = http.post(
        "/bots/",
        json={"name": "long", "initial_configs": [{"provider": "custom", "model_id": "fake-tokens-40-20"}]},
        headers=auth,
    ).json()
    fake_openai_server.reset()
    received = ""
    with http.stream("POST", f"/chat/{bot['id']}?query=go", headers=auth) as response:
        run_id = response.headers["X-Run-Id"]
        for piece in response.iter_text():
            received += piece
            if received.count("t") >= 3:
                break
    # The server reads the model to its end and stores the whole answer (docs/runs.md).
    assert fake_openai_server.wait_for(lambda: fake_openai_server.completed == 1, timeout=10)
    assert fake_openai_server.disconnects == 0
    assert fake_wait(lambda: http.get(f"/runs/{run_id}", headers=auth).json()["status"] == "complete")
    run = http.get(f"/runs/{run_id}", headers=auth).json()
    assert run["content"].startswith(received) and run["content"].split() == [f"t{i}" for i in range(40)]


def test_queries_and_tokens_stay_out_of_the_server_log(http, server):
    auth = register_and_login(http)
    bot = http.post("/bots/", json={"name": "quiet"}, headers=auth).json()
    response = http.post(f"/chat/{bot['id']}", params={"query": "secreto-zafiro-42"}, headers=auth)
    assert response.status_code == 200
    assert fake_wait(lambda: f"/chat/{bot['id']}" in server.log())  # the access log is there...
    log = server.log()
    assert "secreto-zafiro-42" not in log  # ...without the query
    assert auth["Authorization"].split()[1] not in log
    # Earlier tests cancelled and broke streams: none of it may surface as a crash or a killed app.
    assert not log_tracebacks(log), log_tracebacks(log)
    assert "took too long to shut down" not in log


def test_errors_over_real_http_are_json(http, server):
    assert http.get("/bots/").status_code == 401
    missing = http.get("/no/such/path")
    assert missing.status_code == 404 and missing.json()["detail"]
    auth = register_and_login(http)
    too_big = http.post("/bots/", content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}', headers={
        **auth, "Content-Type": "application/json"
    })  # fmt: skip
    assert too_big.status_code == 413 and too_big.json()["detail"]

    def chunks():  # no Content-Length: the server must stop reading at the cap, not spool it all
        for _ in range(64):
            yield b"x" * 65536

    chunked = http.post("/bots/", content=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["code"] == "body_too_large"
