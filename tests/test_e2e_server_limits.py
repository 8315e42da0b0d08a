"""Oversized bodies and frames against the server `make run` starts (config/server.py): refused before they are read.

The client sends only the headers and the first bytes, so an answer that needs the rest of the body never
comes and the socket timeout fails the test.
"""

import contextlib
import http.client
import json
import socket
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.live_server import LiveServer, new_user_auth

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
# Generous: the answer is expected at once; this only turns a server that waits for the body into a failure.
SOCKET_TIMEOUT = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("live-limits"), {}).start()
    yield live
    live.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def send_head(server: LiveServer, head: bytes, first_bytes: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT)
    sock.sendall(head + first_bytes)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return response.status, headers, json.loads(response.read())


def server_closed(sock: socket.socket, rest: int) -> bool:
    """True when the server refuses the rest of the body (the connection is closed before it is all sent)."""
    chunk = b"\0" * MB
    try:
        for _ in range(rest // MB):
            sock.sendall(chunk)
    except OSError:
        return True
    return False


def multipart_head(size: int) -> tuple[bytes, bytes]:
    opening = b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
    head = (
        b"POST /bots/x/train HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: %d\r\n\r\n" % size
    )
    return head, opening + b"a" * (64 * 1024)


def test_a_200_mb_upload_is_refused_before_its_body_is_read_and_the_server_stays_responsive(server):
    size = 200 * MB
    before = rss_mb(server.process.pid)
    head, first_bytes = multipart_head(size)
    with contextlib.closing(send_head(server, head, first_bytes)) as sock:
        status, headers, body = read_answer(sock)
        assert status == 413
        assert body == {"detail": "Request body is too large.", "code": "body_too_large"}
        # Another client is served while the oversized request's connection is still open.
        assert httpx.get(server.url + "/", timeout=SOCKET_TIMEOUT).status_code == 200
        assert headers["connection"] == "close"
        assert server_closed(sock, size - len(first_bytes)), "the server went on reading the refused body"
    assert rss_mb(server.process.pid) - before < 50


def test_a_false_2_gb_content_length_is_refused_at_once(server):
    before = rss_mb(server.process.pid)
    head = (
        b"POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2000000000\r\n\r\n"
    )
    with contextlib.closing(send_head(server, head, b'{"email": "')) as sock:
        status, headers, body = read_answer(sock)
        assert status == 413
        assert body["code"] == "body_too_large" and body["detail"]
        assert headers["content-type"] == "application/json"
        assert server_closed(sock, 200 * MB)
    assert httpx.get(server.url + "/", timeout=SOCKET_TIMEOUT).status_code == 200
    assert rss_mb(server.process.pid) - before < 50


def test_an_upload_under_the_limit_is_still_read_whole(server):
    """The limit refuses only what is over it: a 1 MB file reaches the view and is queued."""
    with httpx.Client(base_url=server.url, timeout=SOCKET_TIMEOUT) as client:
        auth = new_user_auth(client)
        bot = client.post("/bots/", json={"name": "Limits"}, headers=auth).json()
        text = b"Sentences under the limit. " * (MB // 27)
        answer = client.post(f"/bots/{bot['id']}/train", files={"file": ("notes.txt", text)}, headers=auth)
    assert answer.status_code == 202
    assert answer.json()["status"] == "queued"


async def test_a_websocket_message_over_256_kib_closes_the_socket_with_1009(server):
    with httpx.Client(base_url=server.url, timeout=SOCKET_TIMEOUT) as client:
        session = client.post("/chat/sessions", headers=new_user_auth(client)).json()
    async with connect(session["websocket_url"], proxy=None, open_timeout=SOCKET_TIMEOUT) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "message", "content": "a" * 262144}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1009
