"""The API's async-native request path (config/api_path.py) keeps what Django's whole stack gave it:
security headers, the client's language, JSON errors; the admin keeps sessions and CSRF."""

import json

import pytest

from tests.helpers import asgi_body, asgi_request

pytestmark = pytest.mark.django_db(transaction=True)


async def response_of(method: str, path: str, headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, dict, bytes]:
    communicator = asgi_request(method, path, headers=list(headers))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    body = await asgi_body(communicator)
    await communicator.wait(timeout=5)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


async def test_an_api_response_carries_the_security_headers_of_the_full_stack(settings):
    status, headers, _body = await response_of("GET", "/")
    assert status == 200
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == settings.SECURE_REFERRER_POLICY
    assert headers["cross-origin-opener-policy"] == settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    # No session or CSRF cookie: the API never uses one.
    assert "set-cookie" not in headers


async def test_the_api_answers_in_the_language_the_client_asks_for():
    status, headers, body = await response_of("GET", "/", [(b"accept-language", b"es")])
    assert status == 200 and headers["content-language"] == "es"
    assert json.loads(body)["message"].startswith("Bienvenido")
    status, headers, body = await response_of("GET", "/users/me", [(b"accept-language", b"es")])
    assert status == 401 and "autenticación" in json.loads(body)["detail"].lower()


async def test_an_unknown_path_is_a_json_404_on_the_api_path():
    status, headers, body = await response_of("DELETE", "/no/such/thing")
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["code"] == "not_found"


async def test_the_admin_keeps_django_s_whole_stack_with_its_csrf_cookie():
    status, headers, body = await response_of("GET", "/admin/login/")
    assert status == 200 and b"csrfmiddlewaretoken" in body
    assert "csrftoken=" in headers.get("set-cookie", "")
    status, headers, body = await response_of("POST", "/admin/login/")
    assert status == 403 and b"csrfmiddlewaretoken" not in body  # Django's CSRF page, not the login form
