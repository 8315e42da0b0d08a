"""Semantic search through a real OpenAI-compatible /v1/embeddings server, fused with full-text ranking."""

import numpy as np
import pytest

from knowledge.models import Chunk
from knowledge.retrieval import fuse, search
from knowledge.services import document_ingest_text, knowledge_base_get_or_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def pets(user):
    base = knowledge_base_get_or_create(owner=user, name="pets")
    cat = document_ingest_text(knowledge_base=base, filename="cat.txt", text="The cat sleeps on the warm sofa.")
    stocks = document_ingest_text(knowledge_base=base, filename="stocks.txt", text="Stocks fell sharply today.")
    return cat, stocks


def test_chunks_are_stored_with_unit_vectors_from_the_provider(embeddings, pets):
    vectors = [np.frombuffer(bytes(c.embedding), dtype=np.float32) for c in Chunk.objects.all()]
    assert len(vectors) == 2 and all(v.shape == (64,) for v in vectors)
    assert all(abs(float(np.linalg.norm(v)) - 1) < 1e-5 for v in vectors)
    sent = [r for r in embeddings.requests if r.path == "/v1/embeddings"]
    assert sent and sent[0].body["model"] == "fake-embed"
    assert sent[0].headers["Authorization"] == "Bearer test-provider-key"


def test_a_semantic_match_without_shared_words_is_found(embeddings, user, pets):
    cat, _stocks = pets
    found = search(owner_id=user.pk, query="kitten")
    assert [p.document_id for p in found][:1] == [cat.id]


def test_without_embeddings_only_lexical_matches_are_found(user, pets):
    assert not Chunk.objects.exclude(embedding=None).exists()
    assert search(owner_id=user.pk, query="kitten") == []


def test_query_embedding_failure_falls_back_to_lexical(embeddings, user, pets, settings):
    settings.EMBEDDINGS_MODEL = "fake-embed-fail"
    found = search(owner_id=user.pk, query="sofa")
    assert [p.filename for p in found] == ["cat.txt"]


def test_semantic_search_never_crosses_owners(embeddings, user, other_user, pets):
    theirs = knowledge_base_get_or_create(owner=other_user, name="x")
    document_ingest_text(knowledge_base=theirs, filename="theirs.txt", text="My cat is a secret canary.")
    assert all(p.filename != "theirs.txt" for p in search(owner_id=user.pk, query="kitten canary"))


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = fuse([[(1, 9.0), (2, 8.0), (3, 7.0)], [(3, 0.9), (1, 0.8)]], limit=3)
    assert [item for item, _score in fused] == [1, 3, 2]
