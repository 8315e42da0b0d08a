"""Ranking on PostgreSQL: BM25 from the owner's own statistics (migration 0009), reading only the messages
that can reach the top (knowledge/bm25.py, the same method as knowledge bases).

Each entry's tsvector holds one extra lexeme, `owner <id>` (the parser never makes a lexeme with a space),
so every search asks the GIN index for the owner's matching messages only; the filters are applied to
those."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection

from chats.search.types import Ranking
from knowledge import bm25


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _any_of(lexemes: Sequence[str]) -> str:
    return " | ".join(_quoted(lexeme) for lexeme in lexemes)


def _statistics(owner_id: int, query: str) -> tuple[list[bm25.Term], float]:
    """The query's lexemes the owner's messages hold, with their frequencies, and the average length."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH totals AS (
                SELECT coalesce(sum(message_count), 0)::bigint AS messages,
                       coalesce(sum(token_total), 0)::bigint AS tokens
                FROM chats_messagesearchstats WHERE owner_id = %s
            )
            SELECT totals.messages, totals.tokens, t.lexeme, t.document_frequency
            FROM totals
            LEFT JOIN chats_messagesearchterm AS t ON t.owner_id = %s
                AND t.lexeme IN (SELECT lexeme FROM unnest(to_tsvector(%s::regconfig, %s)))
            """,
            [owner_id, owner_id, settings.KNOWLEDGE_FTS_LANGUAGE, query],
        )
        rows = cursor.fetchall()
    messages, tokens = float(rows[0][0]), float(rows[0][1])
    terms = [bm25.term(lexeme, df, messages) for _m, _t, lexeme, df in rows if lexeme is not None and df > 0]
    return sorted(terms, key=lambda term: term.lexeme), max(tokens / messages, 1.0) if messages else 1.0


def _scored(
    tsquery: str,
    terms: Sequence[bm25.Term],
    avgdl: float,
    condition: str,
    params: list[Any],
    limit: int,
    message_ids: dict[int, Any],
) -> Ranking:
    lexemes = [term.lexeme for term in terms]
    # The matches are found first, on their own, so that the GIN index is the way to them.
    sql = f"""
        WITH s AS MATERIALIZED (
            SELECT id, message_id, owner_id, bot_id, surface, role, visitor, created_at, token_count, tsv
            FROM chats_messagesearchentry WHERE tsv @@ %s::tsquery
        )
        SELECT s.id, s.message_id,
               sum(q.idf * u.tf * {bm25.K1 + 1}::float8
                   / (u.tf + {bm25.K1}::float8
                      * (1 - {bm25.B}::float8 + {bm25.B}::float8 * s.token_count / %s::float8)))
               AS score
        FROM s
        CROSS JOIN LATERAL (
            SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf
            FROM unnest(ts_filter(setweight(s.tsv, 'A', %s::text[]), '{{a}}'))
        ) AS u
        JOIN unnest(%s::text[], %s::float8[]) AS q (lexeme, idf) USING (lexeme)
        WHERE {condition}
        GROUP BY s.id, s.message_id
        ORDER BY score DESC, s.id
        LIMIT %s
    """  # noqa: S608 (only constants and the filter's SQL are interpolated; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery, avgdl, lexemes, lexemes, [term.idf for term in terms], *params, limit])
        rows = cursor.fetchall()
    message_ids.update((row[0], row[1]) for row in rows)
    return [(row[0], float(row[2])) for row in rows]


def ranked(
    *, owner_id: int, query: str, condition: str, params: list[Any], limit: int
) -> tuple[Ranking, dict[int, Any]]:
    """(entry id, BM25 score) of the owner's best matching entries within the filters, best first, and each
    one's message id."""
    terms, avgdl = _statistics(owner_id, query)
    owner = _quoted(f"owner {int(owner_id)}")
    message_ids: dict[int, Any] = {}

    def any_of(lexemes: list[str]) -> Ranking:
        return _scored(f"{owner} & ({_any_of(lexemes)})", terms, avgdl, condition, params, limit, message_ids)

    def groups(wanted: list[list[str]], excluded: list[str]) -> Ranking:
        combinations = " | ".join("(" + " & ".join(_quoted(lexeme) for lexeme in group) + ")" for group in wanted)
        tsquery = f"{owner} & ({combinations}) & !({_any_of(excluded)})"
        return _scored(tsquery, terms, avgdl, condition, params, limit, message_ids)

    return bm25.top(terms, limit, any_of=any_of, groups=groups), message_ids
