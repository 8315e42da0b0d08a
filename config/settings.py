"""Bytchat settings: one file, every variable read from the environment with its default here."""

import os
import secrets
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.server import DRAIN_SECONDS_DEFAULT

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env", overwrite=False)

# The embedded default keeps its database, media and generated secret key here.
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "data")))

# Development is the default so a fresh clone runs with no environment; production sets DEBUG=False.
DEBUG = env.bool("DEBUG", default=True)

# Values that must never reach production: Django's insecure prefix and the samples we ship.
SAMPLE_SECRET_KEYS = {"change-me", "change-me-to-a-long-random-string", "secret", "django-insecure"}


def _is_weak_key(key: str) -> bool:
    return key.startswith("django-insecure") or key in SAMPLE_SECRET_KEYS or len(key) < 50 or len(set(key)) < 5


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        if _is_weak_key(key) and not DEBUG:
            raise ImproperlyConfigured("SECRET_KEY is a sample or too weak: use at least 50 random characters.")
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    key_file = DATA_DIR / "secret_key"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        # Created exclusively and private from the start: a server and a worker starting together
        # must end up with the same key.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    for _attempt in range(50):
        key = key_file.read_text().strip()
        if key:
            return key
        time.sleep(0.02)  # the other process is still writing it
    raise ImproperlyConfigured(f"{key_file} is empty: delete it to generate a new key.")


SECRET_KEY = _secret_key()
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY
if _is_weak_key(JWT_SIGNING_KEY) and not DEBUG:
    raise ImproperlyConfigured("JWT_SIGNING_KEY is a sample or too weak: use at least 50 random characters.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
if "*" in ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list host names, not '*', when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# JSON 403 outside the admin, Django's page inside it.
CSRF_FAILURE_VIEW = "config.views.csrf_failure"

VERSION = "0.1.0"

INSTALLED_APPS = [
    "daphne",
    "config.apps.AdminConfig",  # django.contrib.admin with a throttled login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "core",
    "accounts",
    "bots",
    "chats",
    "knowledge",
    "exams",
    "tools",
]

MIDDLEWARE = [
    # First: it reads the route a request resolved to once every other middleware is done (config/request_log.py).
    "config.http_route.route_middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.not_found.NotFoundMiddleware",
    "config.middleware.UploadBodyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

# Database: SQLite in DATA_DIR unless DATABASE_URL names another (postgres://... uses psycopg 3).
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets the server and the worker read while one writes; IMMEDIATE avoids upgrade deadlocks.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    # Tests run on a file too: an in-memory database shares one cache between threads, where a write
    # meeting another fails at once ("table is locked") instead of waiting out `timeout` as here.
    # One per test process, so two runs in one checkout never share a file.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"bytchat-test-{os.getpid()}.sqlite3")}
    # Each thread keeps its connection: opening one (and registering Django's SQL functions) cost
    # more CPU per chat turn than the turn's queries (bench/relay_turns.py).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif env.bool("DB_POOL", default=True):
    # psycopg's pool: a thread borrows a connection for each piece of ORM work and gives it back
    # (chats.streaming.released), so a turn pays no connect and no connection is held while a model
    # writes. Django wants CONN_MAX_AGE 0 with a pool. DB_POOL_MAX_SIZE per process: the threads that
    # run ORM work (the loop's executor, min(32, cores + 4), plus Django's request thread) need no more.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=16),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 gives up on a read after 5 s by default, exactly the length of channels-redis's
                # blocking BZPOPMIN, so idle consumers crashed with 1011 (channels_redis#422, redis-py#4091).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}],
                "capacity": 100,
                "expiry": 10,
                "group_expiry": 3600,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="bytchat"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
# Served by the ASGI app itself (embedded default); set to False when a proxy serves STATIC_ROOT.
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
MEDIA_URL = "media/"

# Request size limits (docs/reliability.md C1, C3): JSON and form bodies; larger ones get a JSON 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_BODY_BYTES", default=1024 * 1024)
# Checked at the ASGI edge (config/body_limit.py) before Django spools a body to disk.
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=DATA_UPLOAD_MAX_MEMORY_SIZE + 64 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
DATA_UPLOAD_MAX_NUMBER_FILES = 20

# Security headers; production (DEBUG off) gets the strict values that `check --deploy` expects.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer tokens: personal API keys (byt_…), then JWTs. The first class's header makes an
        # unauthenticated request a 401 with WWW-Authenticate, not a 403.
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        # Multipart joins the endpoints that take uploads, with their own size limit.
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.api.openapi_errors.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login": env.str("LOGIN_RATE", default="10/min"),
        "register": env.str("REGISTER_RATE", default="20/hour"),
    },
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ALGORITHM": "HS256",
    "LEEWAY": 0,
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A password change invalidates every token issued before it.
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Bytchat API",
    "DESCRIPTION": "Self-hosted AI chat backend: users, bots, knowledge and chats.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Messages and documents both have a `status`; each choice set keeps its own name.
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": "chats.models.MessageStatus",
        "MessageRoleEnum": "chats.models.Role",
        # A question or an answer: search filters and hits, shared snapshots.
        "SpokenRoleEnum": ["user", "assistant"],
        "DocumentStatusEnum": "knowledge.models.DocumentStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.openapi.add_streaming_endpoints",
        "core.api.openapi.widget_security",
        "core.api.openapi.metrics_endpoint",
        "core.api.openapi_errors.add_error_components",
    ],
}

