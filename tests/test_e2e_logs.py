"""The server log of a real server after chats on three surfaces (docs/reliability.md K5, L4): every line is one
JSON object; each request has one `request` line with the id the client got in `X-Request-ID`, each answer one
`run` line with the run id the client saw; and no question, answer, JWT, API key, socket ticket or provider key."""

import json

import httpx
import pytest

from tests.e2e_helpers import eventually, frames_until_end, open_socket, sign_up
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.e2e
QUESTION = "zafiro oculto siete siete tres uno"  # the fake upstream echoes it: the answer holds it too
PROVIDER_KEY = "e2e-provider-key"  # upstream_env's


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("logs"), upstream_env(fake_openai_server)).start()
    yield live
    live.stop()


def log_entries(server: LiveServer) -> list[dict]:
    lines = server.log().splitlines()
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a server log line is not JSON: {line!r}")
    return entries


async def test_the_log_is_json_lines_with_request_and_run_ids_and_no_text_or_secret(server):
    request_ids: list[str] = []
    run_ids: list[str] = []
    answers: list[str] = []

    async def seen(response: httpx.Response) -> None:
        request_ids.append(response.headers["x-request-id"])

    async with httpx.AsyncClient(base_url=server.url, timeout=20, event_hooks={"response": [seen]}) as http:
        jwt, auth = await sign_up(http)
        config = {"provider": "custom", "model_id": "fake-echo", "task_type": "general"}
        bot = (await http.post("/bots/", json={"name": "Logged", "initial_configs": [config]}, headers=auth)).json()
        api_key = (await http.post("/api-keys", json={"name": "logs"}, headers=auth)).json()["key"]

        # 001 with the JWT, the question in the body.
        answer = await http.post(f"/chat/{bot['id']}", json={"query": QUESTION}, headers=auth)
        assert answer.status_code == 200, answer.text
        run_ids.append(answer.headers["x-run-id"])
        answers.append(answer.text)

        # /v1 with the personal API key.
        body = {"model": f"bot-{bot['id']}", "messages": [{"role": "user", "content": QUESTION}]}
        completion = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {api_key}"})
        assert completion.status_code == 200, completion.text
        run_ids.append(completion.headers["x-run-id"])
        answers.append(completion.json()["choices"][0]["message"]["content"])

        # A chat-session socket (003), opened with its ticket.
        session = (await http.post("/chat/sessions", json={"bot_id": bot["id"]}, headers=auth)).json()
        async with open_socket(session["websocket_url"]) as socket:
            socket_request_id = socket.response.headers["X-Request-ID"]
            await socket.recv()  # the greeting
            await socket.send(json.dumps({"type": "message", "content": QUESTION}))
            frames = await frames_until_end(socket)
        assert frames[-1]["type"] == "done", frames
        run_ids.append(frames[-1]["run_id"])
        answers.append(frames[-1]["content"])
    assert all(QUESTION in text for text in answers)
    ticket = session["websocket_url"].split("ticket=")[1]

    def logged_requests() -> dict[str, list[dict]]:
        by_id: dict[str, list[dict]] = {}
        for entry in log_entries(server):
            if entry.get("event") == "request":
                by_id.setdefault(entry["request_id"], []).append(entry)
        return by_id

    everything = [*request_ids, socket_request_id]
    assert eventually(lambda: set(everything) <= set(logged_requests()), timeout=10)
    assert eventually(lambda: {e.get("run_id") for e in log_entries(server) if e.get("event") == "run"} >= set(run_ids))

    entries = log_entries(server)
    requests = logged_requests()
    assert all(len(requests[request_id]) == 1 for request_id in everything), requests
    assert requests[socket_request_id][0]["route"] == "/chat/ws/{session_id}"
    assert requests[socket_request_id][0]["protocol"] == "websocket"
    runs = {entry["run_id"]: entry for entry in entries if entry.get("event") == "run"}
    for run_id in run_ids:
        assert runs[run_id]["status"] == "complete" and runs[run_id]["model"] == "fake-echo"
        assert runs[run_id]["request_id"] in everything
    assert runs[run_ids[-1]]["request_id"] == socket_request_id
    text = "\n".join(json.dumps(entry) for entry in entries)
    for secret in [QUESTION, *QUESTION.split()[:2], *answers, jwt, api_key, ticket, PROVIDER_KEY]:
        assert secret not in text, secret
