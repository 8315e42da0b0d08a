"""Clients of the Redis named by REDIS_URL, for what the cache API cannot say (sorted sets, streams).

One synchronous client per process (its pool is thread-safe) and one asyncio client per event loop
(an asyncio connection belongs to the loop that opened it).
"""

from __future__ import annotations

import asyncio
import functools
import weakref

import redis
import redis.asyncio
from django.conf import settings

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = weakref.WeakKeyDictionary()


def redis_configured() -> bool:
    return bool(settings.REDIS_URL)


@functools.cache
def _sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def sync_redis() -> redis.Redis:
    return _sync_client(settings.REDIS_URL)


def async_redis() -> redis.asyncio.Redis:
    """This loop's client; blocking reads (XREAD BLOCK) each hold one of its connections while they wait."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30
        )
        _async_clients[loop] = client
    return client
