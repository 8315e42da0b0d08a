"""Runs a BEIR-format data set through Bytchat's own ingestion and retrieval; prints nDCG@10, Recall@100, latency."""

from __future__ import annotations

import json
import math
import statistics
import time
import uuid
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


class Command(BaseCommand):
    help = "Evaluate retrieval on a BEIR data set (corpus.jsonl, queries.jsonl, qrels/test.tsv)."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--split", default="test")
        parser.add_argument("--limit-docs", type=int, default=0, help="Ingest only the first N documents.")
        parser.add_argument("--keep", action="store_true", help="Keep the evaluation user and its data.")

    def handle(self, *args, directory: Path, split: str, limit_docs: int, keep: bool, **options):
        corpus_path, queries_path = directory / "corpus.jsonl", directory / "queries.jsonl"
        qrels_path = directory / "qrels" / f"{split}.tsv"
        for path in (corpus_path, queries_path, qrels_path):
            if not path.exists():
                raise CommandError(f"{path} is missing: expected a BEIR-format directory.")
        qrels: dict[str, dict[str, int]] = {}
        for line in qrels_path.read_text().splitlines()[1:]:
            query_id, doc_id, score = line.split("\t")
            qrels.setdefault(query_id, {})[doc_id] = int(score)
        queries = {
            row["_id"]: row["text"]
            for row in map(json.loads, queries_path.read_text().splitlines())
            if row["_id"] in qrels
        }
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
        lines = corpus_path.read_text().splitlines()
        if limit_docs:
            lines = lines[:limit_docs]
        started = time.monotonic()
        for line in tqdm(lines, desc="ingest", unit="doc", disable=None):
            row = json.loads(line)
            text = f"{row.get('title', '')}\n\n{row.get('text', '')}".strip()
            if text:
                document_ingest_text(knowledge_base=base, filename=row["_id"], text=text)
        ingest_seconds = time.monotonic() - started
        ndcgs, recalls, latencies = [], [], []
        for query_id, text in tqdm(queries.items(), desc="queries", unit="q", disable=None):
            began = time.perf_counter()
            passages = search(owner_id=user.pk, query=text, knowledge_base_ids=[base.pk], limit=CHUNKS_FETCHED)
            latencies.append((time.perf_counter() - began) * 1000)
            ranked = list(dict.fromkeys(passage.filename for passage in passages))
            ndcgs.append(ndcg_at_10(ranked, qrels[query_id]))
            recalls.append(recall_at_100(ranked, qrels[query_id]))
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        self.stdout.write(
            f"database: {connection.vendor}  documents: {len(lines)}  queries: {len(queries)}\n"
            f"nDCG@10: {statistics.mean(ndcgs):.4f}  Recall@100: {statistics.mean(recalls):.4f}\n"
            f"query latency ms: p50 {statistics.median(latencies):.1f}  p95 {p95:.1f}\n"
            f"ingestion: {ingest_seconds:.1f} s"
        )
