"""Full-text statistics that belong to the data searched, never to everyone's (docs/reliability.md D12).

PostgreSQL: triggers keep each base's chunk count, token total and per-lexeme document frequency
(models KnowledgeBaseTextStats and KnowledgeBaseTerm) in the transaction that adds or removes chunks.
All writes for a base run under one advisory lock per base, taken by the trigger in base order, so
concurrent ingestions into a base queue for a moment instead of deadlocking on shared lexemes.

SQLite: the one FTS5 index over every user's chunks becomes one contentless FTS5 index per owner
(`knowledge_fts_<owner id>`, kept by knowledge/sqlite_fts.py), so a query reads and ranks only the
owner's chunks.
"""

import importlib

from django.db import migrations

LOCK_NAMESPACE = 7171  # the first key of pg_advisory_xact_lock(int, int): Bytchat's text statistics

POSTGRES_FUNCTION = f"""
CREATE FUNCTION knowledge_chunk_text_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_advisory_xact_lock({LOCK_NAMESPACE}, hashtext(base_id::text))
        FROM (SELECT DISTINCT knowledge_base_id AS base_id FROM old_rows ORDER BY 1) AS bases;
        UPDATE knowledge_knowledgebasetextstats AS s
        SET chunk_count = s.chunk_count - d.chunks, token_total = s.token_total - d.tokens
        FROM (SELECT knowledge_base_id, count(*) AS chunks, sum(token_count) AS tokens
              FROM old_rows GROUP BY 1) AS d
        WHERE s.knowledge_base_id = d.knowledge_base_id;
        UPDATE knowledge_knowledgebaseterm AS t SET document_frequency = t.document_frequency - d.chunks
        FROM (SELECT o.knowledge_base_id, u.lexeme, count(*) AS chunks
              FROM old_rows AS o CROSS JOIN LATERAL unnest(o.tsv) AS u GROUP BY 1, 2) AS d
        WHERE t.knowledge_base_id = d.knowledge_base_id AND t.lexeme = d.lexeme;
        DELETE FROM knowledge_knowledgebaseterm AS t
        USING (SELECT DISTINCT o.knowledge_base_id, u.lexeme
               FROM old_rows AS o CROSS JOIN LATERAL unnest(o.tsv) AS u) AS d
        WHERE t.knowledge_base_id = d.knowledge_base_id AND t.lexeme = d.lexeme AND t.document_frequency <= 0;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_advisory_xact_lock({LOCK_NAMESPACE}, hashtext(base_id::text))
        FROM (SELECT DISTINCT knowledge_base_id AS base_id FROM new_rows ORDER BY 1) AS bases;
        INSERT INTO knowledge_knowledgebasetextstats AS s (knowledge_base_id, chunk_count, token_total)
        SELECT knowledge_base_id, count(*), sum(token_count) FROM new_rows GROUP BY 1
        ON CONFLICT (knowledge_base_id) DO UPDATE
        SET chunk_count = s.chunk_count + excluded.chunk_count, token_total = s.token_total + excluded.token_total;
        INSERT INTO knowledge_knowledgebaseterm AS t (knowledge_base_id, lexeme, document_frequency)
        SELECT n.knowledge_base_id, u.lexeme, count(*)
        FROM new_rows AS n CROSS JOIN LATERAL unnest(n.tsv) AS u GROUP BY 1, 2
        ON CONFLICT (knowledge_base_id, lexeme) DO UPDATE
        SET document_frequency = t.document_frequency + excluded.document_frequency;
    END IF;
    RETURN NULL;
END
$$
"""

