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
    """A Redis cache on a port nothing listens on, restored before the suite clears the cache."""
    original = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
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
