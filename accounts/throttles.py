"""Login throttling keyed on the account as well as the client address (docs/reliability.md A5)."""

import math
from collections.abc import Mapping

from django.http import HttpRequest
from django.utils.translation import ngettext
from rest_framework.throttling import SimpleRateThrottle

from accounts.emails import InvalidEmail, email_normalize
from core.errors import DomainError
from core.shared_state import shared_state_required


def login_name(request) -> str:
    """The account a login names, spelt as it is stored (accounts/emails.py), so every spelling of
    one mailbox shares its bucket. `request` is DRF's (the JSON or form body) or Django's (a form)."""
    data = request.data if hasattr(request, "data") else request.POST
    data = data if isinstance(data, Mapping) else {}
    name = str(data.get("username") or data.get("email") or "")
    try:
        return email_normalize(name)
    except InvalidEmail:
        return name.strip().lower()


class LoginRateThrottle(SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": f"user:{login_name(request)}"}

    def allow_request(self, request, view) -> bool:
        # Two buckets: one per account (rotating IPs do not help) and one per client address.
        if not super().allow_request(request, view):
            return False
        by_address = AddressLoginRateThrottle()
        if not by_address.allow_request(request, view):
            self.wait = by_address.wait
            return False
        return True


class AddressLoginRateThrottle(SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": f"addr:{self.get_ident(request)}"}


class RegisterRateThrottle(SimpleRateThrottle):
    scope = "register"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginThrottled(DomainError):
    status_code = 429
    code = "throttled"


def login_throttle_check(request: HttpRequest) -> None:
    """A login outside DRF (the admin's) takes from `POST /token`'s buckets, the account's and the
    client address's: LoginThrottled (429) when either is empty, SharedStateUnavailable (503) when
    the cache cannot say."""
    throttle = LoginRateThrottle()
    with shared_state_required():
        allowed = throttle.allow_request(request, None)
    if allowed:
        return
    seconds = max(1, math.ceil(throttle.wait() or 1))
    raise LoginThrottled(
        ngettext(
            "Too many sign-in attempts; try again in %(seconds)d second.",
            "Too many sign-in attempts; try again in %(seconds)d seconds.",
            seconds,
        )
        % {"seconds": seconds},
        headers={"Retry-After": str(seconds)},
    )
