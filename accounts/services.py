"""Writes on accounts: registration, token issue/revocation, records of model calls."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.emails import email_normalize
from accounts.models import ApiKey, CallOutcome, ModelCall, User
from bots.llm.types import Usage
from core.errors import Conflict, DomainError, NotAuthenticated


def user_create(*, email: str, password: str, username: str | None = None) -> User:
    email = email_normalize(email)
    username = (username or email).strip()
    if User.objects.filter(email=email).exists():
        raise DomainError(_("A user with this email already exists."), code="email_taken")
    if User.objects.filter(username=username).exists():
        raise DomainError(_("A user with this username already exists."), code="username_taken")
    candidate = User(email=email, username=username)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise DomainError("password: " + " ".join(exc.messages), code="invalid_password") from exc
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, username=username)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise DomainError(_("A user with this email already exists."), code="email_taken") from exc


def token_pair_issue(*, request: HttpRequest | None, email: str, password: str) -> dict[str, str]:
    user = authenticate(request, username=email.strip(), password=password)
    if user is None:
        raise NotAuthenticated(_("Incorrect email or password."), code="invalid_credentials")
    refresh = RefreshToken.for_user(user)
    return {"access_token": str(refresh.access_token), "refresh_token": str(refresh)}


def token_pair_refresh(*, refresh_token: str) -> dict[str, str]:
    """Rotate a refresh token: the old one is blacklisted, a new pair is issued."""
    invalid = NotAuthenticated(_("Refresh token is invalid or expired."), code="token_not_valid")
    try:
        refresh = RefreshToken(refresh_token)
    except TokenError as exc:
        raise invalid from exc
    user = User.objects.filter(pk=refresh.payload.get(jwt_settings.USER_ID_CLAIM)).first()
    if user is None or not user.is_active:
        raise invalid
    if jwt_settings.CHECK_REVOKE_TOKEN and refresh.payload.get(
        jwt_settings.REVOKE_TOKEN_CLAIM
    ) != get_md5_hash_password(user.password):
        raise invalid
    # Two parallel refreshes of one token: only the one that blacklists it first gets a new pair.
    with transaction.atomic():
        _entry, created = refresh.blacklist()
    if not created:
        raise invalid
    new_refresh = RefreshToken.for_user(user)
    return {"access_token": str(new_refresh.access_token), "refresh_token": str(new_refresh)}


def token_revoke(*, refresh_token: str) -> None:
    try:
        RefreshToken(refresh_token).blacklist()
    except TokenError as exc:
        raise NotAuthenticated(_("Refresh token is invalid or expired."), code="token_not_valid") from exc


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A model call to record: what answered, what it cost, how it ended, the day it was charged to."""

    model: str
    usage: Usage
    day: datetime.date
    outcome: CallOutcome = CallOutcome.COMPLETE


def model_calls_record(*, user_id: int, surface: str, calls: Sequence[CallRecord]) -> None:
    """Several calls behind one answer (autocontinue) in one statement."""
    ModelCall.objects.bulk_create(
        [
            ModelCall(
                user_id=user_id,
                day=call.day,
                surface=surface[:20],
                model=call.model[:200],
                prompt_tokens=call.usage.prompt_tokens,
                completion_tokens=call.usage.completion_tokens,
                estimated=call.usage.estimated,
                outcome=call.outcome,
            )
            for call in calls
        ]
    )


def model_call_record(
    *, user_id: int, surface: str, model: str, usage: Usage, day: datetime.date | None = None
) -> None:
    """Record one complete model call; `day` is the day its quota unit was charged to (default today)."""
    model_calls_record(
        user_id=user_id,
        surface=surface,
        calls=[CallRecord(model=model, usage=usage, day=day or timezone.localdate())],
    )


API_KEY_PREFIX = "byt_"
# How often `last_used_at` is written: not on every request.
API_KEY_TOUCH_SECONDS = 60


def api_key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """A new key for the user (at most API_KEYS_PER_USER active ones); the raw key is returned once."""
    name = " ".join(name.split())[:100]
    if not name:
        raise DomainError(_("name: give the key a name."), code="invalid")
    if ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() >= settings.API_KEYS_PER_USER:
        raise Conflict(
            _("You have %(n)d active API keys, the most allowed; revoke one first.")
            % {"n": settings.API_KEYS_PER_USER},
            code="api_key_limit",
        )
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(user=user, name=name, prefix=raw[:12], digest=api_key_digest(raw))
    return key, raw


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_user(*, raw: str) -> User | None:
    """The active user of an unrevoked key, noting when it was last used (once a minute at most)."""
    key = (
        ApiKey.objects.filter(digest=api_key_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .select_related("user")
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() >= API_KEY_TOUCH_SECONDS:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.user
