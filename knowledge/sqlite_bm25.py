"""BM25 on SQLite (knowledge/bm25.py) from an inverted index of our own: knowledge_posting.

FTS5's bm25() ranks every chunk that holds any query word and counts each word's chunks on every
query, so its cost is that of the whole corpus a common word touches (300 ms at 100,000 chunks).
Instead, each chunk's terms are stored as postings (base, term, chunk, term frequency) in a
WITHOUT ROWID table whose key starts with the base: the chunks of a base holding a term are one
range, and a chunk's frequency for a term is one key lookup. Candidates come from the rarest terms'
ranges and are scored by lookups, so a query costs what the chunks that can rank cost, and it never
reads another base's postings (docs/reliability.md D12).

Terms are FTS5's own (Porter stemming, Unicode folding, diacritics removed): text is tokenized by a
temporary FTS5 table with that tokenizer and read back through fts5vocab, so a question and the
chunks it should match are always cut the same way. Postings and statistics are added in the
transaction that stores a document's chunks (services._store_chunks) and removed, while the chunk
rows still exist, when they are replaced or their document is deleted (services and the pre_delete
signal, which covers cascades).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import connection

from knowledge import bm25

TOKENIZER = "porter unicode61 remove_diacritics 2"


def _tokenize(cursor, source_sql: str, params: list) -> None:
    """Tokenize the (rowid, text) rows `source_sql` selects into temp.bytchat_token_instances."""
    cursor.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.bytchat_tokens USING fts5(text, tokenize='{TOKENIZER}')")
    cursor.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.bytchat_token_instances "
        "USING fts5vocab(temp, bytchat_tokens, 'instance')"
    )
    cursor.execute("DELETE FROM temp.bytchat_tokens")
    cursor.execute(f"INSERT INTO temp.bytchat_tokens (rowid, text) {source_sql}", params)


def _document_chunks(cursor, document_id: uuid.UUID) -> None:
    _tokenize(cursor, "SELECT id, text FROM knowledge_chunk WHERE document_id = %s", [document_id.hex])


def index_document(*, knowledge_base_id: uuid.UUID, document_id: uuid.UUID) -> None:
    """Add the document's stored chunks to its base's postings and statistics."""
    if connection.vendor != "sqlite":
        return
    base = knowledge_base_id.hex
    with connection.cursor() as cursor:
        _document_chunks(cursor, document_id)
        cursor.execute(
            "INSERT INTO knowledge_posting (knowledge_base_id, term, chunk_id, tf) "
            "SELECT %s, term, doc, count(*) FROM temp.bytchat_token_instances GROUP BY term, doc",
            [base],
        )
        cursor.execute(
            "INSERT INTO knowledge_knowledgebaseterm (knowledge_base_id, lexeme, document_frequency) "
            "SELECT %s, term, count(DISTINCT doc) FROM temp.bytchat_token_instances WHERE true GROUP BY term "
            "ON CONFLICT (knowledge_base_id, lexeme) "
            "DO UPDATE SET document_frequency = document_frequency + excluded.document_frequency",
            [base],
        )
        cursor.execute(
            "INSERT INTO knowledge_knowledgebasetextstats (knowledge_base_id, chunk_count, token_total) "
            "SELECT %s, count(*), coalesce(sum(token_count), 0) FROM knowledge_chunk WHERE document_id = %s "
            "ON CONFLICT (knowledge_base_id) DO UPDATE SET chunk_count = chunk_count + excluded.chunk_count, "
            "token_total = token_total + excluded.token_total",
            [base, document_id.hex],
        )


def unindex_document(*, knowledge_base_id: uuid.UUID, document_id: uuid.UUID) -> None:
    """Remove the document's chunks from its base's postings and statistics, while the chunk rows exist."""
    if connection.vendor != "sqlite":
        return
    base = knowledge_base_id.hex
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(token_count), 0) FROM knowledge_chunk WHERE document_id = %s",
            [document_id.hex],
        )
        chunks, tokens = cursor.fetchone()
        if not chunks:
            return
        _document_chunks(cursor, document_id)
        cursor.execute(
            "DELETE FROM knowledge_posting WHERE knowledge_base_id = %s "
            "AND (term, chunk_id) IN (SELECT DISTINCT term, doc FROM temp.bytchat_token_instances)",
            [base],
        )
        cursor.execute(
            "UPDATE knowledge_knowledgebaseterm SET document_frequency = document_frequency - gone.chunks "
            "FROM (SELECT term, count(DISTINCT doc) AS chunks FROM temp.bytchat_token_instances GROUP BY term) AS gone "
            "WHERE knowledge_base_id = %s AND lexeme = gone.term",
            [base],
        )
        cursor.execute(
            "DELETE FROM knowledge_knowledgebaseterm WHERE knowledge_base_id = %s AND document_frequency <= 0 "
            "AND lexeme IN (SELECT DISTINCT term FROM temp.bytchat_token_instances)",
            [base],
        )
        cursor.execute(
            "UPDATE knowledge_knowledgebasetextstats "
            "SET chunk_count = chunk_count - %s, token_total = token_total - %s WHERE knowledge_base_id = %s",
            [chunks, tokens, base],
        )


def remove_base(*, knowledge_base_id: uuid.UUID) -> None:
    """Drop whatever postings a deleted base left (its documents' deletions normally took them all)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM knowledge_posting WHERE knowledge_base_id = %s", [knowledge_base_id.hex])


def _lexemes(query: str) -> list[str]:
    with connection.cursor() as cursor:
        _tokenize(cursor, "SELECT 1, %s", [query])
        cursor.execute("SELECT DISTINCT term FROM temp.bytchat_token_instances")
        return [row[0] for row in cursor.fetchall()]


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def _scored(
    candidates_sql: str,
    candidate_params: list,
    terms: Sequence[bm25.Term],
    avgdl: float,
    owner_id: int,
    limit: int,
) -> bm25.Ranking:
    """Score the (chunk_id, base_id) rows `candidates_sql` selects on every query term, best first.
    CROSS JOIN fixes the order: each candidate, then a key lookup per term."""
    values = ", ".join(["(%s, %s)"] * len(terms))
    sql = f"""
        WITH cand (chunk_id, base_id) AS ({candidates_sql}),
             q (term, idf) AS (VALUES {values})
        SELECT cand.chunk_id,
               sum(q.idf * p.tf * {bm25.K1 + 1}
                   / (p.tf + {bm25.K1} * (1 - {bm25.B} + {bm25.B} * c.token_count / %s))) AS score
        FROM cand
        CROSS JOIN knowledge_chunk AS c
        CROSS JOIN q
        CROSS JOIN knowledge_posting AS p
        WHERE c.id = cand.chunk_id AND c.owner_id = %s
          AND p.knowledge_base_id = cand.base_id AND p.term = q.term AND p.chunk_id = cand.chunk_id
        GROUP BY cand.chunk_id
        ORDER BY score DESC, cand.chunk_id
        LIMIT %s
    """  # noqa: S608 (only placeholders and constants are interpolated; values are parameters)
    params = [*candidate_params, *(value for term in terms for value in (term.lexeme, term.idf))]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, float(avgdl), owner_id, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


def ranked(*, owner_id: int, query: str, base_ids: list[uuid.UUID], limit: int) -> bm25.Ranking:
    """(chunk id, BM25 score) of the best matching chunks in these bases of the owner, best first."""
    terms, avgdl = bm25.statistics(_lexemes(query), base_ids)
    bases = [base_id.hex for base_id in base_ids]
    in_bases = f"knowledge_base_id IN ({_placeholders(bases)})"

    def any_of(lexemes: list[str]) -> bm25.Ranking:
        sql = (
            f"SELECT DISTINCT chunk_id, knowledge_base_id FROM knowledge_posting "  # noqa: S608
            f"WHERE {in_bases} AND term IN ({_placeholders(lexemes)})"
        )
        return _scored(sql, [*bases, *lexemes], terms, avgdl, owner_id, limit)

    def groups(wanted: list[list[str]], excluded: list[str]) -> bm25.Ranking:
        # Each group from its rarest term's range, the others by key lookups; none of the rare terms.
        frequency = {term.lexeme: term.document_frequency for term in terms}
        selects, params = [], []
        for group in wanted:
            first, *others = sorted(group, key=lambda lexeme: frequency[lexeme])
            lookups = "".join(
                " AND EXISTS (SELECT 1 FROM knowledge_posting o WHERE o.knowledge_base_id = p.knowledge_base_id"
                " AND o.term = %s AND o.chunk_id = p.chunk_id)"
                for _ in others
            )
            selects.append(
                f"SELECT p.chunk_id, p.knowledge_base_id FROM knowledge_posting p "  # noqa: S608
                f"WHERE p.{in_bases} AND p.term = %s{lookups} AND NOT EXISTS (SELECT 1 FROM knowledge_posting x "
                f"WHERE x.knowledge_base_id = p.knowledge_base_id AND x.term IN ({_placeholders(excluded)}) "
                f"AND x.chunk_id = p.chunk_id)"
            )
            params += [*bases, first, *others, *excluded]
        return _scored(" UNION ".join(selects), params, terms, avgdl, owner_id, limit)

    return bm25.top(terms, limit, any_of=any_of, groups=groups)
