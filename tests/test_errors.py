"""Every failure is JSON with a `detail` string; the root reports that the API is running."""

import json
import time

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.test import Client

from config.views import csrf_failure
from conftest import PASSWORD
from core.api.pagination import MAX_OFFSET
from tests.helpers import asgi_body
from tests.helpers import assert_error as assert_json_error

pytestmark = pytest.mark.django_db


def test_root_reports_running_status_without_auth(anon):
    response = anon.get("/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"Status", "message", "version"}
    assert body["Status"] == "Running"
    assert isinstance(body["message"], str) and body["message"]
    assert body["version"] == settings.VERSION


def test_root_ignores_a_bad_token(anon):
    anon.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    assert anon.get("/").status_code == 200


@pytest.mark.parametrize("path", ["/nope", "/bots/extra/segments/here", "/api/v0/users", "/static-nothing/"])
def test_unknown_url_is_404_json(anon, path):
    assert_json_error(anon.get(path), 404)


def test_unknown_url_is_404_json_for_an_authenticated_post(api):
    assert_json_error(api.post("/nowhere", {"a": 1}, format="json"), 404)


def test_wrong_method_is_405_json(api):
    assert_json_error(api.delete("/bots/"), 405, "DELETE")


def test_invalid_json_is_400_json_with_detail(api):
    response = api.post("/bots/", '{"name": "oops",', content_type="application/json")
    assert_json_error(response, 400, "JSON")


def test_json_that_is_not_an_object_is_400(api):
    assert_json_error(api.post("/bots/", "[1, 2, 3]", content_type="application/json"), 400)
    assert_json_error(api.post("/bots/", '"name"', content_type="application/json"), 400)


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_400_json_quickly(api, opening):
    closing = "]" if opening == "[" else "}"
    body = opening * 100_000 + "1" + closing * 100_000
    start = time.monotonic()
    response = api.post("/bots/", body, content_type="application/json")
    assert time.monotonic() - start < 1
    assert_json_error(response, 400)


def test_unsupported_media_type_is_415_json(api):
    response = api.post("/bots/", "<bot/>", content_type="application/xml")
    assert_json_error(response, 415, "application/xml")


def test_too_many_form_fields_is_400_json(anon):
    body = "&".join(f"f{n}=x" for n in range(1001))
    response = anon.post("/token", body, content_type="application/x-www-form-urlencoded")
    assert_json_error(response, 400)


# -- every error JSON (issue 12) -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_url_is_404_json_for_every_method_with_csrf_checks_on(method):
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)("/nowhere/at/all", "{}", content_type="application/json")
    assert_json_error(response, 404)


def test_csrf_failure_outside_the_admin_is_403_json(rf):
    response = csrf_failure(rf.post("/somewhere"), reason="CSRF cookie not set.")
    assert response.status_code == 403
    assert json.loads(response.content) == {"detail": "CSRF verification failed.", "code": "csrf_failed"}


def test_admin_login_still_refuses_a_post_without_csrf_token(make_user):
    make_user("root@example.com", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "root@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("path", ["/x%0Ay", "/%0A", "/bots/%0A", "/admin%0A", "/api/schema%0A"])
def test_a_path_with_a_newline_is_404_json_with_debug_on(anon, settings, path):
    settings.DEBUG = True
    response = anon.get(path)
    assert_json_error(response, 404)
    assert b"api/schema" not in response.content


def test_a_404_inside_the_admin_lists_no_url_patterns_with_debug_on(make_user, settings):
    settings.DEBUG = True
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    response = client.get("/admin/no-such-page/")
    assert_json_error(response, 404)
    assert b"admin/" not in response.content


LIST_ENDPOINTS = ["/chats/", "/exams", "/conversations", "/chat/sessions"]


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
@pytest.mark.parametrize("offset", [2**63, 2**64, MAX_OFFSET + 1, -1, "1e3", "x"])
def test_an_offset_out_of_range_is_400_json_naming_it(api, path, offset):
    assert_json_error(api.get(path, {"offset": offset}), 400, "offset")


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_the_largest_offset_and_a_huge_limit_are_an_empty_page(api, path):
    response = api.get(path, {"offset": MAX_OFFSET, "limit": 2**64})
    assert response.status_code == 200, response.content
    assert response.json() in ([], {"sessions": [], "count": 0})


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_a_negative_limit_is_400_json_naming_it(api, path):
    assert_json_error(api.get(path, {"limit": -5}), 400, "limit")


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=zz"],
)
def test_a_malformed_multipart_body_is_400_json(api, content_type):
    response = api.generic("POST", "/load_context", b"--zz\r\nnot a part", content_type=content_type)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) >= {"detail", "code"}


@pytest.mark.parametrize("path", ["/bots/%ff%fe", "/%c3%28", "/chats/%ed%a0%80"])
def test_a_path_with_invalid_utf8_escapes_is_404_json(api, path):
    assert_json_error(api.get(path), 404)


def test_a_query_with_invalid_utf8_escapes_is_400_json(api):
    assert_json_error(api.get("/chats/?offset=%ff%fe"), 400, "offset")


async def asgi_get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """GET through config.asgi.application (static files handler included), the path as a server passes it."""
    from config.asgi import application

    communicator = ApplicationCommunicator(
        application,
        {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 1234),
            "server": ("127.0.0.1", 80),
        },
    )
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=10)
    return start["status"], dict(start["headers"]), await asgi_body(communicator)


@pytest.mark.parametrize(
    "path", ["/static/../x", "/static/../../config/settings.py", "/static/admin/../../../manage.py", "/static/.."]
)
@pytest.mark.parametrize("debug", [False, True])
async def test_a_static_path_out_of_the_static_root_is_404_json(settings, path, debug):
    settings.DEBUG = debug
    status, headers, body = await asgi_get(path)
    assert status == 404
    assert headers[b"Content-Type"] == b"application/json"
    assert json.loads(body)["code"] == "not_found"


async def test_a_missing_static_file_is_404_json_with_debug_on(settings):
    settings.DEBUG = True
    status, _, body = await asgi_get("/static/admin/css/no-such-file.css")
    assert status == 404
    assert json.loads(body) == {"detail": "Not found.", "code": "not_found"}


async def test_an_existing_static_file_is_still_served():
    status, _, body = await asgi_get("/static/admin/css/base.css")
    assert status == 200
    assert b"body" in body
