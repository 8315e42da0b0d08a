"""Bad requests that only a real server passes on as sent (raw paths, raw bodies) get JSON errors."""

import json
import socket

import httpx
import pytest

from tests.live_server import LiveServer, new_user_auth

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("errors"), {}).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def auth(server) -> dict[str, str]:
    with httpx.Client(base_url=server.url, timeout=15) as http:
        return new_user_auth(http)


def raw_request(server: LiveServer, head: bytes, body: bytes = b"", headers: dict[str, str] | None = None):
    """Send the request as written (no client normalises the path); (status, headers, body) of the answer."""
    lines = [head, b"Host: 127.0.0.1", b"Connection: close", f"Content-Length: {len(body)}".encode()]
    lines += [f"{name}: {value}".encode() for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head_bytes, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding") == "chunked":
        payload = dechunk(payload)
    return int(status_line.split()[1]), parsed, payload


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def assert_json_error(answer, status: int) -> dict:
    code, headers, body = answer
    assert code == status, (code, headers, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (headers, body[:300])
    payload = json.loads(body)
    assert isinstance(payload["detail"], str) and payload["detail"] and payload["code"]
    return payload


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_method_on_an_unknown_path_is_404_json(server, method):
    answer = raw_request(
        server, f"{method} /no/such/route HTTP/1.1".encode(), b"{}", {"Content-Type": "application/json"}
    )
    assert_json_error(answer, 404)


@pytest.mark.parametrize(
    "path",
    ["/static/../x", "/static/../../config/settings.py", "/static/%2e%2e/manage.py", "/static/..%2f..%2fmanage.py"],
)
def test_a_static_path_out_of_the_static_root_is_404_json(server, path):
    assert_json_error(raw_request(server, f"GET {path} HTTP/1.1".encode()), 404)


def test_static_files_are_still_served(server):
    code, headers, _ = raw_request(server, b"GET /static/admin/css/base.css HTTP/1.1")
    assert code == 200 and headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"hello"),
        ("multipart/form-data; boundary=", b"--\r\n"),
        ("multipart/form-data; boundary=zz", b"--zz--\r\n"),
        ("multipart/form-data; boundary=zz", b'--zz\r\nContent-Disposition: form-data; name="files"\r\n\r\nno end'),
    ],
)
def test_a_malformed_multipart_body_is_400_json(server, auth, content_type, body):
    headers = {"Content-Type": content_type, **auth}
    assert_json_error(raw_request(server, b"POST /load_context HTTP/1.1", body, headers), 400)


@pytest.mark.parametrize("path", ["/bots/%ff%fe", "/%c3%28", "/chats/%ed%a0%80/conversations"])
def test_a_path_with_invalid_utf8_escapes_is_404_json(server, auth, path):
    assert_json_error(raw_request(server, f"GET {path} HTTP/1.1".encode(), headers=auth), 404)


@pytest.mark.parametrize("path", ["/chats/", "/exams", "/conversations", "/chat/sessions"])
@pytest.mark.parametrize("offset", ["9223372036854775808", "%ff"])
def test_an_offset_past_the_databases_range_is_400_json(server, auth, path, offset):
    payload = assert_json_error(raw_request(server, f"GET {path}?offset={offset} HTTP/1.1".encode(), headers=auth), 400)
    assert "offset" in payload["detail"]


@pytest.mark.parametrize("request_line", [b"GET /bots/\xff\xfe HTTP/1.1", b"GET /\xc3\x28?offset=1 HTTP/1.1"])
def test_the_server_answers_raw_invalid_utf8_in_the_request_line_with_a_json_400_and_keeps_serving(
    server, request_line
):
    # The HTTP parser refuses it before any application sees it (RFC 9112: the request line is ASCII);
    # config/http_protocol.py makes that answer the JSON 400.
    assert_json_error(raw_request(server, request_line), 400)
    assert httpx.get(server.url + "/", timeout=5).status_code == 200
