"""Vectors for message search: stored in the background, a batch at a time (docs/search.md, semantic search).

Entries are made by the database's triggers with no vector (migration 0009). When an embeddings provider is
configured, the end of every run schedules one task (at most one per CHAT_SEARCH_EMBEDDING_DELAY_SECONDS,
however many runs end meanwhile) that embeds the entries still without a vector, oldest first, and queues
itself again while some remain. The task runs a little after the delay has passed, so a message stored while
the delay held back a second schedule is already there when the task reads. `manage.py embed_messages` does
the same for messages stored before a provider was configured.

The vector is written only if the entry still exists: an entry whose message was edited or deleted meanwhile
is gone (a new entry with the new text waits for its own vector).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from bots.llm.embeddings import embeddings_enabled
from bots.llm.errors import ProviderError
from chats.models import MessageSearchEntry
from knowledge.vectors import embed_for_storage, pgvector_store

logger = logging.getLogger(__name__)

SCHEDULED_KEY = "chats:message-embeddings-scheduled"
# The provider is sent at most this much of a message: an answer longer than a model's input limit would
# otherwise fail its whole batch.
EMBEDDED_CHARS = 8000


def message_embeddings_schedule() -> None:
    """Queue the embedding task unless one is already due. Never raises: a turn must not fail for it."""
    if not embeddings_enabled():
        return
    delay = settings.CHAT_SEARCH_EMBEDDING_DELAY_SECONDS
    try:
        if not cache.add(SCHEDULED_KEY, 1, timeout=delay):
            return
        from chats.tasks import embed_messages

        task = embed_messages
        if delay and task.get_backend().supports_defer:
            task = task.using(run_after=timezone.now() + timedelta(seconds=delay + 1))
        task.enqueue()
    except Exception:
        logger.warning("could not schedule message embeddings; the next run's end tries again", exc_info=True)


def message_embeddings_drain(
    *, max_batches: int | None = None, progress: Callable[[int], None] | None = None
) -> tuple[int, ProviderError | None]:
    """Embeds the entries without a vector, EMBEDDINGS_BATCH at a time, until none is left or `max_batches`
    were read: how many were stored, and the provider's failure if one stopped it (what was stored stays)."""
    stored = batches = 0
    batch = settings.EMBEDDINGS_BATCH
    while max_batches is None or batches < max_batches:
        try:
            read = message_embeddings_store(limit=batch)
        except ProviderError as exc:
            return stored, exc
        stored += read
        batches += 1
        if read and progress is not None:
            progress(stored)
        if read < batch:
            break
    return stored, None


def message_embeddings_pending() -> int:
    return MessageSearchEntry.objects.filter(embedding__isnull=True).count()


def message_embeddings_store(*, limit: int) -> int:
    """Embeds up to `limit` of the oldest entries without a vector; how many were read. Raises ProviderError
    when the provider fails (the entries stay pending)."""
    entries = list(
        MessageSearchEntry.objects.filter(embedding__isnull=True)
        .order_by("id")
        .values_list("id", "message__content")[:limit]
    )
    if not entries:
        return 0
    blobs = embed_for_storage([content[:EMBEDDED_CHARS] for _id, content in entries])
    if blobs is None:
        return 0
    rows = [(entry_id, blob) for (entry_id, _content), blob in zip(entries, blobs, strict=True)]
    with transaction.atomic():
        # Entries are never changed in place by the triggers, only made and dropped: a vector reaches
        # only the entry (and so the text) it was computed for.
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE chats_messagesearchentry SET embedding = %s WHERE id = %s",
                [(blob, entry_id) for entry_id, blob in rows],
            )
        pgvector_store(connection, "chats_messagesearchentry", rows)
    return len(entries)
