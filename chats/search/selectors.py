"""Reads: the owner's messages that best match a query, best first (docs/search.md).

Words are ranked by each database's full-text engine; with an embeddings provider, the messages nearest in
meaning (at least CHAT_SEARCH_MIN_SIMILARITY) are ranked too, and both rankings fused by reciprocal rank, as
knowledge bases are searched (knowledge/retrieval.py). The query's vector is computed while the words are
ranked; if the provider fails, the words' ranking alone is served.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from accounts.models import User
from chats.models import Message, MessageSearchEntry
from chats.search import postgres, sqlite
from chats.search.filters import entry_condition
from chats.search.snippets import snippet
from chats.search.types import Ranking, SearchFilters, SearchHit
from core import metrics
from knowledge.retrieval import fuse, query_terms
from knowledge.vector_search import dense_ranked, query_embedding_start, query_vector

FUSION_DEPTH = 100  # each ranking's candidates for the fusion


def message_search(*, user: User, query: str, filters: SearchFilters, limit: int, offset: int = 0) -> list[SearchHit]:
    """Only `user`'s own chats' messages are ever read: the owner is part of the index's lookup itself."""
    terms = query_terms(query)
    if not terms:
        return []
    started = time.perf_counter()
    embedding = query_embedding_start(query)
    condition, params = entry_condition(user.pk, filters)
    depth = offset + limit
    candidates = max(depth, FUSION_DEPTH) if embedding is not None else depth
    if connection.vendor == "postgresql":
        ranking, message_ids = postgres.ranked(
            owner_id=user.pk, query=" ".join(terms), condition=condition, params=params, limit=candidates
        )
    else:
        ranking, message_ids = sqlite.ranked(
            owner_id=user.pk, terms=terms, condition=condition, params=params, limit=candidates
        )
    dense = _nearest(query_vector(embedding), condition, params, candidates)
    if dense:
        ranking = fuse([ranking, dense], depth)
        message_ids.update(_message_ids([entry_id for entry_id, _score in ranking if entry_id not in message_ids]))
    page = [(uuid.UUID(str(message_ids[entry_id])), score) for entry_id, score in ranking[offset:depth]]
    messages = (
        Message.objects.select_related("chat")
        .only(
            "id",
            "content",
            "role",
            "created_at",
            "chat__id",
            "chat__title",
            "chat__bot_id",
            "chat__surface",
            "chat__visitor_id",
        )
        .in_bulk([message_id for message_id, _score in page])
    )
    hits = [
        SearchHit(
            message_id=message.pk,
            chat_id=message.chat.pk,
            chat_title=message.chat.title,
            bot_id=message.chat.bot_id,
            surface=message.chat.surface,
            role=message.role,
            visitor=message.chat.visitor_id is not None,
            snippet=snippet(message.content, terms),
            created_at=message.created_at,
            score=score,
        )
        for message_id, score in page
        if (message := messages.get(message_id)) is not None
    ]
    metrics.chat_search_duration.observe(time.perf_counter() - started)
    return hits


def _nearest(vector: np.ndarray | None, condition: str, params: list[Any], limit: int) -> Ranking:
    """The entries nearest in meaning, similar enough to count as a match."""
    if vector is None:
        return []
    ranking = dense_ranked(
        vector, table="chats_messagesearchentry", alias="s", where=condition, params=params, limit=limit
    )
    return [
        (entry_id, similarity) for entry_id, similarity in ranking if similarity >= settings.CHAT_SEARCH_MIN_SIMILARITY
    ]


def _message_ids(entry_ids: list[int]) -> dict[int, uuid.UUID]:
    if not entry_ids:
        return {}
    return dict(MessageSearchEntry.objects.filter(pk__in=entry_ids).values_list("id", "message_id"))
