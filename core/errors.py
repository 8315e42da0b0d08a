"""The one family of domain errors; each transport maps it once (JSON, SSE event, WebSocket frame)."""

from __future__ import annotations

from django.utils.encoding import force_str
from django.utils.translation import gettext as _


class DomainError(Exception):
    """An expected failure with a stable code, a user-facing message and an HTTP status."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = force_str(message) if message is not None else self.default_message()
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}
        super().__init__(self.message)

    def default_message(self) -> str:
        return _("Bad request.")

    def as_payload(self) -> dict[str, str]:
        return {"detail": self.message, "code": self.code}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"

    def default_message(self) -> str:
        return _("Not found.")


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str | None = None, **kwargs) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(message, **kwargs)

    def default_message(self) -> str:
        return _("Authentication credentials were not provided or are invalid.")