# Background work through Django's tasks API: the database backend and its worker (`manage.py run_worker`,
# django-tasks-db's `db_worker` with a heartbeat).
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
    }
}
# The worker stamps its heartbeat this often; /readyz counts a worker as gone once its last stamp is STALE old.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=10.0)
WORKER_STALE_SECONDS = env.float("WORKER_STALE_SECONDS", default=60.0)
if WORKER_STALE_SECONDS <= WORKER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("WORKER_STALE_SECONDS must be longer than WORKER_HEARTBEAT_SECONDS.")

# Knowledge: uploads, ingestion, retrieval.
KNOWLEDGE_MAX_FILE_BYTES = env.int("KNOWLEDGE_MAX_FILE_BYTES", default=10 * 1024 * 1024)
KNOWLEDGE_MAX_DOCUMENTS_PER_BASE = env.int("KNOWLEDGE_MAX_DOCUMENTS_PER_BASE", default=500)
# Per user: knowledge bases (each trained bot has one) and bytes of stored files, checked before anything is stored.
KNOWLEDGE_BASES_PER_USER = env.int("KNOWLEDGE_BASES_PER_USER", default=100)
KNOWLEDGE_MAX_BYTES_PER_USER = env.int("KNOWLEDGE_MAX_BYTES_PER_USER", default=500 * 1024 * 1024)
# Text extraction runs in a child process with this much CPU and wall-clock time and address space.
KNOWLEDGE_EXTRACT_SECONDS = env.float("KNOWLEDGE_EXTRACT_SECONDS", default=120.0)
KNOWLEDGE_EXTRACT_MEMORY_MB = env.int("KNOWLEDGE_EXTRACT_MEMORY_MB", default=1024)
KNOWLEDGE_MAX_ATTEMPTS = env.int("KNOWLEDGE_MAX_ATTEMPTS", default=3)
# Retries after an unexpected failure wait BASE * 2^(attempt - 1) seconds, at most MAX.
KNOWLEDGE_RETRY_BASE_SECONDS = env.int("KNOWLEDGE_RETRY_BASE_SECONDS", default=30)
KNOWLEDGE_RETRY_MAX_SECONDS = env.int("KNOWLEDGE_RETRY_MAX_SECONDS", default=3600)
# The ingesting worker stamps the document this often; a `processing` document not stamped for
# STALE seconds belongs to a dead worker, and a `queued` one due that long without a pending task
# lost its enqueue: `reconcile_documents` queues both again. STALE must exceed one embeddings call
# (LLM_READ_TIMEOUT times LLM_MAX_RETRIES + 1), the longest step without a heartbeat.
KNOWLEDGE_HEARTBEAT_SECONDS = env.float("KNOWLEDGE_HEARTBEAT_SECONDS", default=5.0)
KNOWLEDGE_STALE_SECONDS = env.int("KNOWLEDGE_STALE_SECONDS", default=300)
# Text search configuration of PostgreSQL's full-text engine (fixed when the index is created).
KNOWLEDGE_FTS_LANGUAGE = env.str("KNOWLEDGE_FTS_LANGUAGE", default="english")
if not KNOWLEDGE_FTS_LANGUAGE.isidentifier():
    raise ImproperlyConfigured("KNOWLEDGE_FTS_LANGUAGE must name a text search configuration, e.g. english.")
