"""`/admin/login/` takes from `POST /token`'s login buckets (per account, per client address)."""

import re
from urllib.parse import urlencode

import httpx
import pytest
from django.test import Client

from conftest import PASSWORD
from tests.live_server import LiveServer

LOGIN = "/admin/login/?next=/admin/"
WRONG = "wrong-password-000"


def admin_login(client: Client, email: str, password: str, address: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def staff(make_user):
    return make_user("root@example.com", is_staff=True, is_superuser=True)


@pytest.mark.django_db
def test_the_eleventh_admin_login_is_429_with_retry_after_and_the_right_password_is_not_checked(staff):
    client = Client()
    for _attempt in range(10):
        response = admin_login(client, staff.email, WRONG)
        assert response.status_code == 200 and b"Please enter the correct" in response.content
    throttled = admin_login(client, staff.email, WRONG)
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert throttled["Content-Type"].startswith("text/html")
    assert b"Too many sign-in attempts; try again in" in throttled.content
    assert b'name="password"' in throttled.content  # the login form again
    # The right password does not get through either: no session, no login recorded.
    right = admin_login(client, staff.email, PASSWORD)
    assert right.status_code == 429
    assert client.get("/admin/").status_code == 302
    staff.refresh_from_db()
    assert staff.last_login is None


@pytest.mark.django_db
def test_admin_login_throttle_holds_per_account_across_addresses_and_per_address_across_accounts(staff):
    client = Client()
    for attempt in range(10):
        assert admin_login(client, "Root@EXAMPLE.com", WRONG, f"10.0.1.{attempt}").status_code == 200
    assert admin_login(client, staff.email, PASSWORD, "10.0.2.1").status_code == 429
    for attempt in range(10):
        assert admin_login(client, f"guess{attempt}@example.com", WRONG, "10.0.3.1").status_code == 200
    assert admin_login(client, "guess-last@example.com", WRONG, "10.0.3.1").status_code == 429
    # Another account from another address is not affected.
    assert admin_login(client, "other@example.com", WRONG, "10.0.4.1").status_code == 200


@pytest.mark.django_db
def test_the_admin_and_post_token_share_one_budget(staff):
    client = Client()
    for _attempt in range(10):
        response = client.post(
            "/token",
            urlencode({"username": staff.email, "password": WRONG}),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 401
    assert admin_login(client, staff.email, PASSWORD, "10.0.9.9").status_code == 429


@pytest.mark.django_db
def test_a_staff_member_still_logs_in_below_the_limit(staff):
    client = Client()
    assert admin_login(client, staff.email, WRONG).status_code == 200
    assert admin_login(client, staff.email, PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.e2e
def test_a_real_server_throttles_admin_logins(tmp_path):
    server = LiveServer(tmp_path, {"LOGIN_RATE": "3/min"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:

            def attempt() -> httpx.Response:
                page = http.get(LOGIN)
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
                return http.post(
                    LOGIN,
                    data={"csrfmiddlewaretoken": token, "username": "root@example.com", "password": WRONG},
                    # The CSRF cookie is Secure with DEBUG off, so httpx keeps it from plain http.
                    headers={"Referer": server.url + LOGIN, "Cookie": f"csrftoken={page.cookies['csrftoken']}"},
                )

            assert [attempt().status_code for _ in range(3)] == [200, 200, 200]
            throttled = attempt()
            assert throttled.status_code == 429
            assert int(throttled.headers["Retry-After"]) > 0
            assert "Too many sign-in attempts" in throttled.text
    finally:
        server.stop()
