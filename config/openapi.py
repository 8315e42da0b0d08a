"""Adds the async streaming endpoints, which DRF cannot introspect, to the OpenAPI schema."""

from typing import Any

from django.conf import settings

UUID_PARAM = {"name": "bot_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
ERROR = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
                "required": ["detail"],
            }
        }
    },
}


def bot_chat_body() -> dict[str, Any]:
    from bots.models import TaskType

    return {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "maxLength": settings.CHAT_MAX_QUERY_CHARS,
                "description": "The question (also accepted as ?query=).",
            },
            "task_type": {"type": "string", "enum": list(TaskType.values)},
            "chat_id": {"type": "string", "format": "uuid", "description": "Continue this chat."},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": settings.CHAT_MAX_TOKENS_CAP},
        },
    }


# The seeds spell these with a trailing slash; every other path is documented without one.
SLASHED_PATHS = {"/users/", "/bots/", "/bots/{bot_id}/models/"}


def seed_spelling(path: str) -> str:
    return path if path == "/" or path in SLASHED_PATHS else path.rstrip("/")


def add_streaming_endpoints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result["paths"] = {seed_spelling(path): item for path, item in result.get("paths", {}).items()}
    body = bot_chat_body()
    result["paths"]["/chat/{bot_id}"] = {
        "post": {
            "operationId": "bot_chat",
            "tags": ["chat"],
            "summary": "Ask a bot; the answer streams as it is generated.",
            "description": (
                "Plain chunked text by default; Server-Sent Events (`chunk`, `done`, `error`) with "
                "`Accept: text/event-stream`. A failure before the first token is an HTTP error with a "
                "JSON `detail`; a failure after it ends a text stream with a line `[error] ...` and an SSE "
                "stream with an `error` event. Headers: `X-Chat-Id`, `X-Bytchat-Model`, `X-Bytchat-Task-Type`."
            ),
            "parameters": [
                UUID_PARAM,
                {"name": "query", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "task_type", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {"schema": body},
                    "application/x-www-form-urlencoded": {"schema": body},
                },
            },
            "security": [{"jwtAuth": []}],
            "responses": {
                "200": {
                    "description": "The answer, streamed.",
                    "content": {
                        "text/plain": {"schema": {"type": "string"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                "400": ERROR,
                "401": ERROR,
                "404": ERROR,
                "405": ERROR,
                "413": ERROR,
                "429": ERROR,
                "502": ERROR,
                "503": ERROR,
                "504": ERROR,
            },
        }
    }
    return result