# 1500 scored nDCG@10 0.690 on SciFact with SQLite FTS5, against 0.682 at 1000 and 0.688 at 2500.
KNOWLEDGE_CHUNK_CHARS = env.int("KNOWLEDGE_CHUNK_CHARS", default=1500)
KNOWLEDGE_CHUNK_OVERLAP = env.int("KNOWLEDGE_CHUNK_OVERLAP", default=150)
# Semantic search: an OpenAI-compatible /v1/embeddings endpoint of one of LLM_PROVIDERS; unset, lexical only.
EMBEDDINGS_PROVIDER = env.str("EMBEDDINGS_PROVIDER", default="")
EMBEDDINGS_MODEL = env.str("EMBEDDINGS_MODEL", default="text-embedding-3-small")
EMBEDDINGS_BATCH = env.int("EMBEDDINGS_BATCH", default=64)
# Size of the pgvector column and its HNSW index (fixed when the migration runs; 1536 fits
# text-embedding-3-small, 384 all-MiniLM-L6-v2). Vectors of another size use the numpy path.
EMBEDDINGS_DIMENSIONS = env.int("EMBEDDINGS_DIMENSIONS", default=1536)
# Reciprocal rank fusion constant (Cormack et al. 2009 use 60).
KNOWLEDGE_RRF_K = env.int("KNOWLEDGE_RRF_K", default=60)
# Message search with embeddings (docs/search.md): new messages are embedded by a background task queued at
# most once per DELAY seconds; a hit found by meaning alone must be at least this similar (cosine) to the query.
CHAT_SEARCH_EMBEDDING_DELAY_SECONDS = env.float("CHAT_SEARCH_EMBEDDING_DELAY_SECONDS", default=5.0)
CHAT_SEARCH_MIN_SIMILARITY = env.float("CHAT_SEARCH_MIN_SIMILARITY", default=0.3)
KNOWLEDGE_PASSAGES_IN_CONTEXT = env.int("KNOWLEDGE_PASSAGES_IN_CONTEXT", default=4)

# Model providers. Every remote provider is an OpenAI-compatible base URL reached with the openai SDK.
LLM_PROVIDER = env.str("LLM_PROVIDER", default="local")
LLM_DEFAULT_MODELS = {
    "local": "bytchat-local",
    "openai": "gpt-4o-mini",
    "google": "gemini-1.5-flash-latest",
    "anthropic": "claude-3-5-haiku-latest",
    "openrouter": "openai/gpt-4o-mini",
    "ollama": "llama3.2",
}
LLM_MODEL = env.str("LLM_MODEL", default=LLM_DEFAULT_MODELS.get(LLM_PROVIDER, ""))
# Checked below, once LLM_PROVIDERS is defined.
if not LLM_MODEL:
    raise ImproperlyConfigured(f"LLM_MODEL must be set for LLM_PROVIDER={LLM_PROVIDER}.")
LLM_PROVIDERS = {
    "openai": {
        "base_url": env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1"),
        "api_key": env.str("OPENAI_API_KEY", default=""),
        "requires": "api_key",
    },
    "google": {
        "base_url": env.str("GOOGLE_BASE_URL", default="https://generativelanguage.googleapis.com/v1beta/openai/"),
        "api_key": env.str("GOOGLE_API_KEY", default=""),
        "requires": "api_key",
    },
    "anthropic": {
        "base_url": env.str("ANTHROPIC_BASE_URL", default="https://api.anthropic.com/v1/"),
        "api_key": env.str("ANTHROPIC_API_KEY", default=""),
        "requires": "api_key",
    },
    "openrouter": {
        "base_url": env.str("OPENROUTER_BASE_URL", default="https://openrouter.ai/api/v1"),
        "api_key": env.str("OPENROUTER_API_KEY", default=""),
        "requires": "api_key",
    },
    "ollama": {
        "base_url": env.str("OLLAMA_BASE_URL", default=""),
        "api_key": env.str("OLLAMA_API_KEY", default=""),
        "requires": "base_url",
    },
    "vllm": {
        "base_url": env.str("VLLM_BASE_URL", default=""),
        "api_key": env.str("VLLM_API_KEY", default=""),
        "requires": "base_url",
    },
    "custom": {
        "base_url": env.str("CUSTOM_LLM_BASE_URL", default=""),
        "api_key": env.str("CUSTOM_LLM_API_KEY", default=""),
        "requires": "base_url",
    },
}
if LLM_PROVIDER != "local" and LLM_PROVIDER not in LLM_PROVIDERS:
    raise ImproperlyConfigured(
        f"LLM_PROVIDER={LLM_PROVIDER} is unknown: use local or one of {', '.join(LLM_PROVIDERS)}."
    )
