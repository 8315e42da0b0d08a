"""Background ingestion: idempotent, retried with backoff after a dead worker or a lost enqueue, never stuck."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from knowledge.models import Chunk, Document, DocumentStatus
from knowledge.services import (
    document_ingest,
    document_retry_or_fail,
    document_upload,
    documents_reconcile,
    knowledge_base_get_or_create,
    retry_delay,
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
        heartbeat_at=timezone.now() - timedelta(minutes=minutes_ago),
        attempts=attempts,
        progress=30,
    )


def past_the_backoff(document) -> timedelta:
    """How far from now reconcile_documents must run to find the document's retry due and its task missing."""
    document.refresh_from_db()
    return document.next_attempt_at - timezone.now() + timedelta(seconds=1)


@pytest.fixture
def database_tasks(settings):
    """The production task backend: task rows in the database, run by `db_worker`."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)


def tasks_for(document) -> list[DBTaskResult]:
    return [
        task
        for task in DBTaskResult.objects.filter(task_path="knowledge.tasks.ingest_document")
        if task.args_kwargs["args"] == [str(document.pk)]
    ]


def test_ingesting_twice_keeps_one_set_of_chunks(document):
    before = list(Chunk.objects.filter(document=document).values_list("position", "text"))
    Document.objects.filter(pk=document.pk).update(status=DocumentStatus.QUEUED)
    assert document_ingest(document_id=str(document.pk)) == "ready"
    assert list(Chunk.objects.filter(document=document).values_list("position", "text")) == before


def test_a_document_a_dead_worker_left_processing_is_ingested_again_after_a_backoff(document, settings):
    settings.KNOWLEDGE_STALE_SECONDS = 60
    as_left_by_a_dead_worker(document)

    assert documents_reconcile() == 1
    document.refresh_from_db()
    assert document.status == DocumentStatus.QUEUED
    assert document.next_attempt_at >= timezone.now() + timedelta(seconds=settings.KNOWLEDGE_RETRY_BASE_SECONDS - 1)
    assert documents_reconcile() == 0  # not due yet

    later = timezone.now() + past_the_backoff(document) + timedelta(seconds=settings.KNOWLEDGE_STALE_SECONDS)
    assert documents_reconcile(now=later) == 1
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY
    assert document.attempts == 2
    assert Chunk.objects.filter(document=document).count() == 1


def test_a_recent_processing_document_is_left_to_its_worker(document):
    as_left_by_a_dead_worker(document, minutes_ago=0)
    assert documents_reconcile() == 0
    assert document_ingest(document_id=str(document.pk)) == "skipped"
    assert Document.objects.get(pk=document.pk).status == DocumentStatus.PROCESSING


def test_a_long_ingestion_whose_heartbeat_is_fresh_is_not_queued_again(document):
    as_left_by_a_dead_worker(document, minutes_ago=120)
    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now())

    assert documents_reconcile() == 0
    assert document_ingest(document_id=str(document.pk)) == "skipped"
    document.refresh_from_db()
    assert (document.status, document.attempts) == (DocumentStatus.PROCESSING, 1)


def test_after_the_last_attempt_a_failing_document_is_failed_with_a_reason(document, settings):
    as_left_by_a_dead_worker(document, attempts=settings.KNOWLEDGE_MAX_ATTEMPTS)
    assert documents_reconcile() == 1
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert document.error == "Ingestion failed repeatedly; upload the file again."


def test_retries_back_off_exponentially_up_to_the_cap(settings):
    settings.KNOWLEDGE_RETRY_BASE_SECONDS = 30
    settings.KNOWLEDGE_RETRY_MAX_SECONDS = 100
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


def test_unexpected_failure_is_retried_later_each_time(document):
    as_left_by_a_dead_worker(document, attempts=1)
    before = timezone.now()
    assert document_retry_or_fail(document_id=str(document.pk)) == "retrying"
    document.refresh_from_db()
    assert document.status == DocumentStatus.QUEUED
    first_wait = document.next_attempt_at - before

    as_left_by_a_dead_worker(document, attempts=2)
    before = timezone.now()
    document_retry_or_fail(document_id=str(document.pk))
    document.refresh_from_db()
    assert document.next_attempt_at - before > first_wait * 1.5


def test_a_queued_document_whose_enqueue_was_lost_is_ingested_by_reconcile(user, settings):
    base = knowledge_base_get_or_create(owner=user, name="lost")
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}  # enqueues, never runs
    document, _created = document_upload(knowledge_base=base, upload=SimpleUploadedFile("maps.txt", TEXT))
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    document.refresh_from_db()
    assert document.status == DocumentStatus.QUEUED

    assert documents_reconcile() == 0  # just queued: its task may yet run
    later = timezone.now() + timedelta(seconds=settings.KNOWLEDGE_STALE_SECONDS + 1)
    assert documents_reconcile(now=later) == 1
    document.refresh_from_db()
    assert (document.status, document.attempts) == (DocumentStatus.READY, 1)


def test_with_the_database_worker_a_lost_task_row_is_queued_again_and_run(user, settings, database_tasks):
    base = knowledge_base_get_or_create(owner=user, name="lost")
    document, _created = document_upload(knowledge_base=base, upload=SimpleUploadedFile("maps.txt", TEXT))
    [task] = tasks_for(document)
    later = timezone.now() + timedelta(seconds=settings.KNOWLEDGE_STALE_SECONDS + 1)
    assert documents_reconcile(now=later) == 0  # its task is pending: no second task
    assert len(tasks_for(document)) == 1

    task.delete()  # the row the worker would have picked up is gone
    assert documents_reconcile(now=later) == 1
    assert [t.status for t in tasks_for(document)] == ["READY"]
    run_worker()
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY
    assert Chunk.objects.filter(document=document).count() == 1


def test_with_the_database_worker_a_retry_is_scheduled_after_its_backoff(user, settings, database_tasks):
    base = knowledge_base_get_or_create(owner=user, name="retry")
    document, _created = document_upload(knowledge_base=base, upload=SimpleUploadedFile("maps.txt", TEXT))
    DBTaskResult.objects.all().delete()
    as_left_by_a_dead_worker(document, attempts=1)

    assert documents_reconcile() == 1
    document.refresh_from_db()
    [task] = tasks_for(document)
    assert task.run_after == document.next_attempt_at
    assert task.run_after >= timezone.now() + timedelta(seconds=settings.KNOWLEDGE_RETRY_BASE_SECONDS - 1)
    run_worker()  # the retry is not due: the worker leaves it
    document.refresh_from_db()
    assert document.status == DocumentStatus.QUEUED
    assert [t.status for t in tasks_for(document)] == ["READY"]


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
