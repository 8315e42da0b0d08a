"""Every failure is JSON with a `detail` string; the root reports that the API is running."""

import time

import pytest
from django.conf import settings

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
