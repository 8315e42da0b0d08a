"""Bearer-token authentication for async views, with the same rules as DRF's JWTAuthentication."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import User
from config.errors import NotAuthenticated


def authenticate_bearer(request: HttpRequest) -> User:
    try:
        result = JWTAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        detail = exc.detail.get("detail", exc.detail) if isinstance(exc.detail, dict) else exc.detail
        raise NotAuthenticated(str(detail), code="token_not_valid") from exc
    if result is None:
        raise NotAuthenticated()
    return result[0]
