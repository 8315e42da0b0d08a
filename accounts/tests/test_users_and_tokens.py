"""Registration (`POST /users/`) and the token surface (`/token`, `/token/refresh`, `/token/revoke`)."""

from urllib.parse import urlencode

import jwt
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from conftest import PASSWORD
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


NEW_PASSWORD = "otra-clave-muy-segura-456"
USER_KEYS = {"id", "email", "username", "user_type", "is_active", "date_joined"}
FORM = "application/x-www-form-urlencoded"


def form_post(client: APIClient, path: str, data: dict):
    return client.post(path, data=urlencode(data), content_type=FORM)


def login(client: APIClient, email: str, password: str = PASSWORD):
    return form_post(client, "/token", {"username": email, "password": password})


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- POST /users/ ---------------------------------------------------------------------------------


def test_register_with_json_returns_200_and_the_user_without_password(anon):
    response = anon.post("/users/", {"email": "nuevo.usuario@ejemplo.com", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_KEYS
    assert body["email"] == "nuevo.usuario@ejemplo.com"
    assert body["username"] == "nuevo.usuario@ejemplo.com"
    assert body["user_type"] == "free"
    assert body["is_active"] is True
    assert PASSWORD not in response.content.decode()
    user = User.objects.get(pk=body["id"])
    assert user.check_password(PASSWORD)
    assert not user.is_staff and not user.is_superuser


def test_register_with_form_encoding_and_a_username(anon):
    response = form_post(anon, "/users/", {"email": "form@example.com", "password": PASSWORD, "username": "formy"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_KEYS
    assert body["username"] == "formy"
    assert User.objects.filter(email="form@example.com", username="formy").exists()


def test_register_without_trailing_slash_works(anon):
    response = anon.post("/users", {"email": "noslash@example.com", "password": PASSWORD}, format="json")
    assert response.status_code == 200


def test_register_duplicate_email_in_other_case_is_400_and_creates_nothing(anon, make_user):
    make_user("taken@example.com")
    response = anon.post("/users/", {"email": "Taken@EXAMPLE.com", "password": PASSWORD}, format="json")
    assert_error(response, 400, "email")
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "weak@example.com", "password": "123"}, "password"),
        ({"email": "weak@example.com", "password": "password"}, "password"),
        ({"email": "weak@example.com", "password": "12345678901"}, "password"),
        ({"password": PASSWORD}, "email"),
        ({"email": "nopass@example.com"}, "password"),
        ({"email": "", "password": PASSWORD}, "email"),
    ],
)
def test_register_with_invalid_input_is_400_naming_the_field(anon, body, field):
    response = anon.post("/users/", body, format="json")
    assert_error(response, 400, field)
    assert not User.objects.exists()


def test_register_with_unknown_field_is_staff_is_400_and_user_is_not_created(anon):
    response = anon.post(
        "/users/", {"email": "mallory@example.com", "password": PASSWORD, "is_staff": True}, format="json"
    )
    assert_error(response, 400, "is_staff")
    assert not User.objects.filter(is_staff=True).exists()
    assert not User.objects.filter(email="mallory@example.com").exists()


def test_register_cannot_choose_user_type(anon):
    response = anon.post(
        "/users/", {"email": "pro@example.com", "password": PASSWORD, "user_type": "pro"}, format="json"
    )
    assert_error(response, 400, "user_type")
    assert not User.objects.filter(user_type="pro").exists()


# --- POST /token -----------------------------------------------------------------------------------


def test_login_with_form_returns_a_bearer_pair_that_works_on_users_me(anon, user):
    response = login(anon, user.email)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    me = bearer(body["access_token"]).get("/users/me")
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    assert set(me.json()) == USER_KEYS


def test_login_email_is_case_insensitive(anon, make_user):
    make_user("casey@example.com")
    assert login(anon, "  Casey@Example.COM ").status_code == 200


def test_login_with_wrong_password_is_401_json(anon, user):
    response = login(anon, user.email, "wrong-password-000")
    assert_error(response, 401)
    assert "access_token" not in response.json()


def test_login_unknown_email_and_wrong_password_look_the_same(anon, user):
    wrong_password = login(anon, user.email, "wrong-password-000")
    unknown_email = login(anon, "nobody@example.com", "wrong-password-000")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()


def test_login_missing_password_is_400_naming_it(anon, user):
    assert_error(form_post(anon, "/token", {"username": user.email}), 400, "password")


# --- refresh and revoke ----------------------------------------------------------------------------


def test_refresh_returns_a_new_pair_and_the_old_refresh_token_is_then_rejected(anon, user):
    first = login(anon, user.email).json()
    response = anon.post("/token/refresh", {"refresh_token": first["refresh_token"]}, format="json")
    assert response.status_code == 200
    second = response.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert bearer(second["access_token"]).get("/users/me").status_code == 200

    reused = anon.post("/token/refresh", {"refresh_token": first["refresh_token"]}, format="json")
    assert_error(reused, 401)
    # The rotated-in token still works.
    assert anon.post("/token/refresh", {"refresh_token": second["refresh_token"]}, format="json").status_code == 200


def test_refresh_without_token_is_400_naming_refresh_token(anon):
    assert_error(anon.post("/token/refresh", {}, format="json"), 400, "refresh_token")