# The SDK's default timeout is 600 s; these bound connect, each read, and a whole answer.
LLM_CONNECT_TIMEOUT = env.float("LLM_CONNECT_TIMEOUT", default=5.0)
LLM_READ_TIMEOUT = env.float("LLM_READ_TIMEOUT", default=60.0)
LLM_TOTAL_TIMEOUT = env.float("LLM_TOTAL_TIMEOUT", default=300.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
# "aiohttp" (measured faster in bench/provider_transport.py) or "httpx".
LLM_HTTP_TRANSPORT = env.str("LLM_HTTP_TRANSPORT", default="aiohttp")
# Pause between words of the offline provider, so a fresh install shows streaming.
LLM_LOCAL_WORD_DELAY = env.float("LLM_LOCAL_WORD_DELAY", default=0.02)

# Limits on what users send to the model (docs/reliability.md C2).
CHAT_MAX_QUERY_CHARS = env.int("CHAT_MAX_QUERY_CHARS", default=16_000)
CHAT_MAX_TOKENS_CAP = env.int("CHAT_MAX_TOKENS_CAP", default=4096)
CHAT_HISTORY_MESSAGES = env.int("CHAT_HISTORY_MESSAGES", default=20)
# Answers one user may have streaming at once, across every surface (docs/reliability.md C7).
CHAT_PARALLEL_STREAMS = env.int("CHAT_PARALLEL_STREAMS", default=3)
# Extra continuations when a model stops for length and the client asked to `autocontinue` (002).
CHAT_AUTOCONTINUE_MAX = env.int("CHAT_AUTOCONTINUE_MAX", default=3)
# Models a chat may ask for by name besides the default and its bot's (`provider/model`, comma-separated).
LLM_CHAT_MODELS = env.list("LLM_CHAT_MODELS", default=[])
# New questions per user on the 002 `new` and `ask` endpoints (the seed documents 50 an hour).
CONVERSATIONS_RATE = env.str("CONVERSATIONS_RATE", default="50/hour")
# Rows a list endpoint returns at most; `?limit=` asks for fewer (docs/reliability.md B2).
LIST_MAX_ROWS = env.int("LIST_MAX_ROWS", default=200)
# Server-Sent Events: a comment line after this many idle seconds keeps proxies from closing the stream.
SSE_HEARTBEAT_SECONDS = env.float("SSE_HEARTBEAT_SECONDS", default=15.0)

# Durable runs (chats/runs, docs/runs.md): each answer is a run with a numbered event log.
# Chunks arriving within this many milliseconds of the last event are coalesced into one event.
RUN_COALESCE_MS = env.float("RUN_COALESCE_MS", default=15.0)
# The answer's text is written to its message at least this often while it streams.
RUN_CHECKPOINT_SECONDS = env.float("RUN_CHECKPOINT_SECONDS", default=1.0)
# A run (and the stream and socket slots of its process) is the process's while renewed; a process
# that stops renewing loses its runs (marked `interrupted`) this many seconds after its last renewal.
RUN_LEASE_SECONDS = env.float("RUN_LEASE_SECONDS", default=15.0)
RUN_LEASE_RENEW_SECONDS = env.float("RUN_LEASE_RENEW_SECONDS", default=5.0)
# A stopping server process (TERM: a deploy, a rolling restart) lets its answers finish this long; the rest
# end `interrupted` with their text (docs/scaling.md). config/server.py gives uvicorn the same budget.
DRAIN_SECONDS = env.float("DRAIN_SECONDS", default=DRAIN_SECONDS_DEFAULT)
# Events kept per run; a reader further behind is given the stored text as a snapshot.
RUN_LOG_MAX_EVENTS = env.int("RUN_LOG_MAX_EVENTS", default=5000)
# How long a finished run's events stay readable; later, a resume gets the stored message.
RUN_LOG_TTL_SECONDS = env.int("RUN_LOG_TTL_SECONDS", default=600)

# WebSocket chat sessions (003, docs/reliability.md E1-E10).
# Browsers' origins allowed to open sockets besides ALLOWED_HOSTS (e.g. https://app.example.com).
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=[])
WS_TICKET_SECONDS = env.int("WS_TICKET_SECONDS", default=60)
WS_PER_USER = env.int("WS_PER_USER", default=10)
WS_MAX_CONTENT_CHARS = env.int("WS_MAX_CONTENT_CHARS", default=CHAT_MAX_QUERY_CHARS)
WS_MAX_FRAME_BYTES = env.int("WS_MAX_FRAME_BYTES", default=64 * 1024)
WS_MESSAGES_PER_MINUTE = env.int("WS_MESSAGES_PER_MINUTE", default=60)
WS_MAX_AGE_SECONDS = env.int("WS_MAX_AGE_SECONDS", default=3600)
# Session business data: a flat object of numbers, at most this many keys (docs/reliability.md G6).
CHAT_CONTEXT_MAX_KEYS = env.int("CHAT_CONTEXT_MAX_KEYS", default=50)

