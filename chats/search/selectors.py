"""Reads: the owner's messages that best match a query, best first (docs/search.md)."""

from __future__ import annotations

import time
import uuid

from django.db import connection

from accounts.models import User
from chats.models import Message
from chats.search import postgres, sqlite
from chats.search.filters import entry_condition
from chats.search.snippets import snippet
from chats.search.types import SearchFilters, SearchHit
from core import metrics
from knowledge.retrieval import query_terms


def message_search(*, user: User, query: str, filters: SearchFilters, limit: int, offset: int = 0) -> list[SearchHit]:
    """Only `user`'s own chats' messages are ever read: the owner is part of the index's lookup itself."""
    terms = query_terms(query)
    if not terms:
        return []
    started = time.perf_counter()
    condition, params = entry_condition(user.pk, filters)
    depth = offset + limit
    if connection.vendor == "postgresql":
        ranking, message_ids = postgres.ranked(
            owner_id=user.pk, query=" ".join(terms), condition=condition, params=params, limit=depth
        )
    else:
        ranking, message_ids = sqlite.ranked(
            owner_id=user.pk, terms=terms, condition=condition, params=params, limit=depth
        )
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