POSTGRES_FORWARD = [
    POSTGRES_FUNCTION,
    "CREATE TRIGGER knowledge_chunk_stats_insert AFTER INSERT ON knowledge_chunk "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION knowledge_chunk_text_stats()",
    "CREATE TRIGGER knowledge_chunk_stats_delete AFTER DELETE ON knowledge_chunk "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION knowledge_chunk_text_stats()",
    # Chunks are replaced, never edited: an UPDATE that would change what the statistics count is refused,
    # and other UPDATEs (the pgvector column) cost nothing here. (PostgreSQL allows no column list on a
    # trigger with transition tables, so a statistics trigger on UPDATE would run for every vector written.)
    """
    CREATE FUNCTION knowledge_chunk_refuse_text_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'knowledge_chunk text, token_count and knowledge_base_id are never updated';
    END
    $$
    """,
    "CREATE TRIGGER knowledge_chunk_text_immutable BEFORE UPDATE OF text, token_count, knowledge_base_id "
    "ON knowledge_chunk FOR EACH ROW WHEN (OLD.text IS DISTINCT FROM NEW.text "
    "OR OLD.token_count IS DISTINCT FROM NEW.token_count "
    "OR OLD.knowledge_base_id IS DISTINCT FROM NEW.knowledge_base_id) "
    "EXECUTE FUNCTION knowledge_chunk_refuse_text_update()",
    # The chunks stored before this migration.
    "INSERT INTO knowledge_knowledgebasetextstats (knowledge_base_id, chunk_count, token_total) "
    "SELECT knowledge_base_id, count(*), sum(token_count) FROM knowledge_chunk GROUP BY 1",
    "INSERT INTO knowledge_knowledgebaseterm (knowledge_base_id, lexeme, document_frequency) "
    "SELECT c.knowledge_base_id, u.lexeme, count(*) FROM knowledge_chunk AS c "
    "CROSS JOIN LATERAL unnest(c.tsv) AS u GROUP BY 1, 2",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_text_immutable ON knowledge_chunk",
    "DROP FUNCTION IF EXISTS knowledge_chunk_refuse_text_update()",
    "DROP TRIGGER IF EXISTS knowledge_chunk_stats_delete ON knowledge_chunk",
    "DROP TRIGGER IF EXISTS knowledge_chunk_stats_insert ON knowledge_chunk",
    "DROP FUNCTION IF EXISTS knowledge_chunk_text_stats()",
    "DELETE FROM knowledge_knowledgebaseterm",
    "DELETE FROM knowledge_knowledgebasetextstats",
]

# Kept in step with knowledge/sqlite_fts.py, which creates the index of an owner's first chunks.
SQLITE_TOKENIZER = "porter unicode61 remove_diacritics 2"
SQLITE_DROP_SHARED = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_update",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_delete",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_insert",
    "DROP TABLE IF EXISTS knowledge_chunk_fts",
]


def sqlite_forward(cursor) -> None:
    for statement in SQLITE_DROP_SHARED:
        cursor.execute(statement)
    cursor.execute("SELECT DISTINCT owner_id FROM knowledge_chunk")
    for (owner_id,) in cursor.fetchall():
        table = f"knowledge_fts_{int(owner_id)}"
        cursor.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(text, content='', tokenize='{SQLITE_TOKENIZER}')")
        cursor.execute(  # noqa: S608 (the table name is built from an integer)
            f"INSERT INTO {table}(rowid, text) SELECT id, text FROM knowledge_chunk WHERE owner_id = %s", [owner_id]
        )


def sqlite_backward(cursor) -> None:
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'knowledge_fts_[0-9]*'")
    for (table,) in cursor.fetchall():
        if table.removeprefix("knowledge_fts_").isdigit():  # its shadow tables go with it
            cursor.execute(f'DROP TABLE "{table}"')
    shared = importlib.import_module("knowledge.migrations.0002_full_text_index")
    for statement in shared.SQLITE_FORWARD:
        cursor.execute(statement)
    cursor.execute("INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts) VALUES ('rebuild')")


def forward(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in POSTGRES_FORWARD:
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            sqlite_forward(cursor)


def backward(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in POSTGRES_BACKWARD:
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            sqlite_backward(cursor)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0006_text_statistics")]
    operations = [migrations.RunPython(forward, backward)]