# Web search for 004 `inference_internet`: a SearxNG instance's JSON API; unset, the endpoint says so.
SEARXNG_URL = env.str("SEARXNG_URL", default="")
if SEARXNG_URL and not SEARXNG_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("SEARXNG_URL must be an http:// or https:// URL.")
WEB_SEARCH_TIMEOUT = env.float("WEB_SEARCH_TIMEOUT", default=5.0)
WEB_SEARCH_MAX_BYTES = env.int("WEB_SEARCH_MAX_BYTES", default=200_000)
WEB_SEARCH_MAX_RESULTS = env.int("WEB_SEARCH_MAX_RESULTS", default=5)

# Tools (docs/tools.md): MCP servers a bot's owner attaches, and the tool calls of an answer.
# Hosts a bot's MCP server may be on: names ("mcp.example.com"), suffixes (".example.com"), or "*" for any
# public host. Private, loopback and link-local addresses are refused unless their name or address is listed.
MCP_ALLOWED_HOSTS = env.list("MCP_ALLOWED_HOSTS", default=[])
# Key of the MCP servers' stored credentials (Fernet, urlsafe base64 of 32 bytes); derived from SECRET_KEY if unset.
MCP_SECRETS_KEY = env.str("MCP_SECRETS_KEY", default="")
MCP_SERVERS_PER_BOT = env.int("MCP_SERVERS_PER_BOT", default=10)
MCP_TOOLS_PER_SERVER = env.int("MCP_TOOLS_PER_SERVER", default=64)
MCP_CONNECT_SECONDS = env.float("MCP_CONNECT_SECONDS", default=10.0)
# A tool call's time, and how much of its output reaches the model (the rest is cut, with a note).
TOOL_CALL_SECONDS = env.float("TOOL_CALL_SECONDS", default=30.0)
TOOL_RESULT_MAX_CHARS = env.int("TOOL_RESULT_MAX_CHARS", default=8000)
# Model calls an answer may make for tools (each charged to the quota), and calls per round.
TOOL_MAX_ROUNDS = env.int("TOOL_MAX_ROUNDS", default=5)
TOOL_MAX_CALLS_PER_ROUND = env.int("TOOL_MAX_CALLS_PER_ROUND", default=8)
# How long a call with policy `ask` waits for its decision; then it is rejected (expired).
TOOL_APPROVAL_SECONDS = env.int("TOOL_APPROVAL_SECONDS", default=600)

# Bytchat's own MCP server (/mcp, docs/api-mcp.md): the tools a caller is shown (their bots, then their
# knowledge bases) are at most this many.
MCP_SERVER_MAX_TOOLS = env.int("MCP_SERVER_MAX_TOOLS", default=200)

