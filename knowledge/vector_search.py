"""Nearest vectors to a query, for every searched table (knowledge chunks, chat messages).

The query's embedding is an HTTP call to the provider: it runs on another thread while the lexical search
runs. Rows are then compared by pgvector's HNSW index where the table has a vector column of the query's
size, else by exact cosine over the scope's stored vectors, a batch at a time (knowledge/vectors.py).
"""

from __future__ import annotations

import contextvars
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from django.db import connection, transaction

from bots.llm.embeddings import embeddings_enabled
from bots.llm.errors import ProviderError
from knowledge.vectors import embed_query, nearest, pgvector_dimensions, vector_literal

logger = logging.getLogger(__name__)
_embedding_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="query-embedding")

VECTOR_BATCH = 2000  # rows per fetch when vectors are compared in Python
HNSW_MAX_EF_SEARCH = 1000  # pgvector's upper limit

Ranking = list[tuple[int, float]]


def query_embedding_start(query: str) -> Future | None:
    """The query's vector, computed on another thread; None when no embeddings provider is configured."""
    if not embeddings_enabled():
        return None
    return _embedding_pool.submit(contextvars.copy_context().run, embed_query, query)


def query_vector(embedding: Future | None) -> np.ndarray | None:
    """The vector, or None when there is none or the provider failed (the caller serves lexical results)."""
    if embedding is None:
        return None
    try:
        return embedding.result()
    except ProviderError:
        logger.warning("query embedding failed; serving lexical results only")
        return None


def dense_ranked(vector: np.ndarray, *, table: str, alias: str, where: str, params: list[Any], limit: int) -> Ranking:
    """(row id, cosine similarity) of the `limit` rows of `table` within `where` nearest to `vector`, best
    first. `where` refers to the table as `alias`; only constants and that condition are interpolated."""
    if pgvector_dimensions(connection, table) == vector.shape[0]:
        return _pgvector_ranked(vector, table=table, alias=alias, where=where, params=params, limit=limit)
    sql = f"SELECT {alias}.id, {alias}.embedding FROM {table} {alias} WHERE {where} AND {alias}.embedding IS NOT NULL"  # noqa: S608
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        return nearest(vector, iter(lambda: cursor.fetchmany(VECTOR_BATCH), []), limit)


def _pgvector_ranked(
    vector: np.ndarray, *, table: str, alias: str, where: str, params: list[Any], limit: int
) -> Ranking:
    """HNSW search in pgvector; iterative scans keep filling the result when the scope's filter drops rows."""
    literal = vector_literal(vector)
    sql = (
        f"SELECT {alias}.id, 1 - ({alias}.embedding_vec <=> %s::vector) FROM {table} {alias} "  # noqa: S608
        f"WHERE {where} AND {alias}.embedding_vec IS NOT NULL ORDER BY {alias}.embedding_vec <=> %s::vector LIMIT %s"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        # The candidate list at least as long as the ranking asked for (pgvector's default is 40).
        cursor.execute(f"SET LOCAL hnsw.ef_search = {min(HNSW_MAX_EF_SEARCH, max(40, int(limit)))}")
        cursor.execute(sql, [literal, *params, literal, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]
