"""Ranking that depends on the owner's data alone, at a cost that grows with it alone (docs/reliability.md D12)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from django.db import DatabaseError, connection, transaction

from knowledge import bm25, postgres_bm25, sqlite_fts
from knowledge.models import Chunk, KnowledgeBaseTerm, KnowledgeBaseTextStats
from knowledge.retrieval import search
from knowledge.services import document_delete, document_ingest_text, knowledge_base_get_or_create
from knowledge.vectors import nearest

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="per-base statistics are PostgreSQL's")
sqlite_only = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="per-owner FTS5 indexes are SQLite's")

WORDS = [
    "cell",
    "protein",
    "gene",
    "mutation",
    "tumour",
    "receptor",
    "kinase",
    "pathway",
    "signal",
    "membrane",
    "enzyme",
    "binding",
    "expression",
    "insulin",
    "glucose",
    "neuron",
    "synapse",
    "immune",
    "antibody",
    "virus",
    "infection",
    "vaccine",
    "dose",
    "trial",
    "patient",
    "risk",
    "cohort",
    "mortality",
    "heart",
    "blood",
    "pressure",
    "lipid",
    "liver",
    "kidney",
    "brain",
    "cortex",
    "memory",
]


def sentences(rng: random.Random, count: int) -> str:
    return " ".join(" ".join(rng.choices(WORDS, k=rng.randint(6, 14))) + "." for _ in range(count))


def fill(base, rng: random.Random, documents: int, prefix: str) -> list:
    return [
        document_ingest_text(knowledge_base=base, filename=f"{prefix}{n}.txt", text=sentences(rng, rng.randint(2, 30)))
        for n in range(documents)
    ]


def test_strangers_documents_change_neither_the_owners_results_nor_their_scores(user, other_user):
    rng = random.Random(7)
    mine = knowledge_base_get_or_create(owner=user, name="mine")
    fill(mine, rng, 25, "mine")
    queries = ["insulin glucose liver", "tumour kinase mutation pathway", "vaccine trial dose in patients"]
    before = {q: [(p.chunk_id, round(p.score, 9)) for p in search(owner_id=user.pk, query=q)] for q in queries}
    assert all(before.values())

    # A stranger's library, heavy on exactly those words: with shared statistics, every score moves.
    theirs = knowledge_base_get_or_create(owner=other_user, name="theirs")
    for n in range(20):
        document_ingest_text(
            knowledge_base=theirs, filename=f"theirs{n}.txt", text=" ".join(queries * (n + 1)) + " insulin" * n
        )

    after = {q: [(p.chunk_id, round(p.score, 9)) for p in search(owner_id=user.pk, query=q)] for q in queries}
    assert after == before


@sqlite_only
def test_each_owner_has_an_index_of_their_own_chunks_only_kept_through_deletions(user, other_user):
    rng = random.Random(3)
    mine = knowledge_base_get_or_create(owner=user, name="mine")
    documents = fill(mine, rng, 6, "d")
    fill(knowledge_base_get_or_create(owner=other_user, name="theirs"), rng, 4, "t")

    def indexed(owner) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {sqlite_fts.index_table(owner.pk)}")  # noqa: S608
            return cursor.fetchone()[0]

    assert indexed(user) == Chunk.objects.filter(owner=user).count()
    assert indexed(other_user) == Chunk.objects.filter(owner=other_user).count()
    gone = documents[0]
    gone_words = Chunk.objects.filter(document=gone).first().text.split()[:3]
    document_delete(document=gone)
    assert indexed(user) == Chunk.objects.filter(owner=user).count()
    assert all(p.document_id != gone.pk for p in search(owner_id=user.pk, query=" ".join(gone_words)))
    mine.delete()  # a cascade, not a service: the signal keeps the index in step
    assert indexed(user) == 0
    table = sqlite_fts.index_table(other_user.pk)
    other_user.delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = %s", [table])
        assert cursor.fetchone()[0] == 0


def recounted() -> tuple[dict, dict]:
    """What the statistics must be, counted from scratch from the stored chunks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT knowledge_base_id, count(*), sum(token_count) FROM knowledge_chunk GROUP BY 1")
        totals = {base: (chunks, tokens) for base, chunks, tokens in cursor.fetchall()}
        cursor.execute(
            "SELECT c.knowledge_base_id, u.lexeme, count(*) FROM knowledge_chunk c, unnest(c.tsv) u GROUP BY 1, 2"
        )
        terms = {(base, lexeme): df for base, lexeme, df in cursor.fetchall()}
    return totals, terms


