"""Ranking on PostgreSQL: BM25 from the owner's own statistics (migration 0009), reading only the messages
that can reach the top (knowledge/bm25.py and knowledge/postgres_bm25.py, as for knowledge bases).

Each entry's tsvector holds one extra lexeme, `owner <id>` (the parser never makes a lexeme with a space),
so every search asks the GIN index for the owner's matching messages only; the filters are applied to
those."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection

from chats.search.types import Ranking
from knowledge import bm25, postgres_bm25


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
        return postgres_bm25.terms_from_rows(cursor.fetchall())


def ranked(*, owner_id: int, query: str, condition: str, params: list[Any], limit: int) -> Ranking:
    """(entry id, BM25 score) of the owner's best matching entries within the filters (`condition` on the
    alias `m`), best first."""
    terms, avgdl = _statistics(owner_id, query)

    def scored(tsquery: str) -> Ranking:
        return postgres_bm25.scored_rows(
            table="chats_messagesearchentry",
            columns="owner_id, bot_id, surface, role, visitor, created_at",
            condition=condition,
            tsquery=tsquery,
            terms=terms,
            avgdl=avgdl,
            params=params,
            limit=limit,
        )

    owner = postgres_bm25.quoted(f"owner {int(owner_id)}")
    return postgres_bm25.top(terms, limit, scored=scored, required=owner)
