"""BM25 on PostgreSQL from per-base statistics, reading only the chunks that can reach the top.

The statistics (chunk count, token total, and how many chunks hold each lexeme) are kept per base
by triggers at ingestion (migration 0007), so ranking never counts them at query time. Candidates
are then found MaxScore-style:

1. The rarest query lexemes (together held by at most CANDIDATE_BUDGET chunks) give the first
   candidates, found through the GIN index and scored on every query lexeme. The `limit`-th best
   score is the bar.
2. A chunk holding none of those rare lexemes scores at most the sum of the upper bounds
   (idf * (k1 + 1)) of the other lexemes it holds. Only combinations of lexemes whose bounds add up
   to more than the bar can beat it, so the second search asks the index for those combinations
   alone: `(a & b) | c`, not `a | b | c`. A common word can no longer pull in a large part of the
   corpus unless it could matter.

The result is the exact BM25 top `limit` (ties at the bar aside), with the cost of the chunks that
could rank rather than of every chunk sharing a word with the query.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

BM25_K1 = 1.2
BM25_B = 0.75
CANDIDATE_BUDGET = 2000  # chunks the first, rare-lexeme search may read
MAX_COMBINATIONS = 64  # beyond this many, the second search asks for any of the remaining lexemes


@dataclass(frozen=True, slots=True)
class Term:
    lexeme: str
    document_frequency: int
    idf: float

    @property
    def bound(self) -> float:
        """The most this lexeme can add to a chunk's score."""
        return self.idf * (BM25_K1 + 1)


def _bases_sql(owner_id: int, knowledge_base_ids: Sequence[uuid.UUID] | None) -> tuple[str, list]:
    """The owner's bases in scope, as a subquery: a base id from elsewhere can never widen it."""
    if knowledge_base_ids is None:
        return "SELECT id FROM knowledge_knowledgebase WHERE owner_id = %s", [owner_id]
    return "SELECT id FROM knowledge_knowledgebase WHERE owner_id = %s AND id = ANY(%s)", [
        owner_id,
        list(knowledge_base_ids),
    ]


def _statistics(query: str, bases: str, params: list) -> tuple[list[Term], float, float]:
    """The query's lexemes with their frequencies in scope, the chunk count and the average length."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(sum(chunk_count), 0)::bigint, coalesce(sum(token_total), 0)::bigint "  # noqa: S608
            f"FROM knowledge_knowledgebasetextstats WHERE knowledge_base_id IN ({bases})",
            params,
        )
        chunks, tokens = cursor.fetchone()
        cursor.execute(
            "SELECT q.lexeme, coalesce(sum(t.document_frequency), 0)::bigint "  # noqa: S608
            "FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector(%s::regconfig, %s))) AS q "
            "JOIN knowledge_knowledgebaseterm AS t ON t.lexeme = q.lexeme "
            f"AND t.knowledge_base_id IN ({bases}) GROUP BY q.lexeme",
            [settings.KNOWLEDGE_FTS_LANGUAGE, query, *params],
        )
        frequencies = cursor.fetchall()
    n = float(chunks)
    terms = [Term(lexeme, int(df), math.log(1 + (n - df + 0.5) / (df + 0.5))) for lexeme, df in frequencies if df > 0]
    return terms, n, max(float(tokens) / n, 1.0) if n else 1.0


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _any_of(lexemes: Sequence[str]) -> str:
    return " | ".join(_quoted(lexeme) for lexeme in lexemes)


def combinations_above(terms: Sequence[Term], bar: float) -> list[list[str]] | None:
    """Sets of lexemes whose bounds add up to more than `bar`, so that a chunk that can beat the bar
    holds every lexeme of at least one set. None when there would be more than MAX_COMBINATIONS."""
    ordered = sorted(terms, key=lambda term: -term.bound)
    suffix = [0.0] * (len(ordered) + 1)
    for index in range(len(ordered) - 1, -1, -1):
        suffix[index] = suffix[index + 1] + ordered[index].bound
    found: list[list[str]] = []

    def extend(start: int, chosen: list[str], total: float) -> bool:
        for index in range(start, len(ordered)):
            if total + suffix[index] <= bar:
                return True  # nothing from here on can get over the bar
            with_this = total + ordered[index].bound
            if with_this > bar:
                found.append([*chosen, ordered[index].lexeme])
                if len(found) > MAX_COMBINATIONS:
                    return False
            elif not extend(index + 1, [*chosen, ordered[index].lexeme], with_this):
                return False
        return True

    return found if extend(0, [], 0.0) else None


def _scored(
    tsquery: str, terms: Sequence[Term], avgdl: float, scope: str, params: list, limit: int
) -> list[tuple[int, float]]:
    """The chunks in scope matching `tsquery`, scored on every query lexeme, best first."""
    lexemes = [term.lexeme for term in terms]
    # The matches are found first, on their own, so the GIN index is the only way the planner can
    # find them (beside the owner's or a base's btree index it may pick a scan of the whole base).
    sql = f"""
        WITH c AS MATERIALIZED (
            SELECT id, owner_id, knowledge_base_id, token_count, tsv FROM knowledge_chunk WHERE tsv @@ %s::tsquery
        )
        SELECT c.id,
               sum(q.idf * u.tf * {BM25_K1 + 1}::float8
                   / (u.tf + {BM25_K1}::float8
                      * (1 - {BM25_B}::float8 + {BM25_B}::float8 * c.token_count / %s::float8)))
               AS score
        FROM c
        CROSS JOIN LATERAL (
            SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf
            FROM unnest(ts_filter(setweight(c.tsv, 'A', %s::text[]), '{{a}}'))
        ) AS u
        JOIN unnest(%s::text[], %s::float8[]) AS q (lexeme, idf) USING (lexeme)
        WHERE {scope}
        GROUP BY c.id
        ORDER BY score DESC, c.id
        LIMIT %s
    """  # noqa: S608 (only our own scope fragment and constants are interpolated; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery, avgdl, lexemes, lexemes, [term.idf for term in terms], *params, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


def ranked(
    *, owner_id: int, query: str, knowledge_base_ids: Sequence[uuid.UUID] | None, limit: int
) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) of the best matching chunks in the owner's bases, best first."""
    bases, base_params = _bases_sql(owner_id, knowledge_base_ids)
    terms, _n, avgdl = _statistics(query, bases, base_params)
    if not terms:
        return []
    scope, params = f"c.owner_id = %s AND c.knowledge_base_id IN ({bases})", [owner_id, *base_params]
    rare_first = sorted(terms, key=lambda term: (term.document_frequency, term.lexeme))
    rare: list[Term] = []
    for term in rare_first:
        if rare and sum(t.document_frequency for t in rare) + term.document_frequency > CANDIDATE_BUDGET:
            break
        rare.append(term)
    rest = rare_first[len(rare) :]
    found = _scored(_any_of([t.lexeme for t in rare]), terms, avgdl, scope, params, limit)
    if not rest:
        return found
    bar = found[-1][1] if len(found) >= limit else 0.0
    combinations = combinations_above(rest, bar)
    if combinations == []:
        return found
    if combinations is None:
        wanted = f"({_any_of([t.lexeme for t in rest])})"
    else:
        wanted = " | ".join("(" + " & ".join(_quoted(lexeme) for lexeme in group) + ")" for group in combinations)
    more = _scored(f"({wanted}) & !({_any_of([t.lexeme for t in rare])})", terms, avgdl, scope, params, limit)
    return sorted(found + more, key=lambda pair: (-pair[1], pair[0]))[:limit]
