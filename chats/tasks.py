"""Background work of chats: message vectors for search (chats/search/embeddings.py)."""

from __future__ import annotations

import logging

from django.conf import settings
from django_tasks import task

from chats.search.embeddings import message_embeddings_drain, message_embeddings_schedule

logger = logging.getLogger(__name__)

BATCHES_PER_TASK = 20  # then the task queues itself again, so one backlog never holds a worker for long


@task()
def embed_messages() -> int:
    """Vectors for the entries still without one; how many were stored. A provider failure leaves them
    pending: the next run's end schedules the task again."""
    stored, failure = message_embeddings_drain(max_batches=BATCHES_PER_TASK)
    if failure is not None:
        logger.warning("message embeddings: the provider failed; %d stored before it", stored)
    elif stored == BATCHES_PER_TASK * settings.EMBEDDINGS_BATCH:  # every batch was full: more may wait
        message_embeddings_schedule()
    return stored
