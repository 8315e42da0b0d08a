"""Ranking on SQLite: FTS5's BM25 over `chats_message_fts` (migration 0009).

The owner is a token of the index (`o<id>` in its `owner` column, weighted 0 in the ranking), so FTS5
intersects the owner's postings with the words' before it ranks anything: a query costs what the owner's
matching messages cost, not everyone's. FTS5's statistics (message count, average length, how many messages
hold a word) are the whole index's, not the owner's: a ranking can lean on other users' word frequencies,
never show their messages (docs/search.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from chats.search.types import Ranking
from knowledge.sqlite_fts import match_expression


def ranked(
    *, owner_id: int, terms: Sequence[str], condition: str, params: list[Any], limit: int
) -> tuple[Ranking, dict[int, Any]]:
    """(entry id, score) of the best matching entries, best first, and each one's message id."""
    words = match_expression(terms)
    if not words:
        return [], {}
    match = f'owner : "o{int(owner_id)}" AND content : ({words})'
    # The condition is built from constants (chats/search/filters.py); values are parameters.
    sql = (
        "SELECT s.id, s.message_id, -bm25(chats_message_fts, 1.0, 0.0) FROM chats_message_fts AS f "  # noqa: S608
        f"JOIN chats_messagesearchentry AS s ON s.id = f.rowid WHERE chats_message_fts MATCH %s AND {condition} "
        "ORDER BY bm25(chats_message_fts, 1.0, 0.0), s.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [match, *params, limit])
        rows = cursor.fetchall()
    return [(row[0], float(row[2])) for row in rows], {row[0]: row[1] for row in rows}
