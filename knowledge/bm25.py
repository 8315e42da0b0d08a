"""BM25 from per-base statistics, reading only the chunks that can reach the top (PostgreSQL).

Each base's chunk count, token total and per-lexeme document frequency are kept at ingestion
(KnowledgeBaseTextStats and KnowledgeBaseTerm, by triggers: migration 0007), so ranking never
counts them at query time and never counts anyone else's chunks. The top is then found MaxScore-style:

1. The rarest query lexemes (together held by at most CANDIDATE_BUDGET chunks, or by at least
   `limit`) give the first candidates, each scored on every query lexeme. The `limit`-th best
   score is the bar.
2. A chunk holding none of those rare lexemes scores at most the sum of the upper bounds
   (idf * (k1 + 1)) of the other lexemes it holds. Only combinations of lexemes whose bounds add up
   to more than the bar can beat it, so the second search asks only for chunks holding one of those
   combinations: `(a & b) | c`, not `a | b | c`. A common word can no longer pull in a large part of
   the corpus unless it could matter.

The result is the exact BM25 top `limit` (ties at the bar aside) at the cost of the chunks that
could rank, rather than of every chunk sharing a word with the question, as long as the second
search stays within SECOND_PASS_BUDGET chunks. Past it (common words whose combinations could
still beat the bar, in a large base), only the most promising combinations that fit are asked for
(or, when none fits, the cheapest, up to LAST_RESORT_BUDGETS budgets): the latency stays bounded and
the top may miss a chunk that holds only common words. The index supplies the two searches
(knowledge/postgres_bm25.py for knowledge bases and messages on PostgreSQL, chats/search/sqlite.py for
messages on SQLite; knowledge bases on SQLite rank every match, knowledge/sqlite_fts.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

K1 = 1.2
B = 0.75
CANDIDATE_BUDGET = 1000  # chunks the first, rare-lexeme search may read
MAX_COMBINATIONS = 64  # beyond this many, the second search asks for any of the remaining lexemes
# The second search reads at most about this many chunks (estimated from each combination's rarest
# lexeme); past it, only the combinations that could score highest are asked for, and the top is
# no longer guaranteed exact (docs/benchmarks.md, retrieval at scale).
SECOND_PASS_BUDGET = 2000
LAST_RESORT_BUDGETS = 4

Ranking = list[tuple[int, float]]


@dataclass(frozen=True, slots=True)
class Term:
    lexeme: str
    document_frequency: int
    idf: float

    @property
    def bound(self) -> float:
        """The most this lexeme can add to a chunk's score."""
        return self.idf * (K1 + 1)


def term(lexeme: str, document_frequency: int, chunks: float) -> Term:
    return Term(
        lexeme, document_frequency, math.log(1 + (chunks - document_frequency + 0.5) / (document_frequency + 0.5))
    )


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


def top(
    terms: Sequence[Term],
    limit: int,
    *,
    any_of: Callable[[list[str]], Ranking],
    groups: Callable[[list[list[str]], list[str]], Ranking],
    budget: int = SECOND_PASS_BUDGET,
) -> Ranking:
    """The best `limit` chunks, best first. `any_of(lexemes)` scores the chunks holding any of them;
    `groups(groups, excluded)` scores those holding all lexemes of some group and none of `excluded`."""
    if not terms:
        return []
    rare, rest = rare_and_rest(terms, limit)
    rare_lexemes = [term.lexeme for term in rare]
    found = any_of(rare_lexemes)
    if not rest:
        return found
    bar = found[-1][1] if len(found) >= limit else 0.0
    combinations = combinations_above(rest, bar)
    if combinations == []:
        return found
    wanted = combinations if combinations is not None else [[term.lexeme] for term in rest]
    wanted = within_budget(wanted, {term.lexeme: term for term in rest}, budget)
    if not wanted:
        return found
    return sorted(found + groups(wanted, rare_lexemes), key=lambda pair: (-pair[1], pair[0]))[:limit]


def rare_and_rest(terms: Sequence[Term], limit: int) -> tuple[list[Term], list[Term]]:
    """The rarest terms, together held by at most CANDIDATE_BUDGET chunks (or by at least `limit`), and
    the others, rarest first."""
    rare_first = sorted(terms, key=lambda term: (term.document_frequency, term.lexeme))
    rare: list[Term] = []
    held = 0
    for term in rare_first:
        # Past the budget only while the rare terms hold fewer chunks than asked for (without `limit`
        # scored chunks there is no bar) and never past the second pass's budget.
        over = held + term.document_frequency > CANDIDATE_BUDGET
        if rare and over and (held >= limit or held + term.document_frequency > SECOND_PASS_BUDGET):
            break
        rare.append(term)
        held += term.document_frequency
    return rare, rare_first[len(rare) :]


def within_budget(
    wanted: list[list[str]], by_lexeme: dict[str, Term], budget: int = SECOND_PASS_BUDGET
) -> list[list[str]]:
    """The combinations to ask for, the most promising first, as long as the chunks they may read (each
    at most its rarest lexeme's frequency) stay within `budget`: one that does not fit is skipped, not the
    end, so a costly combination of common words does not crowd out a rare word. When none fits, the
    cheapest one if it reads at most LAST_RESORT_BUDGETS budgets: without a second pass, a top of the
    rarest word's chunks alone can miss every chunk that a pair of less rare words puts first."""

    def cost(group: list[str]) -> int:
        return min(by_lexeme[lexeme].document_frequency for lexeme in group)

    ranked = sorted(wanted, key=lambda group: -sum(by_lexeme[lexeme].bound for lexeme in group))
    kept: list[list[str]] = []
    reads = 0
    for group in ranked:
        if reads + cost(group) > budget:
            continue
        kept.append(group)
        reads += cost(group)
    if not kept and ranked:
        cheapest = min(ranked, key=cost)
        if cost(cheapest) <= LAST_RESORT_BUDGETS * budget:
            kept.append(cheapest)
    return kept
