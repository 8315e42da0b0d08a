"""SQLite full-text search: one contentless FTS5 index per owner (docs/reliability.md D12).

A shared index would make every query walk and rank all users' postings before the owner filter,
and its BM25 statistics (chunk count, average length, how many chunks hold a word) would be
everyone's. Per owner, a query costs what the owner's own chunks cost and ranks by their
statistics alone; strangers' documents change neither.

The index is contentless (it keeps no copy of the text): removing a chunk tells FTS5 its text,
read from knowledge_chunk before the row goes. Every chunk is added by services._store_chunks and
removed with its document (services and the pre_delete signal, which covers cascades), so the
index never outlives or misses a chunk; a user's index is dropped with the user.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import connection

TOKENIZER = "porter unicode61 remove_diacritics 2"
# The Snowball English stop words, the list PostgreSQL's `english` configuration drops (its english.stop).
# The Porter tokenizer is English's too. They are left out of the query as on PostgreSQL: FTS5 would
# otherwise rank nearly every chunk for each of them, for almost no weight (docs/benchmarks.md).
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing a an the and but if or because as until while
    of at by for with about against between into through during before after above below to from up down in out
    on off over under again further then once here there when where why how all any both each few more most
    other some such no nor not only own same so than too very s t can will just don should now
    """.split()  # noqa: SIM905 (a readable list)
)


def index_table(owner_id: int) -> str:
    return f"knowledge_fts_{int(owner_id)}"


def _exists(cursor, table: str) -> bool:
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    return cursor.fetchone() is not None


def index_document(*, owner_id: int, document_id: uuid.UUID) -> None:
    """Add the document's stored chunks to its owner's index (creating the index on first use)."""
    if connection.vendor != "sqlite":
        return
    table = index_table(owner_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(text, content='', tokenize='{TOKENIZER}')"
        )
        cursor.execute(
            # The table name is built from an integer; values are parameters.
            f"INSERT INTO {table}(rowid, text) SELECT id, text FROM knowledge_chunk WHERE document_id = %s",  # noqa: S608
            [document_id.hex],
        )


def unindex_document(*, owner_id: int, document_id: uuid.UUID) -> None:
    """Remove the document's chunks from the index; call it while the chunk rows still exist."""
    if connection.vendor != "sqlite":
        return
    table = index_table(owner_id)
    with connection.cursor() as cursor:
        if not _exists(cursor, table):
            return
        cursor.execute(
            f"INSERT INTO {table}({table}, rowid, text) "  # noqa: S608 (as above)
            "SELECT 'delete', id, text FROM knowledge_chunk WHERE document_id = %s",
            [document_id.hex],
        )


def drop_index(*, owner_id: int) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {index_table(owner_id)}")


def phrase(word: str) -> str:
    """A word as an FTS5 string, so that it is never read as FTS5 syntax."""
    return '"' + word.replace('"', '""') + '"'


def match_expression(terms: Sequence[str]) -> str:
    """Any of the words but stop words, each a quoted string."""
    return " OR ".join(phrase(term) for term in terms if term not in STOP_WORDS)


def ranked(*, owner_id: int, terms: Sequence[str], scope: str, params: list, limit: int) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) of the owner's best matching chunks within `scope` (an SQL condition on
    knowledge_chunk `c` with its parameters, knowledge/retrieval.py), best first."""
    match = match_expression(terms)
    if not match:
        return []
    table = index_table(owner_id)
    sql = (
        f"SELECT f.rowid, -bm25({table}) FROM {table} AS f JOIN knowledge_chunk AS c ON c.id = f.rowid "  # noqa: S608
        f"WHERE {table} MATCH %s AND {scope} ORDER BY bm25({table}), f.rowid LIMIT %s"
    )
    with connection.cursor() as cursor:
        if not _exists(cursor, table):
            return []
        cursor.execute(sql, [match, *params, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]
