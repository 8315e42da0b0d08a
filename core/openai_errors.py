"""OpenAI's error object (`{"error": {"message", "type", "param", "code"}}`), for the /v1 API:
OpenAI SDKs read its status and body to raise their usual exceptions."""

from __future__ import annotations

from typing import Any

# OpenAI's error `type` for the statuses its SDKs map to exceptions.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error_body(message: str, *, status: int, code: str | None, param: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
