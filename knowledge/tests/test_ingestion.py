"""Background ingestion: idempotent, retried after a dead worker, never stuck in `processing`."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from knowledge.models import Chunk, Document, DocumentStatus
from knowledge.services import (
    document_ingest,
    document_retry_or_fail,
    document_upload,
    documents_reconcile,
    knowledge_base_get_or_create,
)

pytestmark = pytest.mark.django_db(transaction=True)
TEXT = b"Port Zafiro lies behind the northern cliffs. Its lighthouse is painted red."


@pytest.fixture
def document(user):
    base = knowledge_base_get_or_create(owner=user, name="maps")
    document, created = document_upload(knowledge_base=base, upload=SimpleUploadedFile("maps.txt", TEXT))
    assert created
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY  # tasks run inline in tests
    return document


def as_left_by_a_dead_worker(document, minutes_ago: int = 60, attempts: int = 1) -> None:
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.PROCESSING,
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        attempts=attempts,
        progress=30,
    )


def test_ingesting_twice_keeps_one_set_of_chunks(document):
    before = list(Chunk.objects.filter(document=document).values_list("position", "text"))
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.QUEUED)
    assert document_ingest(document_id=str(document.pk)) == "ready"
    assert list(Chunk.objects.filter(document=document).values_list("position", "text")) == before


def test_a_document_a_dead_worker_left_processing_is_ingested_again(document):
    as_left_by_a_dead_worker(document)
    assert documents_reconcile() == 1
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY
    assert document.attempts == 2
    assert Chunk.objects.filter(document=document).count() >= 1


def test_a_recent_processing_document_is_left_to_its_worker(document):
    as_left_by_a_dead_worker(document, minutes_ago=0)
    assert documents_reconcile() == 0
    assert document_ingest(document_id=str(document.pk)) == "skipped"
    assert Document.objects.get(pk=document.pk).status == DocumentStatus.PROCESSING


def test_after_the_last_attempt_a_failing_document_is_failed_with_a_reason(document, settings):
    as_left_by_a_dead_worker(document, attempts=settings.KNOWLEDGE_MAX_ATTEMPTS)
    assert documents_reconcile() == 1
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert "again" in document.error


def test_unexpected_failure_is_retried_while_attempts_remain(document):
    as_left_by_a_dead_worker(document, attempts=1)
    assert document_retry_or_fail(document_id=str(document.pk)) == "retrying"
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY


def test_a_missing_file_fails_the_document_readably(document):
    document.file.storage.delete(document.file.name)
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.QUEUED)
    assert document_ingest(document_id=str(document.pk)) == "failed"
    assert "missing" in Document.objects.get(pk=document.pk).error


def test_a_deleted_document_is_skipped(document):
    document_id = str(document.pk)
    document.delete()
    assert document_ingest(document_id=document_id) == "skipped"
    assert document_retry_or_fail(document_id=document_id) == "deleted"


def test_an_embeddings_outage_still_indexes_the_document_for_full_text_search(user, upstream, settings):
    settings.EMBEDDINGS_PROVIDER = "custom"
    settings.EMBEDDINGS_MODEL = "fake-embed-fail"
    base = knowledge_base_get_or_create(owner=user, name="outage")
    document, _created = document_upload(knowledge_base=base, upload=SimpleUploadedFile("a.txt", TEXT))
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY
    chunks = Chunk.objects.filter(document=document)
    assert chunks.exists() and not chunks.exclude(embedding=None).exists()
    from knowledge.retrieval import search

    assert [p.filename for p in search(owner_id=user.pk, query="lighthouse")] == ["a.txt"]


def test_uploading_a_failed_file_again_retries_it(user, settings):
    base = knowledge_base_get_or_create(owner=user, name="retry")
    document, _created = document_upload(knowledge_base=base, upload=SimpleUploadedFile("maps.txt", TEXT))
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.FAILED, error="boom")
    again, created = document_upload(knowledge_base=base, upload=SimpleUploadedFile("maps.txt", TEXT))
    assert again.pk == document.pk and created
    again.refresh_from_db()
    assert again.status == DocumentStatus.READY and again.error == ""
