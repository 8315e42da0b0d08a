"""Personal API keys: made and revoked by their user (JWT only), shown once, stored as a digest."""

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_digest
from conftest import client_for
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def make_key(api: APIClient, name: str = "my client") -> dict:
    response = api.post("/api-keys", {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_key_is_shown_once_and_stored_only_as_a_digest(api, user):
    created = make_key(api)
    raw = created["key"]
    assert raw.startswith("byt_") and len(raw) > 40 and created["prefix"] == raw[:12]
    stored = ApiKey.objects.get(pk=created["id"])
    assert stored.digest == api_key_digest(raw) and raw not in str(ApiKey.objects.values().get())
    listed = api.get("/api-keys").json()
    assert listed == [{k: v for k, v in created.items() if k != "key"}]


def test_a_key_authenticates_api_requests_and_notes_when_it_was_used(api, user):
    raw = make_key(api)["key"]
    assert ApiKey.objects.get().last_used_at is None
    response = key_client(raw).get("/users/me")
    assert response.status_code == 200 and response.json()["email"] == user.email
    assert ApiKey.objects.get().last_used_at is not None


async def test_a_key_authenticates_the_streaming_surfaces_too(api, user):
    raw = (await sync_to_async(make_key)(api))["key"]
    response = await AsyncClient().post(
        "/conversations/new",
        data={"prompt": "hello"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 201, response.content


def test_a_revoked_or_unknown_key_is_a_401(api, other_api):
    created = make_key(api)
    assert_error(other_api.delete(f"/api-keys/{created['id']}"), 404)
    assert key_client(created["key"]).get("/users/me").status_code == 200
    assert api.delete(f"/api-keys/{created['id']}").status_code == 204
    assert_error(key_client(created["key"]).get("/users/me"), 401, "revoked")
    assert api.get("/api-keys").json()[0]["revoked_at"] is not None
    assert_error(key_client("byt_" + "x" * 43).get("/users/me"), 401)


def test_keys_cannot_manage_keys_and_are_capped(api, settings):
    raw = make_key(api)["key"]
    assert_error(key_client(raw).post("/api-keys", {"name": "more"}, format="json"), 401)
    assert_error(key_client(raw).get("/api-keys"), 401)
    settings.API_KEYS_PER_USER = 2
    make_key(api, "second")
    assert_error(api.post("/api-keys", {"name": "third"}, format="json"), 409, "API keys")
    assert_error(api.post("/api-keys", {"name": "  "}, format="json"), 400, "name")
    assert_error(api.post("/api-keys", {"name": "x", "user": 1}, format="json"), 400, "user")


def test_an_inactive_users_key_stops_working(api, user):
    raw = make_key(api)["key"]
    user.is_active = False
    user.save()
    assert key_client(raw).get("/users/me").status_code == 401


def test_staff_make_a_key_for_a_user_in_the_admin_and_revoke_it(make_user, user):
    staff = Client()
    staff.force_login(make_user(is_staff=True, is_superuser=True))
    response = staff.post(reverse("admin:accounts_apikey_add"), {"user": user.pk, "name": "from staff"}, follow=True)
    shown = [str(message) for message in response.context["messages"]]
    raw = next(word.rstrip(".") for text in shown for word in text.split() if word.startswith("byt_"))
    key = ApiKey.objects.get(name="from staff")
    assert key.user == user and key.digest == api_key_digest(raw)
    assert client_for(user).get("/api-keys").json()[0]["name"] == "from staff"
    assert key_client(raw).get("/users/me").status_code == 200
    staff.post(reverse("admin:accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    assert key_client(raw).get("/users/me").status_code == 401
    page = staff.get(reverse("admin:accounts_apikey_change", args=[key.pk])).content.decode()
    assert raw not in page
