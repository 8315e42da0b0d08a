"""The production services, exercised for real when .ci/run sets DATABASE_URL and REDIS_URL."""

import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache, caches
from django.db import connection

from conftest import POSTGRES_CONFIGURED, REDIS_CONFIGURED

needs_redis = pytest.mark.skipif(not REDIS_CONFIGURED, reason="REDIS_URL is not set")
needs_postgres = pytest.mark.skipif(not POSTGRES_CONFIGURED, reason="DATABASE_URL is not PostgreSQL")


@needs_redis
async def test_channel_layer_delivers_group_messages_through_redis():
    layer = get_channel_layer()
    assert type(layer).__module__.startswith("channels_redis")
    channel = await layer.new_channel()
    await layer.group_add("bytchat-test", channel)
    await layer.group_send("bytchat-test", {"type": "chat.event", "seq": 1})
    assert await layer.receive(channel) == {"type": "chat.event", "seq": 1}
    await layer.group_discard("bytchat-test", channel)


@needs_redis
def test_cache_is_redis_and_shared():
    assert "redis" in type(caches["default"]).__module__
    cache.set("bytchat-test-key", {"n": 1}, 10)
    assert cache.get("bytchat-test-key") == {"n": 1}


@needs_postgres
@pytest.mark.django_db
def test_database_is_postgresql_through_psycopg3():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        assert "PostgreSQL" in cursor.fetchone()[0]
    assert connection.Database.__name__ == "psycopg"
