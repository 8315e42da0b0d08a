"""Hybrid retrieval, always filtered by owner: full-text BM25, plus vectors fused by reciprocal rank.

Lexical ranking is each database's own, by statistics of the searched data alone: on PostgreSQL,
BM25 from per-base statistics reading only the chunks that can rank (knowledge/bm25.py,
knowledge/postgres_bm25.py); on SQLite, FTS5's bm25() over the owner's own index
(knowledge/sqlite_fts.py).
With an embeddings provider, the query's vector is computed on another thread while the lexical
search runs, then searched by pgvector's HNSW index where the database has one, else by exact
cosine over the scope's vectors in bounded batches (knowledge/vector_search.py), and fused with the
lexical ranking by reciprocal rank fusion. If the provider fails at query time, lexical results alone are served.
Every passage carries its citation.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from core import metrics, tracing
from knowledge import postgres_bm25, sqlite_fts
from knowledge.models import Chunk, KnowledgeBase
from knowledge.vector_search import dense_ranked, query_embedding_start, query_vector

MAX_QUERY_TERMS = 64
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Passage:
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    page: int | None
    position: int
    text: str
    score: float

    def citation(self) -> dict[str, Any]:
        return {
            "document_id": str(self.document_id),
            "filename": self.filename,
            "page": self.page,
            "position": self.position,
            "text": self.text,
        }


def query_terms(query: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if len(seen) >= MAX_QUERY_TERMS:
            break
        seen.setdefault(word, None)
    return list(seen)


def _scope_sql(owner_id: int, base_ids: list[uuid.UUID]) -> tuple[str, list[Any]]:
    placeholders = ", ".join(["%s"] * len(base_ids))
    return f"c.owner_id = %s AND c.knowledge_base_id IN ({placeholders})", [
        owner_id,
        *(base_id.hex if connection.vendor == "sqlite" else base_id for base_id in base_ids),
    ]


def _bases_in_scope(owner_id: int, knowledge_base_ids: Sequence[uuid.UUID] | None) -> list[uuid.UUID]:
    """The owner's bases, or those of the given ones the owner has: an id from elsewhere never widens it."""
    bases = KnowledgeBase.objects.filter(owner_id=owner_id)
    if knowledge_base_ids is not None:
        bases = bases.filter(pk__in=list(knowledge_base_ids))
    return list(bases.values_list("pk", flat=True))


def _lexical_ranked(
    owner_id: int, terms: list[str], base_ids: list[uuid.UUID], scope: tuple[str, list[Any]], limit: int
) -> list[tuple[int, float]]:
    if connection.vendor == "postgresql":
        return postgres_bm25.ranked(owner_id=owner_id, query=" ".join(terms), base_ids=base_ids, limit=limit)
    return sqlite_fts.ranked(owner_id=owner_id, terms=terms, scope=scope[0], params=scope[1], limit=limit)


def _dense_ranked(vector: np.ndarray | None, scope: tuple[str, list[Any]], limit: int) -> list[tuple[int, float]]:
    if vector is None:
        return []
    where, params = scope
    return dense_ranked(vector, table="knowledge_chunk", alias="c", where=where, params=params, limit=limit)


def fuse(rankings: list[list[tuple[int, float]]], limit: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to the items it ranks."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (item, _score) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (settings.KNOWLEDGE_RRF_K + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]


def search(
    *,
    owner_id: int,
    query: str,
    knowledge_base_ids: Sequence[uuid.UUID] | None = None,
    limit: int = 10,
) -> list[Passage]:
    """The owner's passages that best match `query`, best first (all bases, or only those given)."""
    terms = query_terms(query)
    if not terms or (knowledge_base_ids is not None and not knowledge_base_ids):
        return []
    base_ids = _bases_in_scope(owner_id, knowledge_base_ids)
    if not base_ids:
        return []
    # The GenAI retrieval span: its mode and size, never the query.
    with tracing.span(
        "retrieval", attributes={"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.top_k": limit}
    ) as span:
        embedding = query_embedding_start(query)
        # Fused, each ranking contributes enough candidates for the fusion; alone, the lexical
        # ranking is asked for no more than is wanted (a higher bar prunes more, knowledge/bm25.py).
        depth = max(limit, 100) if embedding is not None else limit
        clock = time.perf_counter
        started = clock()
        scope = _scope_sql(owner_id, base_ids)
        lexical = _lexical_ranked(owner_id, terms, base_ids, scope, depth)
        lexical_done = clock()
        metrics.retrieval_duration.labels("lexical").observe(lexical_done - started)
        dense = _dense_ranked(query_vector(embedding), scope, depth)
        if dense:
            metrics.retrieval_duration.labels("vector").observe(clock() - lexical_done)
        ranked = fuse([lexical, dense], limit) if dense else lexical[:limit]
        passages = _passages(ranked) if ranked else []
        mode = "fused" if dense else "lexical"
        if dense:
            metrics.retrieval_duration.labels("fused").observe(clock() - started)
        metrics.retrieval_passages.labels(mode).observe(len(passages))
        span.set_attributes({"bytchat.retrieval.mode": mode, "bytchat.retrieval.passages": len(passages)})
        return passages


def _passages(ranked: list[tuple[int, float]]) -> list[Passage]:
    chunks = (
        Chunk.objects.select_related("document")
        .only("id", "position", "page", "text", "document__id", "document__filename")
        .in_bulk([chunk_id for chunk_id, _score in ranked])
    )
    return [
        Passage(
            chunk_id=chunk_id,
            document_id=chunks[chunk_id].document.id,
            filename=chunks[chunk_id].document.filename,
            page=chunks[chunk_id].page,
            position=chunks[chunk_id].position,
            text=chunks[chunk_id].text,
            score=score,
        )
        for chunk_id, score in ranked
        if chunk_id in chunks
    ]
