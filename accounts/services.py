"""Writes on accounts: registration, token issue/revocation, records of model calls."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

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

from accounts.models import CallOutcome, ModelCall, User
from bots.llm.types import Usage
from config.errors import DomainError, NotAuthenticated


def user_create(*, email: str, password: str, username: str | None = None) -> User:
    email = User.objects.normalize_email(email).strip().lower()
    username = (username or email).strip()
    if User.objects.filter(email__iexact=email).exists():
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