def kept() -> tuple[dict, dict]:
    totals = {
        s.knowledge_base_id: (s.chunk_count, s.token_total)
        for s in KnowledgeBaseTextStats.objects.all()
        if s.chunk_count
    }
    terms = {(t.knowledge_base_id, t.lexeme): t.document_frequency for t in KnowledgeBaseTerm.objects.all()}
    return totals, terms


@postgres_only
def test_per_base_statistics_follow_every_ingestion_and_deletion(user, other_user):
    rng = random.Random(11)
    first = knowledge_base_get_or_create(owner=user, name="first")
    second = knowledge_base_get_or_create(owner=user, name="second")
    documents = fill(first, rng, 5, "a") + fill(second, rng, 5, "b")
    fill(knowledge_base_get_or_create(owner=other_user, name="theirs"), rng, 3, "c")
    assert kept() == recounted() and kept()[1]

    document_delete(document=documents[0])
    document_ingest_text(knowledge_base=first, filename="again.txt", text=sentences(rng, 40))
    assert kept() == recounted()
    second.delete()  # a cascade, not a service: the signal keeps the statistics in step
    assert kept() == recounted()
    other_user.delete()
    assert kept() == recounted()
    assert set(KnowledgeBaseTerm.objects.values_list("knowledge_base_id", flat=True).distinct()) == {first.pk}


@postgres_only
def test_reading_only_chunks_that_can_rank_gives_the_exact_bm25_top(user, monkeypatch):
    backend = postgres_bm25
    rng = random.Random(5)
    base = knowledge_base_get_or_create(owner=user, name="big")
    fill(base, rng, 60, "d")
    document_ingest_text(knowledge_base=base, filename="rare.txt", text="zygote " * 3 + sentences(rng, 3))
    queries = ["zygote insulin cell", "cell protein gene", "rare zygote kidney brain memory cortex synapse", "dose"]
    for query, limit in itertools.product(queries, [1, 5, 40]):
        monkeypatch.setattr(bm25, "CANDIDATE_BUDGET", 10**9)  # one pass over every match: the reference
        every_match = backend.ranked(owner_id=user.pk, query=query, base_ids=[base.pk], limit=limit)
        assert every_match
        for budget, combinations in [(1, 64), (30, 64), (30, 0)]:
            monkeypatch.setattr(bm25, "CANDIDATE_BUDGET", budget)
            monkeypatch.setattr(bm25, "MAX_COMBINATIONS", combinations)
            pruned = backend.ranked(owner_id=user.pk, query=query, base_ids=[base.pk], limit=limit)
            assert [chunk for chunk, _ in pruned] == [chunk for chunk, _ in every_match], (query, limit, budget)
            assert [round(s, 9) for _, s in pruned] == [round(s, 9) for _, s in every_match]


def test_the_combinations_asked_for_cover_every_set_of_words_that_could_beat_the_bar():
    rng = random.Random(1)
    for _ in range(200):
        terms = [bm25.Term(f"w{n}", 1, rng.uniform(0.1, 5.0)) for n in range(rng.randint(1, 7))]
        bar = rng.uniform(0, sum(t.bound for t in terms) * 1.2)
        found = bm25.combinations_above(terms, bar)
        assert found is not None
        for size in range(1, len(terms) + 1):
            for subset in itertools.combinations(terms, size):
                held = {t.lexeme for t in subset}
                if sum(t.bound for t in subset) > bar:
                    assert any(set(group) <= held for group in found), (bar, held, found)
        for group in found:  # every combination asked for can reach the bar
            assert sum(t.bound for t in terms if t.lexeme in group) > bar