def test_refresh_with_garbage_is_401(anon):
    assert_error(anon.post("/token/refresh", {"refresh_token": "garbage"}, format="json"), 401)


def test_refresh_with_an_access_token_is_401(anon, user):
    access = login(anon, user.email).json()["access_token"]
    assert_error(anon.post("/token/refresh", {"refresh_token": access}, format="json"), 401)


def test_revoke_then_refresh_is_401(anon, user):
    pair = login(anon, user.email).json()
    revoke = anon.post("/token/revoke", {"refresh_token": pair["refresh_token"]}, format="json")
    assert revoke.status_code == 204
    assert_error(anon.post("/token/refresh", {"refresh_token": pair["refresh_token"]}, format="json"), 401)


def test_revoke_garbage_is_401(anon):
    assert_error(anon.post("/token/revoke", {"refresh_token": "garbage"}, format="json"), 401)


def test_deactivated_user_access_refresh_and_login_are_all_401(anon, user):
    pair = login(anon, user.email).json()
    user.is_active = False
    user.save()
    assert_error(bearer(pair["access_token"]).get("/users/me"), 401)
    assert_error(anon.post("/token/refresh", {"refresh_token": pair["refresh_token"]}, format="json"), 401)
    assert_error(login(anon, user.email), 401)


def test_password_change_invalidates_old_access_and_refresh_tokens(anon, user):
    pair = login(anon, user.email).json()
    user.set_password(NEW_PASSWORD)
    user.save()
    assert_error(bearer(pair["access_token"]).get("/users/me"), 401)
    assert_error(anon.post("/token/refresh", {"refresh_token": pair["refresh_token"]}, format="json"), 401)
    assert_error(login(anon, user.email), 401)
    fresh = login(anon, user.email, NEW_PASSWORD)
    assert fresh.status_code == 200
    assert bearer(fresh.json()["access_token"]).get("/users/me").status_code == 200


# --- protected routes ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/users/me", "/bots/"])
def test_protected_route_without_token_is_401_with_www_authenticate(anon, path):
    response = anon.get(path)
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer garbage",
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoxfQ.",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
def test_protected_route_with_bad_credentials_is_401(anon, user, header):
    anon.credentials(HTTP_AUTHORIZATION=header)
    response = anon.get("/users/me")
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_token_signed_with_another_key_is_401(anon, user):
    token = AccessToken.for_user(user)
    assert bearer(str(token)).get("/users/me").status_code == 200
    forged = jwt.encode(dict(token.payload), "another-key-" * 5, algorithm="HS256")
    assert_error(bearer(forged).get("/users/me"), 401)


def test_refresh_token_used_as_bearer_is_401(anon, user):
    refresh = login(anon, user.email).json()["refresh_token"]
    response = bearer(refresh).get("/users/me")
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- throttling ------------------------------------------------------------------------------------


def test_eleventh_wrong_login_for_one_email_within_a_minute_is_429_with_retry_after(anon, user):
    for _attempt in range(10):
        assert login(anon, user.email, "wrong-password-000").status_code == 401
    response = login(anon, user.email, "wrong-password-000")
    assert_error(response, 429)
    assert int(response["Retry-After"]) > 0
    # The correct password does not get through the throttle either.
    assert login(anon, user.email).status_code == 429


def test_login_throttle_for_one_email_holds_across_rotating_client_addresses(anon, user):
    for attempt in range(10):
        assert login_from(anon, user.email, f"10.0.0.{attempt}", f"192.0.2.{attempt}").status_code == 401
    assert login_from(anon, user.email, "10.0.1.1", "192.0.2.200").status_code == 429


def test_login_throttle_for_one_address_holds_across_many_emails(anon, make_user):
    for attempt in range(10):
        assert login_from(anon, f"victim{attempt}@example.com", "10.0.0.9").status_code == 401
    assert login_from(anon, "victim-last@example.com", "10.0.0.9").status_code == 429
    # Another address is not affected.
    assert login_from(anon, "victim-last@example.com", "10.0.0.10").status_code == 401


def login_from(client: APIClient, email: str, remote_addr: str, forwarded_for: str | None = None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client.post(
        "/token",
        data=urlencode({"username": email, "password": "wrong-password-000"}),
        content_type=FORM,
        **extra,
    )


def test_token_with_tampered_user_id_is_401(anon, user, other_user):
    header, _payload, signature = str(AccessToken.for_user(user)).split(".")
    claims = dict(AccessToken.for_user(user).payload, user_id=str(other_user.pk))
    tampered_payload = jwt.encode(claims, "k" * 50, algorithm="HS256").split(".")[1]
    response = bearer(f"{header}.{tampered_payload}.{signature}").get("/users/me")
    assert_error(response, 401)


@pytest.mark.parametrize("body", ["[]", '"x"', "5"])
def test_login_with_a_json_body_that_is_not_an_object_is_400(anon, body):
    response = anon.post("/token", body, content_type="application/json")
    assert_error(response, 400)


def test_register_with_a_long_email_works_and_the_username_follows_it(anon):
    email = "a" * 180 + "@example.com"
    response = anon.post("/users/", {"email": email, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert response.json()["username"] == email
