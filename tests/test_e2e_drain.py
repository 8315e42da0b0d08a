"""A server process told to stop (TERM) answers what reaches it on a connection a proxy already holds, with
`Connection: close`, instead of closing that connection under a request nginx may be writing (config/http_protocol.py).
A POST already sent on it could not be retried elsewhere (docs/scaling.md)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def draining_server(fake_openai_server, tmp_path):
    live = LiveServer(tmp_path, upstream_env(fake_openai_server, DRAIN_SECONDS="10")).start()
    yield live
    live.stop()
    assert not live.tracebacks(), live.tracebacks()


def test_a_draining_server_answers_a_request_on_a_kept_alive_connection_then_closes_it(draining_server):
    with httpx.Client(base_url=draining_server.url, timeout=15) as http:
        email = f"drain-{uuid.uuid4().hex[:10]}@example.com"
        assert http.post("/users/", json={"email": email, "password": "una-clave-segura"}).status_code == 200
        token = http.post("/token", data={"username": email, "password": "una-clave-segura"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        body = {"name": "echo", "initial_configs": [{"provider": "custom", "model_id": "fake-echo"}]}
        bot_id = http.post("/bots/", json=body, headers=auth).json()["id"]

        draining_server.process.terminate()
        time.sleep(1)  # the server has stopped listening and is draining its connections
        answer = http.post(f"/chat/{bot_id}", json={"query": "still there?"}, headers=auth)
        assert answer.status_code == 200 and answer.text == "Echo: still there?"
        assert answer.headers["connection"] == "close"
        with pytest.raises(httpx.ConnectError):  # a new connection: nobody listens any more
            http.get("/")
    draining_server.process.wait(15)
