"""The error answers of every operation in the OpenAPI document, derived from what the operation takes.

Authentication → 401; a path parameter → 404; a body → 400, 413, 415; query parameters → 400; a
throttle → 429 and 503 (throttles count in the cache); what only the domain knows (a conflict, a quota,
an id in the body) a view adds with `error_statuses`. Bodies: `Error` (`detail`, `code`, `errors` by
field), or OpenAI's error object under /v1.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework.permissions import AllowAny, IsAuthenticated

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answer outside /v1.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in the request's language."},
        "code": {"type": "string", "description": "A stable code: `not_found`, `invalid`, `throttled`, ..."},
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": "Validation errors by field (`non_field_errors` for the body as a whole).",
        },
    },
    "required": ["detail", "code"],
}
OPENAI_ERROR_SCHEMA = {
    "type": "object",
    "description": "OpenAI's error object, for the /v1 API.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "code": {"type": "string", "nullable": True},
            },
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}
DESCRIPTIONS = {
    400: "The request is invalid: `detail` says why, `errors` names the fields.",
    401: "No credentials, or credentials that are invalid or expired.",
    403: "The credentials do not allow this.",
    404: "No such object for this user (another user's object is not found either).",
    405: "The method is not allowed here.",
    409: "The object is busy or in a state that does not allow this.",
    413: "The request body is too large.",
    415: "The body's media type is not accepted.",
    422: "The request is valid but cannot be carried out (an exam too large to render).",
    429: "Too many requests or the day's quota is used up; `Retry-After` says when to try again.",
    502: "The model provider failed.",
    503: "A service this needs (cache, model provider, web search) is unavailable; `Retry-After` may say when.",
    504: "The model provider did not answer in time.",
}


def error_response(status: int, path: str) -> dict[str, Any]:
    name = "OpenAIError" if path.startswith("/v1/") else "Error"
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }


def derived_statuses(operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer by its shape alone."""
    statuses: set[int] = set()
    parameters = operation.get("parameters", [])
    if any(p["in"] == "path" for p in parameters):
        statuses.add(404)
    if any(p["in"] == "query" for p in parameters):
        statuses.add(400)
    if "requestBody" in operation:
        statuses |= {400, 413, 415}
    if any(operation.get("security", [])):
        statuses.add(401)
    return statuses


def add_error_responses(operation: dict[str, Any], path: str, statuses: set[int]) -> None:
    for status in sorted(statuses):
        operation["responses"].setdefault(str(status), error_response(status, path))


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, with each operation's error answers."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is not None:
            add_error_responses(operation, path, self.error_statuses(operation))
        return operation

    def error_statuses(self, operation: dict[str, Any]) -> set[int]:
        statuses = derived_statuses(operation)
        view = self.view
        if view.get_authenticators():
            # A bad token is refused even where none is needed: DRF authenticates every request.
            statuses.add(401)
        # A permission that only asks who is calling (`only_authenticates`) refuses with a 401, never a 403.
        if any(
            type(p) not in (AllowAny, IsAuthenticated) and not getattr(p, "only_authenticates", False)
            for p in view.get_permissions()
        ):
            statuses.add(403)
        if view.get_throttles():
            statuses |= {429, 503}
        extra = getattr(view, "error_statuses", {})
        statuses |= set(extra.get(self.method, ()) if isinstance(extra, dict) else extra)
        return statuses


def add_error_components(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook, the last: the error bodies the operations refer to, and the statuses derived
    from each operation's shape for those written by hand or given their security by an earlier hook."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["OpenAIError"] = OPENAI_ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                add_error_responses(operation, path, derived_statuses(operation))
    return result
