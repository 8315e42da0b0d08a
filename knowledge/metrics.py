"""The ingestion figures /metrics reads at scrape time (core/metrics.py on_scrape): how many documents wait,
how long the oldest has waited since it was due, and every document by status. Two queries a scrape."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from knowledge.models import Document, DocumentStatus


def ingestion_metrics() -> Iterable[Metric]:
    by_status = dict(Document.objects.order_by().values_list("status").annotate(n=Count("id")))
    documents = GaugeMetricFamily("bytchat_documents", "Documents by ingestion status.", labels=["status"])
    for status in DocumentStatus.values:
        documents.add_metric([status], by_status.get(status, 0))
    now = timezone.now()
    # Due: a retry waiting for its backoff (next_attempt_at ahead) is not late yet.
    due = Document.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), status=DocumentStatus.QUEUED
    )
    oldest = due.aggregate(since=Min(Coalesce("next_attempt_at", "created_at")))["since"]
    yield documents
    yield GaugeMetricFamily(
        "bytchat_ingestion_queue_depth",
        "Documents queued for ingestion.",
        value=by_status.get(DocumentStatus.QUEUED, 0),
    )
    yield GaugeMetricFamily(
        "bytchat_ingestion_oldest_queued_age_seconds",
        "How long the oldest due document has waited for a worker (0 when none waits).",
        value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    )
