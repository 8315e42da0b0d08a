"""Adds the async streaming endpoints, which DRF cannot introspect, to the OpenAPI schema."""

from typing import Any

from django.conf import settings

UUID_PARAM = {"name": "bot_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
ERROR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


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
SLASHED_PATHS = {"/users/", "/bots/", "/bots/{bot_id}/models/", "/chats/"}


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
                "stream with an `error` event. Headers: `X-Chat-Id`, `X-Bytchat-Model`, `X-Bytchat-Task-Type`, "
                "`X-Run-Id` (the answer's run: `GET /runs/{run_id}` and its resumable events). Each SSE event has "
                "an `id:` line `<run_id>:<seq>` and carries `run_id` and `seq`. The answer runs to its end "
                "even if the client leaves; `POST /runs/{run_id}/stop` stops it."
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
    result["paths"].update(whole_answer_endpoints())
    result["paths"].update(inference_endpoints(result))
    result["paths"].update(openai_endpoints())
    result["paths"].update(runs_endpoints())
    result.setdefault("components", {}).setdefault("schemas", {})["Approval"] = APPROVAL
    return result


RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
RUN = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["running", "complete", "cancelled", "error", "interrupted"]},
        "seq": {"type": "integer", "description": "The sequence number of the run's last event so far."},
        "chat_id": {"type": "string", "format": "uuid"},
        "question_id": {"type": "string", "format": "uuid"},
        "message_id": {"type": "string", "format": "uuid", "nullable": True},
        "content": {"type": "string", "description": "The answer's text so far (checkpointed at least every second)."},
        "finish_reason": {"type": "string"},
        "error": {"type": "string"},
        "error_code": {"type": "string"},
        "surface": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": "string", "format": "date-time", "nullable": True},
        "approvals": {
            "type": "array",
            "description": "Tool calls the answer waits on for the user's decision (docs/tools.md).",
            "items": {"$ref": "#/components/schemas/Approval"},
        },
    },
}
APPROVAL = {
    "type": "object",
    "properties": {
        "approval_id": {"type": "string", "format": "uuid"},
        "run_id": {"type": "string", "format": "uuid"},
        "tool": {"type": "string"},
        "arguments": {"type": "object"},
        "status": {
            "type": "string",
            "enum": ["pending", "approved", "running", "done", "failed", "denied", "rejected", "expired"],
        },
        "decided_by": {"type": "string", "enum": ["", "policy", "user", "visitor", "expiry"]},
        "decided_at": {"type": "string", "format": "date-time", "nullable": True},
        "expires_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}
APPROVAL_ID = {"name": "approval_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
RUN_AUTH = [{"jwtAuth": []}, {"jwtQuery": []}, {"apiKeyAuth": []}, {"visitorAuth": []}]


def runs_endpoints() -> dict[str, Any]:
    """Runs (docs/runs.md): an answer's state, its resumable events, its stop. Owner only: any other run is a 404."""
    errors = {"400": ERROR, "401": ERROR, "404": ERROR, "405": ERROR}
    run_json = {"description": "The run.", "content": {"application/json": {"schema": RUN}}}
    return {
        "/runs/{run_id}": {
            "get": {
                "operationId": "run_detail",
                "tags": ["runs"],
                "summary": "A run: its status, position, chat and message, and the text so far.",
                "parameters": [RUN_ID],
                "security": RUN_AUTH,
                "responses": {"200": run_json, **errors},
            }
        },
        "/runs/{run_id}/events": {
            "get": {
                "operationId": "run_events",
                "tags": ["runs"],
                "summary": "The run's events as Server-Sent Events, resumable.",
                "description": (
                    "Every event after the position given by `Last-Event-ID` (`<run_id>:<seq>` as the stream "
                    "sent it, or `<seq>`) or `?after=N`, each once and in order, then the live ones, then `done` "
                    "or `error`. Each event has an `id:` line `<run_id>:<seq>`. When the events are no longer "
                    "kept, a `snapshot` event carries the stored text (replace what you have), then the end. "
                    "204 when the reader already has the end (EventSource then stops reconnecting)."
                ),
                "parameters": [
                    RUN_ID,
                    {"name": "after", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
                    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}},
                    {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "security": RUN_AUTH,
                "responses": {
                    "200": {
                        "description": "The events, streamed.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "204": {"description": "Nothing after that position: the reader has the run's end."},
                    **errors,
                },
            }
        },
        "/runs/{run_id}/stop": {
            "post": {
                "operationId": "run_stop",
                "tags": ["runs"],
                "summary": "Stop the answer; its text so far is kept as `cancelled`.",
                "description": (
                    "Closes the model request wherever the run is written (this process or another) and waits "
                    "briefly for it to end; readers get `done` with finish_reason `cancelled`. A run that "
                    "already ended is returned unchanged."
                ),
                "parameters": [RUN_ID],
                "security": RUN_AUTH,
                "responses": {"200": run_json, **errors},
            }
        },
        "/runs/{run_id}/approvals/{approval_id}": {
            "post": {
                "operationId": "run_approval_decide",
                "tags": ["runs"],
                "summary": "Approve (optionally with edited arguments) or reject a tool call the answer waits on.",
                "description": (
                    "The answer goes on at once, wherever it runs (a run whose process died meanwhile is taken "
                    "over). 409 `approval_closed` once it was decided or expired (TOOL_APPROVAL_SECONDS)."
                ),
                "parameters": [
                    RUN_ID,
                    {
                        "name": "approval_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["decision"],
                                "properties": {
                                    "decision": {"type": "string", "enum": ["approve", "reject"]},
                                    "arguments": {"type": "object", "description": "Edited arguments (approve only)."},
                                },
                            }
                        }
                    },
                },
                "security": RUN_AUTH,
                "responses": {
                    "200": {
                        "description": "The approval as decided.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}},
                    },
                    "409": ERROR,
                    **errors,
                },
            }
        },
    }


OPENAI_ERROR = {
    "description": 'OpenAI\'s error object: `{"error": {"message", "type", "param", "code"}}`.',
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}},
}


def openai_endpoints() -> dict[str, Any]:
    """`/v1/chat/completions`: OpenAI's request and response bodies, described by OpenAI's own spec."""
    body = {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string", "description": "A bot: `bot-<uuid>` (see `/v1/models`)."},
            "messages": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 200},
            "stream": {"type": "boolean"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        },
    }
    return {
        "/v1/chat/completions": {
            "post": {
                "operationId": "openai_chat_completions",
                "tags": ["openai"],
                "summary": "A bot answers in OpenAI's chat completions format (JSON or SSE chunks).",
                "description": (
                    "The bot's system prompt, models and knowledge apply; the call is charged like any "
                    "other. `stream: true` sends `chat.completion.chunk` events ending with `data: [DONE]`. "
                    "Citations travel in an extra `citations` field."
                ),
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "security": [{"jwtAuth": []}, {"apiKeyAuth": []}],
                "responses": {
                    "200": {
                        "description": "A `chat.completion`, or its chunks as Server-Sent Events.",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    **{status: OPENAI_ERROR for status in ("400", "401", "404", "405", "409", "429", "502", "503")},
                },
            }
        }
    }


def json_operation(operation_id: str, summary: str, body: dict[str, Any], responses: dict[str, Any]) -> dict:
    return {
        "operationId": operation_id,
        "tags": ["chat"],
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "security": [{"jwtAuth": []}],
        "responses": {**responses, **{code: ERROR for code in ("400", "401", "404", "409", "429", "502", "503")}},
    }


def whole_answer_endpoints() -> dict[str, Any]:
    """002 `new`/`ask` (the answer as JSON once complete) and 000 `/chat` (the answer as streamed text)."""
    prompt = {"type": "string", "maxLength": settings.CHAT_MAX_QUERY_CHARS}
    flag = {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]}
    answer = {
        "description": "The stored answer.",
        "content": {"application/json": {"schema": {"type": "object", "properties": {"response": {"type": "object"}}}}},
    }
    conversation_param = {
        "name": "conversation_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    ask = json_operation(
        "conversation_ask",
        "Ask in a conversation; `parent_id` answers from that message's branch.",
        {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": prompt,
                "parent_id": {"type": "string", "format": "uuid"},
                "model": {"type": "string"},
                "autocontinue": flag,
            },
        },
        {"201": answer},
    )
    ask["parameters"] = [conversation_param]
    learnyourown = json_operation(
        "learnyourown_chat",
        "The model's answer, grounded in the caller's documents, streamed as plain text.",
        {
            "type": "object",
            "required": ["text"],
            "properties": {
                "user": {"type": "string"},
                "token": {"type": "string", "description": "The access JWT, if not in the Authorization header."},
                "type_user": {"type": "string"},
                "text": prompt,
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                "max_tokens": {"type": "integer", "minimum": 1, "maximum": settings.CHAT_MAX_TOKENS_CAP},
                "chat_id": {"type": "string", "format": "uuid"},
            },
        },
        {"200": {"description": "The answer, streamed.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    learnyourown["security"] = [{"jwtAuth": []}, {"jwtBodyToken": []}]
    learnyourown["responses"]["403"] = ERROR  # `user` naming another account
    return {
        "/conversations/new": {
            "post": json_operation(
                "conversation_new",
                "Start a conversation with its first question; answers 201 with the stored answer.",
                {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": {
                        "prompt": prompt,
                        "title": {"type": "string", "maxLength": 200},
                        "model": {"type": "string"},
                        "autocontinue": flag,
                        "bot_id": {"type": "string", "format": "uuid"},
                    },
                },
                {"201": answer},
            )
        },
        "/conversations/{conversation_id}/ask": {"post": ask},
        "/chat": {"post": learnyourown},
    }


def inference_endpoints(result: dict[str, Any]) -> dict[str, Any]:
    """004 `inference` and `inference_internet`: SSE streams a browser's EventSource can open."""
    schemes = result.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["jwtQuery"] = {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The access token as `?token=`, for EventSource clients, which cannot send headers.",
    }
    target = {
        "name": "target_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": "A chat (its latest Human message is answered) or one of its Human messages.",
    }
    token = {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}
    paths = {}
    for name, grounded in (("inference", ""), ("inference_internet", " grounded in web search results")):
        paths[f"/conversations/{name}/{{target_id}}"] = {
            "get": {
                "operationId": f"conversations_{name}",
                "tags": ["conversations"],
                "summary": f"Answer the chat's latest Human message{grounded}, as Server-Sent Events.",
                "description": (
                    "`chunk` events as the model writes, then `done` (the full text, `citations`, "
                    "`message_id`) or `error` (`detail`, `code`). The answer is stored as an Assistant "
                    "message; one cut short is stored with what was written. Refusals before the answer "
                    "starts (authentication, unknown chat, no Human message, chat busy, too many streams) "
                    "are JSON errors; any failure after that, including a model or web search that is not "
                    "configured or fails, is an `error` event in a 200 stream. Web search results are cited "
                    "with their URLs and never fetched. Each event has an `id:` line `<run_id>:<seq>`; a "
                    "request with `Last-Event-ID` (a browser's EventSource reconnecting) resumes that run "
                    "after that event instead of starting a new answer, and gets 204 when nothing is left."
                ),
                "parameters": [
                    target,
                    token,
                    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "security": [{"jwtAuth": []}, {"jwtQuery": []}],
                "responses": {
                    "200": {
                        "description": "The answer, streamed.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "204": {"description": "Resumed past the run's end: nothing left to send."},
                    "400": ERROR,
                    "401": ERROR,
                    "404": ERROR,
                    "405": ERROR,
                    "409": ERROR,
                    "429": ERROR,
                },
            }
        }
    return paths


def widget_security(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """The widget's endpoints: a session is opened with the bot's public key alone; the rest take
    the visitor token the browser keeps (`Authorization: Visitor <token>`)."""
    schemes = result.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["visitorAuth"] = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Visitor <token>`: the visitor token `POST /widget/sessions` returned to this browser.",
    }
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/widget/"):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["security"] = [] if path.rstrip("/") == "/widget/sessions" else [{"visitorAuth": []}]
    return result


def metrics_endpoint(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """`GET /metrics` (core/api/metrics.py): for a Prometheus scraper, not the chat API's clients."""
    schemes = result.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["metricsToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "METRICS_TOKEN as a bearer token; with none set, only requests from the loopback address.",
    }
    result.setdefault("paths", {})["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "tags": ["operations"],
            "summary": "This deployment's metrics in the Prometheus text format (docs/observability.md).",
            "security": [{"metricsToken": []}],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": ERROR,
                "403": ERROR,
                "404": ERROR,
            },
        }
    }
    return result
