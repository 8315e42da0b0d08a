"""Background work of chats: message vectors for search (chats/search/embeddings.py)."""

from __future__ import annotations

import logging

from django.conf import settings
from django_tasks import task

from bots.llm.errors import ProviderError
from chats.search.embeddings import message_embeddings_schedule, message_embeddings_store

logger = logging.getLogger(__name__)

BATCHES_PER_TASK = 20  # then the task queues itself again, so one backlog never holds a worker for long


@task()
def embed_messages() -> int:
    """Vectors for the entries still without one; how many were stored. A provider failure leaves them
    pending: the next run's end schedules the task again."""
    stored = 0
    batch = settings.EMBEDDINGS_BATCH
    for _ in range(BATCHES_PER_TASK):
        try:
            read = message_embeddings_store(limit=batch)
        except ProviderError:
            logger.warning("message embeddings: the provider failed; %d stored before it", stored)
            return stored
        stored += read
        if read < batch:
            return stored
    message_embeddings_schedule()
    return stored
