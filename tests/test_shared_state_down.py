"""With the shared cache (Redis) unreachable, model calls fail closed with 503; other routes work (J2)."""

import pytest
from django.test import AsyncClient
from rest_framework_simplejwt.tokens import AccessToken

from bots.models import Bot
from chats.models import Chat, Message
from tests.helpers import assert_error
from tests.live_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_down(settings):
    """A Redis (cache and slots) on a port nothing listens on, restored before the suite clears the cache."""
    original = settings.CACHES
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    settings.REDIS_URL = url
    yield
    settings.CACHES = original


async def test_chat_answers_503_and_stores_nothing_while_unrelated_routes_work(user, redis_down):
    bot = await Bot.objects.acreate(owner=user, name="b")
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}
    client = AsyncClient()
    refused = await client.post(f"/chat/{bot.id}?query=hello", headers=headers)
    assert_error(refused, 503, "temporarily unavailable")
    assert refused["Retry-After"] == "5"
    new = await client.post(
        "/conversations/new", data={"prompt": "hello"}, content_type="application/json", headers=headers
    )
    assert_error(new, 503)
    assert await Chat.objects.acount() == 0 and await Message.objects.acount() == 0
    assert (await client.get("/bots/", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/token", {"username": "someone@example.com", "password": "una-clave-segura"}),
        ("/users/", {"email": "someone@example.com", "password": "una-clave-segura"}),
    ],
)
def test_login_and_sign_up_answer_503_with_retry_after_when_their_throttle_cannot_reach_the_cache(
    redis_down, path, body
):
    from django.test import Client

    response = Client().post(path, body, content_type="application/json")
    assert_error(response, 503, "temporarily unavailable")
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "service_unavailable"


def test_admin_login_answers_503_without_checking_the_password_when_the_cache_is_down(redis_down, make_user):
    from django.test import Client

    staff = make_user("root@example.com", is_staff=True, is_superuser=True)
    response = Client().post("/admin/login/", {"username": staff.email, "password": "una-clave-segura-123"})
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert b"temporarily unavailable" in response.content
    staff.refresh_from_db()
    assert staff.last_login is None
