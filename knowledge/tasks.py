"""Background ingestion: a task loads the document id, the service does the work, the task owns retries."""

from __future__ import annotations

import logging

from django_tasks import task

from knowledge.services import document_ingest, document_retry_or_fail

logger = logging.getLogger(__name__)


@task()
def ingest_document(document_id: str) -> str:
    try:
        return document_ingest(document_id=document_id)
    except Exception:
        # Unexpected failures (database, disk) are retried up to KNOWLEDGE_MAX_ATTEMPTS, then reported.
        logger.exception("ingestion of document %s failed", document_id)
        return document_retry_or_fail(document_id=document_id)
