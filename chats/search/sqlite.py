"""Ranking on SQLite: FTS5's BM25 over `chats_message_fts` (migration 0009), reading only the messages that
can reach the top (docs/search.md).

The owner is a token of the index (`o<id>` in its `owner` column, weighted 0 in the ranking). FTS5's
statistics (message count, average length, how many messages hold a word) are the whole index's, not the
owner's: a ranking can lean on other users' word frequencies, never show their messages.

bm25() scores a row on the phrases of its MATCH expression, and most of a question's words are common, so
scoring every message holding any of them is what a one-pass search costs. The top is found instead as on
PostgreSQL (knowledge/bm25.py: the rarest words first, then only combinations of the others that can beat
the bar), with two FTS5 devices:

- `content:(wanted) AND (content:(others) OR owner:"o<id>")` matches the rows holding a wanted word (the
  owner token is in every row of the owner's) yet names every query word once, so bm25() scores the rows it
  reads on all the words, exactly as the one-pass search would.
- The second pass keeps only the rows holding one of the combinations, `+rowid IN (...)`, a set FTS5 finds
  without scoring anything.

Bounds come from each word's frequency in the index, counted by FTS5 (so the words are tokenized and stemmed
as the index does), and the largest entry id (at least the row count). Past SECOND_PASS_BUDGET rows the
second pass asks only for the most promising combinations, so the top may then miss a message that holds
common words alone (recall and latency measured in docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from chats.search.types import Ranking
from knowledge import bm25
from knowledge.sqlite_fts import STOP_WORDS, phrase

# Rows the second pass may read: FTS5 scores a row for a fraction of what PostgreSQL's tsvector scoring costs.
SECOND_PASS_BUDGET = 10_000


def _any_of(words: Sequence[str]) -> str:
    return " OR ".join(phrase(word) for word in words)


def _terms(cursor, words: list[str]) -> list[bm25.Term]:
    """The words the index holds, with how many messages (anyone's) hold each: one statement."""
    counts = ", ".join("(SELECT count(*) FROM chats_message_fts WHERE chats_message_fts MATCH %s)" for _ in words)
    cursor.execute(
        f"SELECT (SELECT coalesce(max(id), 0) FROM chats_messagesearchentry), {counts}",  # noqa: S608
        [f"content : {phrase(word)}" for word in words],
    )
    total, *frequencies = cursor.fetchone()
    return [bm25.term(word, df, float(total)) for word, df in zip(words, frequencies, strict=True) if df]


def ranked(*, owner_id: int, terms: Sequence[str], condition: str, params: list[Any], limit: int) -> Ranking:
    """(entry id, score) of the best matching entries within the filters (`condition` on the alias `s`),
    best first."""
    words = [term for term in terms if term not in STOP_WORDS]
    if not words:
        return []
    owner = f'owner : "o{int(owner_id)}"'
    select = "SELECT s.id, -bm25(chats_message_fts, 1.0, 0.0) AS score FROM chats_message_fts AS f "
    join = "JOIN chats_messagesearchentry AS s ON s.id = f.rowid WHERE chats_message_fts MATCH %s "
    # The condition is built from constants (chats/search/filters.py); values are parameters.
    order = f"AND {condition} ORDER BY score DESC, s.id LIMIT %s"
    with connection.cursor() as cursor:
        held = _terms(cursor, words)
        lexemes = [term.lexeme for term in held]

        def scored_on_all(wanted: Sequence[str]) -> str:
            others = [lexeme for lexeme in lexemes if lexeme not in wanted]
            match = f"content : ({_any_of(wanted)})"
            return f"{match} AND (content : ({_any_of(others)}) OR {owner})" if others else match

        def any_of(wanted: list[str]) -> Ranking:
            # The rare words' rows are few whoever holds them: the owner is the join's filter here.
            cursor.execute(select + join + order, [scored_on_all(wanted), *params, limit])
            return [(row[0], float(row[1])) for row in cursor.fetchall()]

        def groups(wanted: list[list[str]], excluded: list[str]) -> Ranking:
            combinations = " OR ".join("(" + " AND ".join(phrase(word) for word in group) + ")" for group in wanted)
            held_by_groups = f"{owner} AND content : ({combinations}) NOT content : ({_any_of(excluded)})"
            in_groups = "AND +f.rowid IN (SELECT rowid FROM chats_message_fts WHERE chats_message_fts MATCH %s) "
            words_in_groups = sorted({word for group in wanted for word in group})
            cursor.execute(
                select + join + in_groups + order,
                [f"{owner} AND {scored_on_all(words_in_groups)}", held_by_groups, *params, limit],
            )
            return [(row[0], float(row[1])) for row in cursor.fetchall()]

        return bm25.top(held, limit, any_of=any_of, groups=groups, budget=SECOND_PASS_BUDGET)
