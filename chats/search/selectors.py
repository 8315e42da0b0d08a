"""Reads: the owner's messages that best match a query, best first (docs/search.md).

Words are ranked by each database's full-text engine; with an embeddings provider, the messages nearest in
meaning (at least CHAT_SEARCH_MIN_SIMILARITY) are ranked too, and both rankings fused by reciprocal rank, as
knowledge bases are searched (knowledge/retrieval.py). The query's vector is computed while the words are
ranked; if the provider fails, the words' ranking alone is served.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from accounts.models import User
from chats.models import MessageSearchEntry
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
    depth = offset + limit
    candidates = max(depth, FUSION_DEPTH) if embedding is not None else depth
    if connection.vendor == "postgresql":
        condition, params = entry_condition(user.pk, filters, alias="m")
        ranking = postgres.ranked(
            owner_id=user.pk, query=" ".join(terms), condition=condition, params=params, limit=candidates
        )
    else:
        condition, params = entry_condition(user.pk, filters)
        ranking = sqlite.ranked(owner_id=user.pk, terms=terms, condition=condition, params=params, limit=candidates)
    vector = query_vector(embedding)
    if vector is not None and (dense := _nearest(vector, *entry_condition(user.pk, filters), limit=candidates)):
        ranking = fuse([ranking, dense], depth)
    page = ranking[offset:depth]
    entries = (
        MessageSearchEntry.objects.select_related("message", "chat")
        .only(
            "id",
            "message__id",
            "message__content",
            "message__role",
            "message__created_at",
            "chat__id",
            "chat__title",
            "chat__bot_id",
            "chat__surface",
            "chat__visitor_id",
        )
        .in_bulk([entry_id for entry_id, _score in page])
    )
    hits = [
        SearchHit(
            message_id=entry.message.pk,
            chat_id=entry.chat.pk,
            chat_title=entry.chat.title,
            bot_id=entry.chat.bot_id,
            surface=entry.chat.surface,
            role=entry.message.role,
            visitor=entry.chat.visitor_id is not None,
            snippet=snippet(entry.message.content, terms),
            created_at=entry.message.created_at,
            score=score,
        )
        for entry_id, score in page
        if (entry := entries.get(entry_id)) is not None
    ]
    metrics.chat_search_duration.observe(time.perf_counter() - started)
    return hits


def _nearest(vector: np.ndarray, condition: str, params: list[Any], *, limit: int) -> Ranking:
    """The entries nearest in meaning, similar enough to count as a match."""
    ranking = dense_ranked(
        vector, table="chats_messagesearchentry", alias="s", where=condition, params=params, limit=limit
    )
    minimum = settings.CHAT_SEARCH_MIN_SIMILARITY
    return [(entry_id, similarity) for entry_id, similarity in ranking if similarity >= minimum]
