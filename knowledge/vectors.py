"""Embedding vectors: stored as unit-length float32 bytes, searched by exact cosine with numpy
(or by pgvector's HNSW index, knowledge/retrieval.py, where the database has it)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bots.llm.embeddings import embed_texts, embeddings_enabled


def to_blob(vector: list[float]) -> bytes:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return (array / norm if norm else array).tobytes()


def embed_for_storage(texts: list[str]) -> list[bytes] | None:
    """Blobs for `texts`, or None when no embeddings provider is configured."""
    if not embeddings_enabled() or not texts:
        return None
    return [to_blob(vector) for vector in embed_texts(texts)]


def embed_query(text: str) -> np.ndarray | None:
    if not embeddings_enabled():
        return None
    return np.frombuffer(to_blob(embed_texts([text])[0]), dtype=np.float32)


def nearest(query: np.ndarray, batches: Iterable[list[tuple[int, bytes]]], limit: int) -> list[tuple[int, float]]:
    """The `limit` rows most similar to `query` (exact cosine; all vectors are unit length).

    Rows come a batch at a time and only the best `limit` are kept between batches, so memory stays
    bounded by the batch size however many vectors are read.
    """
    best_ids = np.empty(0, dtype=np.int64)
    best_scores = np.empty(0, dtype=np.float32)
    for rows in batches:
        rows = [(row_id, blob) for row_id, blob in rows if blob and len(blob) == query.nbytes]
        if not rows:
            continue
        matrix = np.frombuffer(b"".join(bytes(blob) for _id, blob in rows), dtype=np.float32).reshape(len(rows), -1)
        best_ids = np.concatenate([best_ids, np.fromiter((row_id for row_id, _blob in rows), dtype=np.int64)])
        best_scores = np.concatenate([best_scores, matrix @ query])
        if len(best_scores) > limit:
            keep = np.argpartition(-best_scores, limit - 1)[:limit]
            best_ids, best_scores = best_ids[keep], best_scores[keep]
    order = sorted(range(len(best_scores)), key=lambda index: (-float(best_scores[index]), int(best_ids[index])))
    return [(int(best_ids[index]), float(best_scores[index])) for index in order[:limit]]


def pgvector_dimensions(connection, table: str = "knowledge_chunk") -> int | None:
    """The size of `table`'s pgvector column `embedding_vec` if it has one, else None (knowledge migration
    0004, chats migration 0010: only where the server has the extension)."""
    if connection.vendor != "postgresql":
        return None
    cached: dict[str, int | None] = connection.__dict__.setdefault("_bytchat_pgvector", {})
    if table in cached:
        return cached[table]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'embedding_vec' AND NOT attisdropped",
            [table],
        )
        row = cursor.fetchone()
    cached[table] = dimensions = row[0] if row else None
    return dimensions


def vector_literal(blob: bytes | np.ndarray) -> str:
    array = blob if isinstance(blob, np.ndarray) else np.frombuffer(bytes(blob), dtype=np.float32)
    return "[" + ",".join(f"{value:.7g}" for value in array.tolist()) + "]"


def pgvector_store(connection, table: str, rows: list[tuple[int, bytes | None]]) -> None:
    """Copy (row id, vector blob) into `table`'s pgvector column, where it has one of the vectors' size."""
    dimensions = pgvector_dimensions(connection, table)
    if dimensions is None:
        return
    literals = [
        (vector_literal(blob), row_id) for row_id, blob in rows if blob is not None and len(blob) == dimensions * 4
    ]
    with connection.cursor() as cursor:
        # Only the table name is interpolated, and it is the caller's constant.
        cursor.executemany(f"UPDATE {table} SET embedding_vec = %s::vector WHERE id = %s", literals)  # noqa: S608
