"""Login throttling keyed on the account as well as the client address (RELIABILITY A5)."""

from rest_framework.throttling import SimpleRateThrottle


class LoginRateThrottle(SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request, view) -> str:
        username = str(request.data.get("username") or request.data.get("email") or "").strip().lower()
        return self.cache_format % {"scope": self.scope, "ident": f"user:{username}"}

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
