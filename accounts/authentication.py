"""Bearer-token authentication for async views, with the same rules as DRF's JWTAuthentication."""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpRequest
from django.utils.translation import gettext as _
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.models import User
from accounts.services import API_KEY_PREFIX, api_key_user
from core.errors import DomainError, NotAuthenticated


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer byt_…`: a personal API key (accounts.models.ApiKey). Other bearer
    tokens are left to JWTAuthentication, so it runs first in DRF's list."""

    def authenticate(self, request) -> tuple[User, None] | None:
        raw = api_key_in(request)
        if raw is None:
            return None
        user = api_key_user(raw=raw)
        if user is None:
            raise AuthenticationFailed(_("API key is invalid or revoked."), code="api_key_not_valid")
        return user, None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


def api_key_in(request) -> str | None:
    """The personal API key the request carries as its bearer token, if that is what it carries."""
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.startswith(API_KEY_PREFIX):
        return token.strip()
    return None


def authenticate_bearer(request: HttpRequest) -> User:
    """The user of the request's bearer token: an access JWT or a personal API key (async views)."""
    raw = api_key_in(request)
    if raw is not None:
        user = api_key_user(raw=raw)
        if user is None:
            raise NotAuthenticated(_("API key is invalid or revoked."), code="api_key_not_valid")
        return user
    try:
        result = JWTAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        detail = exc.detail.get("detail", exc.detail) if isinstance(exc.detail, dict) else exc.detail
        raise NotAuthenticated(str(detail), code="token_not_valid") from exc
    if result is None:
        raise NotAuthenticated()
    return result[0]


def user_from_access_token(raw: str) -> User:
    """The active user an access JWT belongs to, by the same rules as the Authorization header."""
    authentication = JWTAuthentication()
    try:
        return authentication.get_user(authentication.get_validated_token(raw.encode()))
    except (InvalidToken, AuthenticationFailed) as exc:
        raise NotAuthenticated(_("Token is invalid or expired."), code="token_not_valid") from exc


class BodyTokenAuthentication(JWTAuthentication):
    """The 000 surface sends its JWT as a `token` field of the JSON body; headers still win."""

    def authenticate(self, request):
        data = request.data if isinstance(request.data, Mapping) else {}
        raw = data.get("token")
        if not raw or not isinstance(raw, str):
            return None
        validated = self.get_validated_token(raw.encode())
        return self.get_user(validated), validated


def check_named_user(request, user: User) -> None:
    """The 000 surface names its user (`user`, in the query or body); it must be the caller (docs/reliability.md A8)."""
    data = request.data if isinstance(getattr(request, "data", None), Mapping) else {}
    check_names_caller(user, data.get("user"), request.query_params.get("user"))


def check_names_caller(user: User, *names: object) -> None:
    for named in names:
        if named is None or named == "":
            continue
        if not isinstance(named, str) or named.strip().lower() not in {user.email.lower(), user.username.lower()}:
            raise DomainError(
                _("The user parameter does not name the authenticated account."),
                code="user_mismatch",
                status_code=403,
            )


def authenticate_bearer_or_query(request: HttpRequest) -> User:
    """`Authorization: Bearer`, or `?token=<access JWT>` for streams a browser's EventSource opens
    (it cannot send headers; 004). Same rules either way: access tokens only, active users,
    revoked by a password change. A header, when sent, wins."""
    raw = request.GET.get("token")
    authenticator = JWTAuthentication()
    if not raw or authenticator.get_header(request) is not None:
        return authenticate_bearer(request)
    try:
        return authenticator.get_user(authenticator.get_validated_token(raw.encode()))
    except AuthenticationFailed as exc:
        detail = exc.detail.get("detail", exc.detail) if isinstance(exc.detail, dict) else exc.detail
        raise NotAuthenticated(str(detail), code="token_not_valid") from exc
