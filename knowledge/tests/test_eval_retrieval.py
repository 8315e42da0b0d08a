"""`manage.py eval_retrieval` on small BEIR-format directories (docs/reliability.md D11)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from knowledge.models import Document

pytestmark = pytest.mark.django_db

PHOTOSYNTHESIS = {"title": "Leaves", "text": "Chlorophyll drives photosynthesis in green leaves."}


def write_beir(directory: Path, corpus: list[dict], queries: list[dict], qrels: str) -> Path:
    (directory / "qrels").mkdir(parents=True)
    (directory / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (directory / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries))
    (directory / "qrels" / "test.tsv").write_text(qrels)
    return directory


def evaluate(directory: Path) -> str:
    out = io.StringIO()
    call_command("eval_retrieval", str(directory), stdout=out)
    return out.getvalue()


def test_documents_sharing_a_text_are_each_scored(tmp_path):
    corpus = [
        {"_id": "d1", **PHOTOSYNTHESIS},
        {"_id": "d2", **PHOTOSYNTHESIS},  # the same text under another id, as in NFCorpus
        {"_id": "d3", "title": "Tides", "text": "The moon's gravity raises ocean tides twice a day."},
        {"_id": "d4", "title": "", "text": ""},
    ]
    queries = [
        {"_id": "q1", "text": "What drives photosynthesis?"},
        {"_id": "q2", "text": "why do ocean tides rise"},
        {"_id": "q3", "text": "a query nobody judged"},
    ]
    # No header line, a blank line: both are tolerated.
    directory = write_beir(tmp_path / "beir", corpus, queries, "q1\td1\t1\nq1\td2\t1\n\nq2\td3\t2\n")
    users_before = get_user_model().objects.count()

    report = evaluate(directory)

    assert "documents: 4 (1 sharing another's text)" in report
    assert "queries: 2" in report
    # Both ids of the shared text are found at the top for q1, d3 for q2: a perfect run.
    assert "nDCG@10: 1.0000  Recall@100: 1.0000" in report
    assert "query latency ms: p50" in report and "ingestion:" in report
    assert get_user_model().objects.count() == users_before
    assert not Document.objects.exists()


def test_a_relevant_duplicate_is_credited_where_its_text_ranks(tmp_path):
    corpus = [
        {"_id": "d1", **PHOTOSYNTHESIS},
        {"_id": "d2", **PHOTOSYNTHESIS},
        {"_id": "d3", "title": "Tides", "text": "Photosynthesis is not how tides work."},
    ]
    directory = write_beir(
        tmp_path / "beir",
        corpus,
        [{"_id": "q1", "text": "chlorophyll photosynthesis leaves"}],
        "query-id\tcorpus-id\tscore\nq1\td2\t1\n",
    )
    # d2 is only judged relevant; it shares first place with d1, so it ranks second: 1 / log2(3).
    assert "nDCG@10: 0.6309" in evaluate(directory)


@pytest.mark.parametrize(
    ("missing", "message"),
    [("corpus.jsonl", "corpus.jsonl is missing"), ("qrels/test.tsv", "test.tsv is missing")],
)
def test_an_incomplete_directory_is_refused_by_name(tmp_path, missing, message):
    directory = write_beir(tmp_path / "beir", [{"_id": "d1", **PHOTOSYNTHESIS}], [{"_id": "q1", "text": "x"}], "")
    (directory / missing).unlink()
    with pytest.raises(CommandError, match=message):
        evaluate(directory)


def test_a_malformed_line_is_named(tmp_path):
    directory = write_beir(tmp_path / "beir", [{"_id": "d1", **PHOTOSYNTHESIS}], [{"_id": "q1", "text": "x"}], "")
    (directory / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1 d1 1\n")
    with pytest.raises(CommandError, match=r"test.tsv:2"):
        evaluate(directory)
