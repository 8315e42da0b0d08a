"""The admin site, its login throttled (what several apps' admin pages share is in core/admin.py)."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from accounts.throttles import login_throttle_check
from core.errors import DomainError


class ThrottledLoginForm(AdminAuthenticationForm):
    """Takes from `POST /token`'s login buckets before the password is checked; when they are empty
    (or the cache is down) the password is not checked at all."""

    def clean(self) -> dict[str, Any]:
        try:
            login_throttle_check(self.request)
        except DomainError as exc:
            self.request.login_refused = exc
            raise ValidationError(exc.message, code=exc.code) from exc
        return super().clean()


class AdminSite(admin.AdminSite):
    login_form = ThrottledLoginForm

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().login(request, extra_context)
        refused: DomainError | None = getattr(request, "login_refused", None)
        if refused is not None:  # the login page again, with the reason and its status (429 or 503)
            response.status_code = refused.status_code
            for name, value in refused.headers.items():
                response[name] = value
        return response
