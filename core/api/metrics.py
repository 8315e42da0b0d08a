"""`GET /metrics`: the Prometheus text format, for a scraper holding METRICS_TOKEN (or, with none set,
only for requests from the loopback address). docs/observability.md; docs/reliability.md L3."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from core import metrics


def _loopback(request: HttpRequest) -> bool:
    # REMOTE_ADDR is the client after the proxies NUM_PROXIES trusts (config/server.py), not nginx's address.
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _refusal(request: HttpRequest) -> JsonResponse | None:
    token = settings.METRICS_TOKEN
    if not token:
        if _loopback(request):
            return None
        detail = _("Metrics are served only to this machine unless METRICS_TOKEN is set.")
        return JsonResponse({"detail": detail, "code": "metrics_loopback_only"}, status=403)
    scheme, _space, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    detail = _("Metrics need the bearer token set as METRICS_TOKEN.")
    return JsonResponse(
        {"detail": detail, "code": "not_authenticated"}, status=401, headers={"WWW-Authenticate": "Bearer"}
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        detail = _("Method %(method)s is not allowed here.") % {"method": request.method}
        return JsonResponse(
            {"detail": detail, "code": "method_not_allowed"}, status=405, headers={"Allow": "GET, HEAD"}
        )
    if not metrics.metrics_enabled():
        return JsonResponse({"detail": _("Metrics are turned off (METRICS_ENABLED)."), "code": "not_found"}, status=404)
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
