"""BM25 on PostgreSQL (knowledge/bm25.py): lexemes from to_tsvector, candidates from the GIN index, term
frequencies from each candidate's tsvector. Shared by knowledge bases (per-base statistics, migration 0007)
and message search (per-owner statistics, chats/search/postgres.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import connection

from knowledge import bm25


def quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _any_of(lexemes: Sequence[str]) -> str:
    return " | ".join(quoted(lexeme) for lexeme in lexemes)


def top(
    terms: Sequence[bm25.Term],
    limit: int,
    *,
    scored: Callable[[str], bm25.Ranking],
    required: str = "",
    budget: int = bm25.SECOND_PASS_BUDGET,
) -> bm25.Ranking:
    """knowledge/bm25.py's two searches as tsqueries for `scored(tsquery)`; `required`, when given, is a
    tsquery every match must also satisfy (message search's owner lexeme)."""
    prefix = f"{required} & " if required else ""

    def any_of(lexemes: list[str]) -> bm25.Ranking:
        return scored(f"{prefix}({_any_of(lexemes)})")

    def groups(wanted: list[list[str]], excluded: list[str]) -> bm25.Ranking:
        combinations = " | ".join("(" + " & ".join(quoted(lexeme) for lexeme in group) + ")" for group in wanted)
        return scored(f"{prefix}({combinations}) & !({_any_of(excluded)})")

    return bm25.top(terms, limit, any_of=any_of, groups=groups, budget=budget)


def scored_rows(
    *,
    table: str,
    columns: str,
    condition: str,
    tsquery: str,
    terms: Sequence[bm25.Term],
    avgdl: float,
    params: list[Any],
    limit: int,
) -> list[tuple]:
    """(id, BM25 score) of the rows of `table` matching `tsquery` and `condition` (on the alias `m`, with its
    `params`), scored on every query lexeme, best first. `columns` are the ones `condition` reads, beside
    id, token_count and tsv."""
    lexemes = [term.lexeme for term in terms]
    # The matches are found first, on their own, so that the GIN index is the only way the planner can find
    # them (beside an owner's or a base's btree index it may pick a scan of the whole scope).
    sql = f"""
        WITH m AS MATERIALIZED (
            SELECT id, token_count, tsv, {columns} FROM {table} WHERE tsv @@ %s::tsquery
        )
        SELECT m.id,
               sum(q.idf * u.tf * {bm25.K1 + 1}::float8
                   / (u.tf + {bm25.K1}::float8
                      * (1 - {bm25.B}::float8 + {bm25.B}::float8 * m.token_count / %s::float8)))
               AS score
        FROM m
        CROSS JOIN LATERAL (
            SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf
            FROM unnest(ts_filter(setweight(m.tsv, 'A', %s::text[]), '{{a}}'))
        ) AS u
        JOIN unnest(%s::text[], %s::float8[]) AS q (lexeme, idf) USING (lexeme)
        WHERE {condition}
        GROUP BY m.id
        ORDER BY score DESC, m.id
        LIMIT %s
    """  # noqa: S608 (only constants and the callers' SQL are interpolated; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery, avgdl, lexemes, lexemes, [term.idf for term in terms], *params, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


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
    return terms_from_rows(rows)


def terms_from_rows(rows: Sequence[tuple[Any, Any, str | None, Any]]) -> tuple[list[bm25.Term], float]:
    """Terms and average length from rows of (documents, tokens, lexeme, document frequency)."""
    documents, tokens = float(rows[0][0]), float(rows[0][1])
    terms = [bm25.term(lexeme, df, documents) for _d, _t, lexeme, df in rows if lexeme is not None and df > 0]
    return sorted(terms, key=lambda term: term.lexeme), max(tokens / documents, 1.0) if documents else 1.0


def ranked(*, owner_id: int, query: str, base_ids: list[uuid.UUID], limit: int) -> bm25.Ranking:
    """(chunk id, BM25 score) of the best matching chunks in these bases of the owner, best first."""
    terms, avgdl = _statistics(query, base_ids)

    def scored(tsquery: str) -> bm25.Ranking:
        return scored_rows(
            table="knowledge_chunk",
            columns="owner_id, knowledge_base_id",
            condition="m.owner_id = %s AND m.knowledge_base_id = ANY(%s)",
            tsquery=tsquery,
            terms=terms,
            avgdl=avgdl,
            params=[owner_id, base_ids],
            limit=limit,
        )

    return top(terms, limit, scored=scored)