def test_vectors_compared_a_batch_at_a_time_give_the_same_nearest_as_all_at_once():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [(n + 1, vectors[n].tobytes()) for n in range(500)]
    query = vectors[42]
    exact = sorted(((row_id, float(vectors[row_id - 1] @ query)) for row_id, _ in rows), key=lambda p: -p[1])[:25]
    for batch in (1, 7, 100, 500):
        batches = [rows[start : start + batch] for start in range(0, len(rows), batch)]
        found = nearest(query, iter(batches), 25)
        assert [row_id for row_id, _ in found] == [row_id for row_id, _ in exact]
    assert nearest(query, iter([rows[:3]]), 25) == sorted(
        ((row_id, float(vectors[row_id - 1] @ query)) for row_id, _ in rows[:3]), key=lambda p: -p[1]
    )


def test_the_query_is_embedded_while_the_lexical_search_runs(upstream, settings, user):
    settings.EMBEDDINGS_PROVIDER = "custom"
    settings.EMBEDDINGS_MODEL = "fake-embed"
    base = knowledge_base_get_or_create(owner=user, name="pets")
    document_ingest_text(knowledge_base=base, filename="cat.txt", text="The cat sleeps on the warm sofa.")
    question = "where does the cat sleep"
    seen_during_lexical: list[bool] = []

    def asked() -> bool:
        return any(r.path == "/v1/embeddings" and r.body.get("input") == [question] for r in upstream.requests)

    def during_lexical(execute, sql, params, many, context):
        if "MATCH" in sql or "@@" in sql:
            # Sequential code would ask the provider only after this query: the wait would time out.
            seen_during_lexical.append(upstream.wait_for(asked, timeout=5))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(during_lexical):
        found = search(owner_id=user.pk, query=question)
    assert found and found[0].filename == "cat.txt"
    assert seen_during_lexical and all(seen_during_lexical)


@postgres_only
def test_a_chunks_counted_text_cannot_be_edited_in_place_but_its_vector_can(user):
    base = knowledge_base_get_or_create(owner=user, name="mine")
    document_ingest_text(knowledge_base=base, filename="a.txt", text="Insulin lowers blood glucose.")
    chunk = Chunk.objects.get()
    with pytest.raises(DatabaseError, match="never updated"), transaction.atomic():
        Chunk.objects.filter(pk=chunk.pk).update(text="Something else entirely.")
    Chunk.objects.filter(pk=chunk.pk).update(embedding=b"\0" * 16)  # no statistics involved: allowed
    assert kept() == recounted()


def test_a_costly_combination_does_not_crowd_out_cheaper_ones_within_the_budget():
    terms = {
        "c": bm25.Term("c", 6000, 8.0),
        "two": bm25.Term("two", 19000, 6.0),
        "e": bm25.Term("e", 15000, 5.5),
        "bcl": bm25.Term("bcl", 800, 10.6),
        "myc": bm25.Term("myc", 900, 10.4),
    }
    wanted = [["bcl"], ["myc"], ["c", "e"], ["c", "two"]]  # the most promising last: the order is the function's
    # A second common combination past the budget is skipped; the rare words after it still fit.
    assert bm25.within_budget(wanted, terms, budget=7000) == [["c", "two"], ["bcl"]]
    assert bm25.within_budget(wanted, terms, budget=1000) == [["bcl"]]
    # None fits: the cheapest, within LAST_RESORT_BUDGETS budgets, so that a second pass still happens.
    assert bm25.within_budget(wanted, terms, budget=500) == [["bcl"]]
    assert bm25.within_budget([["c", "two"], ["c", "e"]], terms, budget=1000) == []
    assert bm25.within_budget(wanted, terms, budget=20_000) == [["c", "two"], ["c", "e"], ["bcl"], ["myc"]]
