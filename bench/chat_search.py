"""Search over one's own chats at scale: one user's N messages (in chats of 20, questions and answers built
from SciFact sentences), then SciFact's claims searched with GET /search/chats's selector.

    .venv/bin/python -m bench.chat_search --messages 100000                  # throwaway SQLite
    DATABASE_URL=sqlite:////tmp/search.db .venv/bin/python -m bench.chat_search --reuse  # a kept SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_search \\
        .venv/bin/python -m bench.chat_search --messages 1000000 --reuse       # PostgreSQL

Corpus: SciFact's abstracts (read at run time from --scifact, never copied: CC BY-NC) split into sentences;
message i is 1 to 3 sentences (a question) or 2 to 8 (an answer) drawn by random.Random(f"{seed}:{i}"), so
the text has real term statistics and every run and resumed load makes the same corpus. Messages are stored
with bulk_create, --batch per transaction, so the database triggers index them as the app's writes do;
the load is timed. --strangers N adds N messages of another user (they must never be read).

Queries: SciFact's claims (--queries, after 20 untimed), each timed around chats.search.selectors.
message_search(limit=20): the ranking, the hits' rows and the snippets. Printed: p50, p95, p99 and mean,
how many found nothing, and the same with the `role=assistant` filter; then the reference, a search that
scores every message holding any of the words (one pass), and how much of its top 20 the two-pass search
returns (recall@20).

The PostgreSQL database named by DATABASE_URL is created if missing and migrated; --reuse keeps what an
earlier run loaded and adds only what is missing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from bench.common import ROOT, django_setup, pct
from bench.retrieval_scale import read_queries, read_sentences

WARMUP = 20
CHAT_MESSAGES = 20
OWNER_EMAIL = "bench-search@bytchat.invalid"
STRANGER_EMAIL = "bench-search-stranger@bytchat.invalid"


def ensure_postgres_database(url: str) -> None:
    from urllib.parse import urlparse

    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def message_text(sentences: list[str], seed: str, index: int) -> str:
    rng = random.Random(f"{seed}:{index}")
    question = index % 2 == 0
    return " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 3) if question else rng.randint(2, 8)))


def load(owner, sentences: list[str], wanted: int, batch: int, seed: str) -> tuple[int, float]:
    """Adds the owner's missing messages; (messages added, seconds)."""
    from django.db import transaction

    from chats.models import Chat, Message, Role, Surface

    have = Message.objects.filter(chat__owner=owner).count()
    started = time.perf_counter()
    index = have
    while index < wanted:
        with transaction.atomic():
            end = min(wanted, index + batch)
            chats = {}
            rows = []
            for number in range(index, end):
                chat_number = number // CHAT_MESSAGES
                if chat_number not in chats:
                    chats[chat_number] = Chat.objects.create(
                        owner=owner,
                        surface=(Surface.SESSIONS, Surface.CHATS, Surface.BYTCHAT)[chat_number % 3],
                        title=f"Bench chat {chat_number}",
                    )
                rows.append(
                    Message(
                        chat=chats[chat_number],
                        role=Role.USER if number % 2 == 0 else Role.ASSISTANT,
                        content=message_text(sentences, seed, number),
                    )
                )
            Message.objects.bulk_create(rows, batch_size=1000)
        index = end
        print(f"  {index:,} / {wanted:,} messages", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return wanted - have, time.perf_counter() - started


def timed(owner, queries: list[str], filters, *, one_pass: bool = False) -> tuple[list[float], int, list[set]]:
    """Each query's time, how many found nothing, and each query's hits. `one_pass` scores every message
    holding any of the words (the budget of the rare words' pass lifted): the reference."""
    from chats.search.selectors import message_search
    from knowledge import bm25

    budget = bm25.CANDIDATE_BUDGET
    if one_pass:
        bm25.CANDIDATE_BUDGET = 10**9
    try:
        for query in queries[:WARMUP]:
            message_search(user=owner, query=query, filters=filters, limit=20)
        timings, empty, found = [], 0, []
        for query in queries[WARMUP:]:
            started = time.perf_counter()
            hits = message_search(user=owner, query=query, filters=filters, limit=20)
            timings.append((time.perf_counter() - started) * 1000)
            empty += not hits
            found.append({hit.message_id for hit in hits})
    finally:
        bm25.CANDIDATE_BUDGET = budget
    return timings, empty, found


def recall(found: list[set], reference: list[set]) -> tuple[float, float]:
    """Mean and worst share of the one-pass top 20 that the two-pass search returned (over the queries the
    reference ran)."""
    shares = [len(hits & best) / len(best) for hits, best in zip(found, reference, strict=False) if best]
    return statistics.fmean(shares), min(shares)


def report(label: str, timings: list[float], empty: int) -> None:
    print(
        f"{label}: p50 {pct(timings, 50):.1f} ms, p95 {pct(timings, 95):.1f} ms, p99 {pct(timings, 99):.1f} ms, "
        f"mean {statistics.fmean(timings):.1f} ms over {len(timings)} queries ({empty} found nothing)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--strangers", type=int, default=0, help="another user's messages")
    parser.add_argument("--queries", type=int, default=520, help="SciFact claims, the first 20 untimed")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--seed", default="bench-search")
    parser.add_argument("--no-reference", action="store_true", help="skip timing the one-pass reference")
    parser.add_argument(
        "--reference-queries", type=int, default=0, help="time the reference on the first N claims only (0: all)"
    )
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "bench" / "scifact")
    args = parser.parse_args()
    if not (args.scifact / "corpus.jsonl").is_file():
        parser.error(f"{args.scifact} has no corpus.jsonl (SciFact, BEIR format)")
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        ensure_postgres_database(url)
    elif args.reuse and not url:
        parser.error("--reuse needs DATABASE_URL (a throwaway SQLite database is new every run)")
    django_setup(temp_prefix="bench-search-")
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from chats.models import Chat, Role
    from chats.search.types import SearchFilters

    call_command("migrate", verbosity=0)
    owner, stranger = (
        User.objects.filter(email=email).first() or User.objects.create_user(email=email)
        for email in (OWNER_EMAIL, STRANGER_EMAIL)
    )
    if not args.reuse:
        Chat.objects.filter(owner__in=[owner, stranger]).delete()
    _abstracts, sentences = read_sentences(args.scifact)
    added, seconds = load(owner, sentences, args.messages, args.batch, args.seed)
    if added:
        print(
            f"loaded {added:,} messages in {seconds:.0f} s ({added / seconds:,.0f} a second, indexed by the triggers)"
        )
    if args.strangers:
        load(stranger, sentences, args.strangers, args.batch, args.seed + "-stranger")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    queries = read_queries(args.scifact, args.queries)
    print(
        f"{connection.vendor}: {args.messages:,} messages of one user"
        + (f", {args.strangers:,} of another" if args.strangers else "")
        + f"; {len(queries) - WARMUP} SciFact claims, limit 20"
    )
    timings, empty, found = timed(owner, queries, SearchFilters())
    report("search", timings, empty)
    report("search, answers only", *timed(owner, queries, SearchFilters(role=Role.ASSISTANT))[:2])
    if not args.no_reference:
        some = queries[: WARMUP + args.reference_queries] if args.reference_queries else queries
        timings, empty, reference = timed(owner, some, SearchFilters(), one_pass=True)
        report("reference: one pass, every match scored", timings, empty)
        mean, worst = recall(found, reference)
        print(f"recall@20 against the one-pass top: mean {mean:.3f}, worst query {worst:.2f}")


if __name__ == "__main__":
    main()
