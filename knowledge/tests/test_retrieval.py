"""Retrieval through the database's own full-text engine (runs on SQLite and, in CI, PostgreSQL)."""

import pytest

from knowledge.models import Chunk, Document, DocumentStatus
from knowledge.retrieval import query_terms, search
from knowledge.services import document_delete, document_ingest_text, knowledge_base_get_or_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(user):
    base = knowledge_base_get_or_create(owner=user, name="Biología")
    docs = {
        "cells": document_ingest_text(
            knowledge_base=base,
            filename="cells.txt",
            text="Mitochondria are the powerhouse of the cell. They produce ATP through respiration.",
        ),
        "plants": document_ingest_text(
            knowledge_base=base,
            filename="plants.txt",
            text="Chloroplasts capture light. Photosynthesis in plants turns light into sugar.",
        ),
        "ocean": document_ingest_text(
            knowledge_base=base, filename="ocean.txt", text="The ocean covers most of the planet."
        ),
    }
    return base, docs


def test_search_ranks_the_matching_passage_first_with_its_citation(user, library):
    _base, docs = library
    passages = search(owner_id=user.pk, query="How do mitochondria produce ATP?")
    assert passages[0].document_id == docs["cells"].id
    citation = passages[0].citation()
    assert citation["filename"] == "cells.txt"
    assert citation["document_id"] == str(docs["cells"].id)
    assert "powerhouse" in citation["text"]
    assert citation["position"] == 0 and citation["page"] is None


def test_search_uses_or_semantics_and_stemming(user, library):
    _, docs = library
    # Only "photosynthesis" (and "plant" via stemming) match; the other words match nothing.
    passages = search(owner_id=user.pk, query="explain photosynthesis for plant zebras quantum")
    assert [p.document_id for p in passages][:1] == [docs["plants"].id]


def test_search_never_returns_another_users_passages(user, other_user, library):
    _base, _docs = library
    theirs = knowledge_base_get_or_create(owner=other_user, name="secret")
    document_ingest_text(knowledge_base=theirs, filename="x.txt", text="Mitochondria canary-7 produce ATP.")
    mine = search(owner_id=user.pk, query="mitochondria canary ATP")
    assert all("canary" not in p.text for p in mine)
    # Passing the other user's base id does not widen the scope either.
    assert search(owner_id=user.pk, query="canary", knowledge_base_ids=[theirs.pk]) == []
    assert [p.filename for p in search(owner_id=other_user.pk, query="canary")] == ["x.txt"]


def test_search_is_limited_to_the_given_bases(user, library):
    _base, _docs = library
    other_base = knowledge_base_get_or_create(owner=user, name="Historia")
    document_ingest_text(knowledge_base=other_base, filename="rome.txt", text="Rome had mitochondria experts.")
    found = search(owner_id=user.pk, query="mitochondria", knowledge_base_ids=[other_base.pk])
    assert [p.filename for p in found] == ["rome.txt"]
    assert search(owner_id=user.pk, query="mitochondria", knowledge_base_ids=[]) == []


def test_deleted_documents_are_never_retrieved(user, library):
    _, docs = library
    document_delete(document=docs["cells"])
    assert search(owner_id=user.pk, query="mitochondria ATP powerhouse") == []
    assert not Chunk.objects.filter(document_id=docs["cells"].id).exists()


def test_queries_without_words_or_with_syntax_characters_are_safe(user, library):
    assert search(owner_id=user.pk, query="   ?!  ") == []
    for hostile in ['"', "mitochondria OR", 'NEAR(a b) "x', "'; DROP TABLE knowledge_chunk; --", "a*^:()"]:
        search(owner_id=user.pk, query=hostile)  # no error
    assert Chunk.objects.exists()


def test_query_terms_are_deduplicated_and_bounded():
    assert query_terms("Cell cell CELL membrane") == ["cell", "membrane"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(500)))) == 64


def test_ingesting_text_is_chunked_and_marked_ready(user):
    base = knowledge_base_get_or_create(owner=user, name="long")
    text = "\n\n".join(f"Paragraph {i} talks about topic number {i} in some detail." for i in range(200))
    document = document_ingest_text(knowledge_base=base, filename="long.txt", text=text)
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY and document.progress == 100
    chunks = list(Chunk.objects.filter(document=document).order_by("position"))
    assert len(chunks) > 3
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert Document.objects.get(pk=document.pk).owner_id == user.pk


def test_stop_words_weigh_nothing_on_either_database(user, library):
    """PostgreSQL's english configuration drops stop words; SQLite leaves the same list out of its query."""
    _base, docs = library
    assert search(owner_id=user.pk, query="what is the of and") == []
    with_stop_words = search(owner_id=user.pk, query="what are the mitochondria of the cell")
    without = search(owner_id=user.pk, query="mitochondria cell")
    assert [(p.chunk_id, round(p.score, 9)) for p in with_stop_words] == [
        (p.chunk_id, round(p.score, 9)) for p in without
    ]
    assert with_stop_words[0].document_id == docs["cells"].id
