"""BM25 on PostgreSQL (knowledge/bm25.py): lexemes from to_tsvector, candidates from the GIN index,
term frequencies from each candidate's tsvector."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.conf import settings
from django.db import connection

from knowledge import bm25


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _any_of(lexemes: Sequence[str]) -> str:
    return " | ".join(_quoted(lexeme) for lexeme in lexemes)


def _statistics(query: str, base_ids: list[uuid.UUID]) -> tuple[list[bm25.Term], float]:
    """The query's lexemes held in these bases, with their frequencies, and the average chunk length:
    one round trip to the rows the triggers keep (migration 0007)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH totals AS (
                SELECT coalesce(sum(chunk_count), 0)::bigint AS chunks, coalesce(sum(token_total), 0)::bigint AS tokens
                FROM knowledge_knowledgebasetextstats WHERE knowledge_base_id = ANY(%s)
            )
            SELECT totals.chunks, totals.tokens, t.lexeme, sum(t.document_frequency)::bigint
            FROM totals
            LEFT JOIN knowledge_knowledgebaseterm AS t ON t.knowledge_base_id = ANY(%s)
                AND t.lexeme IN (SELECT lexeme FROM unnest(to_tsvector(%s::regconfig, %s)))
            GROUP BY totals.chunks, totals.tokens, t.lexeme
            """,
            [base_ids, base_ids, settings.KNOWLEDGE_FTS_LANGUAGE, query],
        )
        rows = cursor.fetchall()
    chunks, tokens = float(rows[0][0]), float(rows[0][1])
    terms = [bm25.term(lexeme, df, chunks) for _c, _t, lexeme, df in rows if lexeme is not None and df > 0]
    return sorted(terms, key=lambda term: term.lexeme), max(tokens / chunks, 1.0) if chunks else 1.0


def _scored(
    tsquery: str, terms: Sequence[bm25.Term], avgdl: float, base_ids: list[uuid.UUID], owner_id: int, limit: int
) -> bm25.Ranking:
    """The chunks in scope matching `tsquery`, scored on every query lexeme, best first."""
    lexemes = [term.lexeme for term in terms]
    # The matches are found first, on their own, so the GIN index is the only way the planner can
    # find them (beside the owner's or a base's btree index it may pick a scan of the whole base).
    sql = f"""
        WITH c AS MATERIALIZED (
            SELECT id, owner_id, knowledge_base_id, token_count, tsv FROM knowledge_chunk WHERE tsv @@ %s::tsquery
        )
        SELECT c.id,
               sum(q.idf * u.tf * {bm25.K1 + 1}::float8
                   / (u.tf + {bm25.K1}::float8
                      * (1 - {bm25.B}::float8 + {bm25.B}::float8 * c.token_count / %s::float8)))
               AS score
        FROM c
        CROSS JOIN LATERAL (
            SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf
            FROM unnest(ts_filter(setweight(c.tsv, 'A', %s::text[]), '{{a}}'))
        ) AS u
        JOIN unnest(%s::text[], %s::float8[]) AS q (lexeme, idf) USING (lexeme)
        WHERE c.owner_id = %s AND c.knowledge_base_id = ANY(%s)
        GROUP BY c.id
        ORDER BY score DESC, c.id
        LIMIT %s
    """  # noqa: S608 (only constants are interpolated; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery, avgdl, lexemes, lexemes, [term.idf for term in terms], owner_id, base_ids, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


def ranked(*, owner_id: int, query: str, base_ids: list[uuid.UUID], limit: int) -> bm25.Ranking:
    """(chunk id, BM25 score) of the best matching chunks in these bases of the owner, best first."""
    terms, avgdl = _statistics(query, base_ids)

    def any_of(lexemes: list[str]) -> bm25.Ranking:
        return _scored(_any_of(lexemes), terms, avgdl, base_ids, owner_id, limit)

    def groups(wanted: list[list[str]], excluded: list[str]) -> bm25.Ranking:
        combinations = " | ".join("(" + " & ".join(_quoted(lexeme) for lexeme in group) + ")" for group in wanted)
        return _scored(f"({combinations}) & !({_any_of(excluded)})", terms, avgdl, base_ids, owner_id, limit)

    return bm25.top(terms, limit, any_of=any_of, groups=groups)
