"""Login throttling keyed on the account as well as the client address (RELIABILITY A5)."""

from collections.abc import Mapping

from rest_framework.throttling import SimpleRateThrottle


def login_name(request) -> str:
    """The account a login names, folded the way the database compares emails (UPPER, then lower)."""
    data = request.data if isinstance(request.data, Mapping) else {}
    return str(data.get("username") or data.get("email") or "").strip().upper().lower()


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
