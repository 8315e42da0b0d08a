"""`GET /healthz` (the process answers) and `GET /readyz` (it can serve: database, Redis, worker), for nginx and
orchestrators: public, never throttled, never cached (docs/reliability.md L1)."""

from __future__ import annotations

import logging

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.health import readiness

logger = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}

CHECK = inline_serializer(
    "ReadinessCheck",
    {
        "ok": serializers.BooleanField(),
        "ms": serializers.FloatField(required=False, help_text="How long the check took."),
        "age_seconds": serializers.FloatField(
            required=False, allow_null=True, help_text="The worker: the age of the freshest heartbeat (null: none)."
        ),
        "error": serializers.ChoiceField(
            ["timeout", "unavailable", "none", "stale"], required=False, help_text="Why the check failed."
        ),
    },
)
READINESS = inline_serializer(
    "Readiness",
    {
        "status": serializers.ChoiceField(["ready", "not_ready"]),
        "checks": serializers.DictField(
            child=CHECK, help_text="`database`; `redis` when REDIS_URL is set; `worker` with the database task backend."
        ),
        "detail": serializers.CharField(required=False, help_text="What is not ready, in the request's language."),
        "code": serializers.ChoiceField(["not_ready"], required=False),
    },
)


class PublicProbe(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    error_statuses = {405}


class HealthView(PublicProbe):
    @extend_schema(
        operation_id="healthz",
        tags=["health"],
        summary="The process is up (touches neither the database nor Redis).",
        responses=inline_serializer("Health", {"status": serializers.ChoiceField(["ok"])}),
        auth=[],
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"}, headers=NO_STORE)


class ReadyView(PublicProbe):
    @extend_schema(
        operation_id="readyz",
        tags=["health"],
        summary="The process can serve: the database, Redis (when configured) and a background worker answer.",
        description=(
            "503 names what failed in `detail`; each check reports `ok` and `ms` (or the worker's heartbeat "
            "`age_seconds`). Every check is bounded by READYZ_TIMEOUT_SECONDS."
        ),
        responses={200: READINESS, 503: READINESS},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        result = readiness()
        if result.ready:
            return Response({"status": "ready", "checks": result.checks}, headers=NO_STORE)
        failed = [name for name, check in result.checks.items() if not check["ok"]]
        logger.warning("not ready: %s", ", ".join(failed), extra={"failed_checks": failed})
        detail = " ".join(result.failures)
        body = {"status": "not_ready", "detail": detail, "code": "not_ready", "checks": result.checks}
        response = Response(body, status=503, headers=NO_STORE)
        # Said once, above, with what failed: not again as django.request's ERROR for every probe.
        response._has_been_logged = True
        return response
