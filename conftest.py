"""Shared fixtures: users and authenticated clients, bots and chats, and the fake OpenAI-compatible upstream."""

from __future__ import annotations

import contextlib
import itertools
import os

import pytest
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from tests.fake_openai import FakeOpenAI

# Tests that need PostgreSQL or Redis read these; unset, those tests skip.
POSTGRES_CONFIGURED = os.environ.get("DATABASE_URL", "").startswith("postgres")
REDIS_CONFIGURED = bool(os.environ.get("REDIS_URL"))
PASSWORD = "una-clave-segura-123"  # noqa: S105 (test fixture)
_emails = itertools.count(1)


def pytest_configure(config) -> None:
    """The test process runs a new event loop, with new executor threads, for each test; a pooled
    PostgreSQL connection left in a finished thread is never given back, and the pool runs dry. The
    in-process tests use a connection per thread (as DB_POOL=False does); the servers the end-to-end
    tests start use the pool as production does."""
    from django.conf import settings

    settings.DATABASES["default"].get("OPTIONS", {}).pop("pool", None)


def pytest_sessionstart(session) -> None:
    """On PostgreSQL the servers the end-to-end tests start share a database of their own, made afresh
    here: a run never sees what an earlier one left there (tests/live_server.py)."""
    if POSTGRES_CONFIGURED:
        from tests.live_server import live_database_recreate

        live_database_recreate()


@pytest.fixture(autouse=True)
def _isolated_settings(settings, tmp_path):
    # Password hashing costs ~0.2 s a user with the production hasher; tests do not need the cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LLM_LOCAL_WORD_DELAY = 0
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # Ingestion runs inline in tests; the database worker is exercised end to end with a real server.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.LLM_MAX_RETRIES = 0
    cache.clear()
    # Each test starts in the default language: a request or socket in Spanish must not leak into the next.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()
    cache.clear()


@pytest.fixture(scope="session")
def fake_openai_server():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(fake_openai_server, settings):
    """The fake server, configured as the `custom` and `openai` providers (key: test-provider-key)."""
    fake_openai_server.reset()
    providers = {name: dict(config) for name, config in settings.LLM_PROVIDERS.items()}
    for name in ("custom", "openai"):
        providers[name].update(base_url=fake_openai_server.base_url, api_key="test-provider-key")
    settings.LLM_PROVIDERS = providers
    settings.LLM_READ_TIMEOUT = 5
    return fake_openai_server


@pytest.fixture
def embeddings(upstream, settings):
    """The fake server as the embeddings provider (model `fake-embed`: words to 64 buckets, a few synonyms
    in the same bucket; `fake-embed-fail`: a 500)."""
    settings.EMBEDDINGS_PROVIDER = "custom"
    settings.EMBEDDINGS_MODEL = "fake-embed"
    return upstream


@pytest.fixture
def make_user(db, django_user_model):
    def make(email: str | None = None, **extra):
        email = email or f"user{next(_emails)}@example.com"
        return django_user_model.objects.create_user(email=email, password=PASSWORD, **extra)

    return make


def client_for(user) -> APIClient:
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def api(user) -> APIClient:
    """An APIClient authenticated as `user`."""
    return client_for(user)


@pytest.fixture
def other_user(make_user):
    return make_user()


@pytest.fixture
def other_api(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def make_bot(db):
    """Makes a bot: `models` are (task_type, provider, model_id) triples; `public` turns the widget on."""
    from bots.models import Bot, ModelConfig
    from bots.services import bot_public_set

    def make(*, owner, name: str = "Harbour guide", models=(), public: bool = False, allowed_origins=None, **fields):
        bot = Bot.objects.create(owner=owner, name=name, **fields)
        for task_type, provider, model_id in models:
            ModelConfig.objects.create(bot=bot, task_type=task_type, provider=provider, model_id=model_id)
        if public:
            bot = bot_public_set(bot=bot, public=True, allowed_origins=allowed_origins)
        return bot

    return make


@pytest.fixture
def bot(request, make_bot, user):
    """A bot of `user`'s; a module or test shapes it with `pytest.mark.bot(**make_bot's keywords)`."""
    marker = request.node.get_closest_marker("bot")
    return make_bot(owner=user, **(marker.kwargs if marker else {}))


@pytest.fixture
def make_chat(db):
    """Makes a chat (a session unless `surface` says otherwise)."""
    from chats.models import Chat, Surface

    def make(*, owner, surface=Surface.SESSIONS, **fields):
        return Chat.objects.create(owner=owner, surface=surface, **fields)

    return make


@pytest.fixture
def chat(make_chat, user):
    """A session chat of `user`'s, with no bot."""
    return make_chat(owner=user)


@pytest.fixture(scope="session")
def fake_searxng_server():
    from tests.fake_searxng import FakeSearxNG

    server = FakeSearxNG().start()
    yield server
    server.stop()


@pytest.fixture
def searxng(fake_searxng_server, settings):
    """The fake SearxNG server as the configured web search (mode `ok`), with a loopback canary."""
    fake_searxng_server.reset()
    settings.SEARXNG_URL = fake_searxng_server.url
    settings.WEB_SEARCH_TIMEOUT = 2.0
    return fake_searxng_server


@pytest.fixture(scope="session")
def mcp_test_server():
    from tests.mcp_server import McpTestServer

    server = McpTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def mcp_server(mcp_test_server):
    """The real MCP test server (tests/mcp_server.py), its recorded calls cleared."""
    mcp_test_server.reset()
    return mcp_test_server


@pytest.fixture(scope="session")
def mcp_bearer_server():
    """A second MCP test server that answers 401 without `Authorization: Bearer mcp-test-token`."""
    from tests.mcp_server import McpTestServer

    server = McpTestServer(bearer="mcp-test-token").start()
    yield server
    server.stop()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Django removes the SQLite test database; connections closed late (threads) can leave its journal."""
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and name:
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name + suffix)
