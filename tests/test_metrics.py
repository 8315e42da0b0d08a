"""`/metrics` in-process: who may read it, what retrieval and ingestion report, and the label rules every
metric follows (docs/observability.md; docs/reliability.md L2, L3). tests/test_e2e_metrics.py scrapes a real
server after chats on each surface."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from knowledge.models import Document, DocumentStatus
from knowledge.retrieval import search
from knowledge.services import document_upload, knowledge_base_get_or_create
from tests.helpers import metric_total

pytestmark = pytest.mark.django_db(transaction=True)


def families(response) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(response.content.decode())}


# -- who may read it (docs/reliability.md L3) ---------------------------------------------------------


def test_without_a_token_metrics_are_served_to_loopback_only(settings):
    settings.METRICS_TOKEN = ""
    local = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert local.status_code == 200 and local["Content-Type"].startswith("text/plain")
    assert "bytchat_documents" in families(local)
    remote = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")
    assert remote.status_code == 403
    assert remote.json()["code"] == "metrics_loopback_only" and "METRICS_TOKEN" in remote.json()["detail"]


def test_with_a_token_even_loopback_must_present_it(settings):
    settings.METRICS_TOKEN = "s3cret-scrape"
    client = Client(REMOTE_ADDR="127.0.0.1")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrap").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape").status_code == 401
    refused = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")
    assert refused["WWW-Authenticate"] == "Bearer" and "bytchat_" not in refused.content.decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape").status_code == 200


def test_metrics_turned_off_are_not_served_and_other_methods_are_refused(settings):
    settings.METRICS_TOKEN = ""
    assert Client().post("/metrics").json()["code"] == "method_not_allowed"
    settings.METRICS_ENABLED = False
    off = Client().get("/metrics")
    assert off.status_code == 404 and "METRICS_ENABLED" in off.json()["detail"]


# -- what they report ---------------------------------------------------------------------------------


def test_a_search_is_measured_by_mode_with_the_passages_it_returned(user):
    base = knowledge_base_get_or_create(owner=user, name="maps")
    document_upload(knowledge_base=base, upload=SimpleUploadedFile("maps.txt", b"Port Zafiro has a red lighthouse."))
    searches = metric_total("bytchat_retrieval_duration_seconds_count", mode="lexical")
    vector_searches = metric_total("bytchat_retrieval_duration_seconds_count", mode="vector")
    returned = metric_total("bytchat_retrieval_passages_sum", mode="lexical")
    passages = search(owner_id=user.pk, query="where is the lighthouse", limit=5)
    assert len(passages) == 1
    assert metric_total("bytchat_retrieval_duration_seconds_count", mode="lexical") == searches + 1
    assert metric_total("bytchat_retrieval_passages_sum", mode="lexical") == returned + 1
    # Without an embeddings provider nothing is fused.
    assert metric_total("bytchat_retrieval_duration_seconds_count", mode="vector") == vector_searches


def test_ingestion_reports_queue_depth_oldest_due_age_and_documents_by_status(user, settings):
    settings.METRICS_TOKEN = ""
    base = knowledge_base_get_or_create(owner=user, name="maps")
    ready, _ = document_upload(knowledge_base=base, upload=SimpleUploadedFile("a.txt", b"Ready text."))
    waiting, _ = document_upload(knowledge_base=base, upload=SimpleUploadedFile("b.txt", b"Waiting text."))
    retrying, _ = document_upload(knowledge_base=base, upload=SimpleUploadedFile("c.txt", b"Retried text."))
    now = timezone.now()
    # Tasks run inline in tests: put two back in the queue, one due ten minutes ago, one retried later.
    ten_minutes_ago = now - timedelta(minutes=10)
    Document.objects.filter(pk=waiting.pk).update(
        status=DocumentStatus.QUEUED, created_at=ten_minutes_ago, next_attempt_at=ten_minutes_ago
    )
    Document.objects.filter(pk=retrying.pk).update(
        status=DocumentStatus.QUEUED, created_at=now - timedelta(hours=2), next_attempt_at=now + timedelta(minutes=5)
    )
    scraped = families(Client().get("/metrics"))
    by_status = {sample.labels["status"]: sample.value for sample in scraped["bytchat_documents"]}
    assert by_status == {"queued": 2, "processing": 0, "ready": 1, "failed": 0}
    [depth] = scraped["bytchat_ingestion_queue_depth"]
    assert depth.value == 2
    # The retry waiting for its backoff is not late: the oldest due one has waited ten minutes.
    [oldest] = scraped["bytchat_ingestion_oldest_queued_age_seconds"]
    assert 600 <= oldest.value < 660
    assert ready.pk


# -- labels (docs/reliability.md L2) --------------------------------------------------------------------


def test_every_metric_declares_only_labels_from_the_allowed_set():
    declared = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    assert len(declared) >= 15
    for metric in declared:
        assert set(metric._labelnames) <= metrics.LABELS, (metric._name, metric._labelnames)
        assert not {"user", "user_id", "email", "path", "query", "chat_id", "run_id"} & set(metric._labelnames)


def test_a_model_name_is_sanitized_and_the_number_of_model_labels_is_bounded(monkeypatch):
    monkeypatch.setattr(metrics, "_models_seen", set())
    assert metrics.model_label("gpt-4o-mini") == "gpt-4o-mini"
    assert metrics.model_label('evil"} 1\nfake_metric{a="') == "evil___1_fake_metric_a__"
    assert len(metrics.model_label("m" * 500)) == 80
    monkeypatch.setattr(metrics, "MAX_MODEL_LABELS", 4)
    assert metrics.model_label("one-more") == "one-more"
    assert metrics.model_label("too-many") == "other"
    assert metrics.model_label("gpt-4o-mini") == "gpt-4o-mini"  # already seen: kept


def test_observing_many_values_at_once_counts_exactly_as_observing_each():
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    registry = CollectorRegistry()
    one_by_one = Histogram("one_seconds", "x", ["a"], buckets=(0.01, 0.1, 1.0), registry=registry)
    at_once = Histogram("many_seconds", "x", ["a"], buckets=(0.01, 0.1, 1.0), registry=registry)
    values = [0.001, 0.01, 0.0100001, 0.05, 0.1, 0.5, 1.0, 3.0, 7.5, 0.0]
    for value in values:
        one_by_one.labels("x").observe(value)
    metrics.observe_many(at_once.labels("x"), values)
    metrics.observe_many(at_once.labels("x"), [])

    def samples(prefix: str) -> dict:
        return {
            (sample.name.removeprefix(prefix), tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples
            if sample.name.startswith(prefix) and not sample.name.endswith("_created")
        }

    assert samples("one_seconds")[("_count", (("a", "x"),))] == len(values)
    assert samples("one_seconds") == samples("many_seconds")