# Daily model calls per user type (docs/reliability.md C4, C5); staff have none unless QUOTA_DAILY_STAFF is set.
# A quota set on the user in the admin wins over these. The day is TIME_ZONE's (UTC by default).
QUOTA_DAILY_FREE = env.int("QUOTA_DAILY_FREE", default=100)
QUOTA_DAILY_PRO = env.int("QUOTA_DAILY_PRO", default=2000)
QUOTA_DAILY_STAFF = env.int("QUOTA_DAILY_STAFF", default=None)

# Exams (000 `/create_exam`): questions from a user's documents, rendered to PDF in a bounded child process.
EXAM_MAX_QUESTIONS = env.int("EXAM_MAX_QUESTIONS", default=50)
EXAMS_PER_USER = env.int("EXAMS_PER_USER", default=500)
# Calls to a remote model for one exam when its output is not valid questions.
EXAM_GENERATION_ATTEMPTS = env.int("EXAM_GENERATION_ATTEMPTS", default=3)
EXAM_RENDER_SECONDS = env.float("EXAM_RENDER_SECONDS", default=30.0)
EXAM_RENDER_MEMORY_MB = env.int("EXAM_RENDER_MEMORY_MB", default=768)
# A TrueType family for the PDF (Debian's fonts-dejavu-core); without it, the PDF falls back to Helvetica (Latin-1).
EXAM_PDF_FONT_DIR = env.str("EXAM_PDF_FONT_DIR", default="/usr/share/fonts/truetype/dejavu")

# The web widget (public bots): how long a browser keeps its visitor identity, and new sessions per
# client address (anonymous visitors have no account to count against).
WIDGET_VISITOR_DAYS = env.int("WIDGET_VISITOR_DAYS", default=180)
WIDGET_SESSIONS_RATE = env.str("WIDGET_SESSIONS_RATE", default="30/hour")
# Socket URLs per visitor (each opens one socket; a reconnecting widget asks for one per attempt).
WIDGET_SOCKETS_RATE = env.str("WIDGET_SOCKETS_RATE", default="240/hour")

BOTS_PER_USER = env.int("BOTS_PER_USER", default=50)
API_KEYS_PER_USER = env.int("API_KEYS_PER_USER", default=20)
MODEL_CONFIGS_PER_BOT = env.int("MODEL_CONFIGS_PER_BOT", default=10)

# Observability (docs/observability.md). /metrics answers a bearer METRICS_TOKEN, or with none set only
# requests from the loopback address; METRICS_ENABLED=False records nothing per request or model call and
# /metrics answers 404 (bench/relay.py's reference).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# /readyz: each check (database and worker heartbeat, Redis) gets this long before it counts as failed.
READYZ_TIMEOUT_SECONDS = env.float("READYZ_TIMEOUT_SECONDS", default=2.0)
# Whether /readyz needs a live worker (with the database task backend); off where the worker is watched apart.
READYZ_WORKER = env.bool("READYZ_WORKER", default=True)
# Traces over OTLP/HTTP to this collector (core/tracing.py); unset, nothing is traced or exported. The
# exporter reads the other OTEL_EXPORTER_OTLP_* variables itself, the batch processor OTEL_BSP_*.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="bytchat")

# Logs: one JSON object a line (core/logs.py) with the request's and run's ids; `plain` for reading in a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
LOGGING_CONFIG = "core.logs.configure_logging"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logs.JsonFormatter"}, "plain": {"()": "core.logs.PlainFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # uvicorn's own handler writes plain text: its lines go through ours instead.
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Off (`--no-access-log`: uvicorn logs a request when this logger has a handler): its lines hold the query.
        "uvicorn.access": {"handlers": [], "propagate": False},
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        # uvicorn logs each WebSocket handshake's full URL, ticket or token included, at INFO.
        "uvicorn.error": {"level": "WARNING"},
        # `runserver` (daphne's) logs full URLs, queries included.
        "django.channels.server": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        # The MCP SDK logs every stateless /mcp request ("Terminating session") at INFO: Bytchat's request line says it.
        "mcp": {"level": "WARNING"},
    },
}
