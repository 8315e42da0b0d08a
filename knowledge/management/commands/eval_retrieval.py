"""Runs a BEIR-format data set through Bytchat's own ingestion and retrieval; prints nDCG@10, Recall@100, latency.

Documents whose text is the same (real corpora have them: NFCorpus does) are ingested once, as an
upload of the same file twice is, and every id that shares the text is credited where that text ranks.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from knowledge.retrieval import search
from knowledge.services import document_ingest_text, knowledge_base_get_or_create

CHUNKS_FETCHED = 300  # chunks per query, enough to rank 100 distinct documents


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked: list[str], relevant: dict[str, int]) -> float:
    hits = {doc for doc, gain in relevant.items() if gain > 0}
    return len(hits & set(ranked[:100])) / len(hits) if hits else 0.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{path}:{number} is not JSON: {exc.msg}.") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise CommandError(f"{path}:{number} has no _id.")
            yield row


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {document id: relevance}; the header line BEIR writes is optional."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\n").split("\t")
            if not line.strip() or (number == 1 and not fields[-1].lstrip("-").isdigit()):
                continue
            if len(fields) < 3 or not fields[-1].lstrip("-").isdigit():
                raise CommandError(f"{path}:{number}: expected query-id, corpus-id and score separated by tabs.")
            qrels.setdefault(fields[0], {})[fields[1]] = int(fields[-1])
    return qrels


def document_text(row: dict) -> str:
    return f"{row.get('title') or ''}\n\n{row.get('text') or ''}".strip()


def credited(ranked_documents: list[uuid.UUID], ids_by_document: dict[uuid.UUID, list[str]]) -> list[str]:
    """Every corpus id of each ranked document, in rank order: ids sharing one text share its place."""
    return [doc_id for document in ranked_documents for doc_id in ids_by_document[document]]


class Command(BaseCommand):
    help = "Evaluate retrieval on a BEIR data set (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--split", default="test")
        parser.add_argument("--limit-docs", type=int, default=0, help="Ingest only the first N documents.")
        parser.add_argument("--limit-queries", type=int, default=0, help="Ask only the first N queries.")
        parser.add_argument("--keep", action="store_true", help="Keep the evaluation user and its data.")

    def handle(self, *args, directory: Path, split: str, limit_docs: int, limit_queries: int, keep: bool, **options):
        corpus_path, queries_path = directory / "corpus.jsonl", directory / "queries.jsonl"
        qrels_path = directory / "qrels" / f"{split}.tsv"
        for path in (corpus_path, queries_path, qrels_path):
            if not path.is_file():
                raise CommandError(f"{path} is missing: expected a BEIR-format directory.")
        qrels = read_qrels(qrels_path)
        queries = {row["_id"]: str(row.get("text") or "") for row in read_jsonl(queries_path) if row["_id"] in qrels}
        if limit_queries:
            queries = dict(list(queries.items())[:limit_queries])
        if not queries:
            raise CommandError(f"No query of {queries_path} has a judgement in {qrels_path}.")
        user = get_user_model().objects.create_user(
            email=f"eval-{uuid.uuid4().hex[:12]}@bytchat.invalid", password=None
        )
        try:
            self._run(user, corpus_path, queries, qrels, limit_docs)
        finally:
            if not keep:
                user.delete()

    def _run(self, user, corpus_path: Path, queries: dict[str, str], qrels, limit_docs: int) -> None:
        base = knowledge_base_get_or_create(owner=user, name="eval")
        ids_by_text: dict[str, list[str]] = {}
        ids_by_document: dict[uuid.UUID, list[str]] = {}
        documents = 0
        started = time.monotonic()
        for row in tqdm(read_jsonl(corpus_path), desc="ingest", unit="doc", disable=None):
            if limit_docs and documents >= limit_docs:
                break
            documents += 1
            text = document_text(row)
            if not text:
                continue
            sharing = ids_by_text.setdefault(text, [])
            sharing.append(str(row["_id"]))
            if len(sharing) == 1:
                document = document_ingest_text(knowledge_base=base, filename=sharing[0], text=text)
                ids_by_document[document.pk] = sharing
        ingest_seconds = time.monotonic() - started
        ndcgs, recalls, latencies = [], [], []
        for query_id, text in tqdm(queries.items(), desc="queries", unit="q", disable=None):
            began = time.perf_counter()
            passages = search(owner_id=user.pk, query=text, knowledge_base_ids=[base.pk], limit=CHUNKS_FETCHED)
            latencies.append((time.perf_counter() - began) * 1000)
            ranked = credited(list(dict.fromkeys(passage.document_id for passage in passages)), ids_by_document)
            ndcgs.append(ndcg_at_10(ranked, qrels[query_id]))
            recalls.append(recall_at_100(ranked, qrels[query_id]))
        latencies.sort()
        duplicates = sum(len(ids) - 1 for ids in ids_by_document.values())
        self.stdout.write(
            f"database: {connection.vendor}  documents: {documents} ({duplicates} sharing another's text)"
            f"  queries: {len(queries)}\n"
            f"nDCG@10: {statistics.mean(ndcgs):.4f}  Recall@100: {statistics.mean(recalls):.4f}\n"
            f"query latency ms: p50 {statistics.median(latencies):.1f}  p95 {percentile(latencies, 0.95):.1f}\n"
            f"ingestion: {ingest_seconds:.1f} s ({documents / max(ingest_seconds, 1e-9):.0f} documents/s)"
        )
