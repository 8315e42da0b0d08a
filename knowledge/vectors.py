"""Embedding vectors: stored as unit-length float32 bytes, searched by exact cosine with numpy."""

from __future__ import annotations

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


def nearest(query: np.ndarray, rows: list[tuple[int, bytes]], limit: int) -> list[tuple[int, float]]:
    """The `limit` rows most similar to `query` (exact cosine; all vectors are unit length)."""
    rows = [(row_id, blob) for row_id, blob in rows if blob and len(blob) == query.nbytes]
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(bytes(blob) for _id, blob in rows), dtype=np.float32).reshape(len(rows), -1)
    scores = matrix @ query
    top = np.argsort(-scores, kind="stable")[:limit]
    return [(rows[index][0], float(scores[index])) for index in top]


def pgvector_dimensions(connection) -> int | None:
    """The size of the pgvector column if this database has one (see migration 0004), else None."""
    if connection.vendor != "postgresql":
        return None
    cached = getattr(connection, "_bytchat_pgvector", "unknown")
    if cached != "unknown":
        return cached
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'knowledge_chunk'::regclass "
            "AND attname = 'embedding_vec' AND NOT attisdropped"
        )
        row = cursor.fetchone()
    dimensions = row[0] if row else None
    connection._bytchat_pgvector = dimensions
    return dimensions


def vector_literal(blob: bytes | np.ndarray) -> str:
    array = blob if isinstance(blob, np.ndarray) else np.frombuffer(bytes(blob), dtype=np.float32)
    return "[" + ",".join(f"{value:.7g}" for value in array.tolist()) + "]"
