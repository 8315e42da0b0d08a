"""Full-text indexes in each database's own engine: SQLite FTS5, PostgreSQL tsvector + GIN."""

from django.conf import settings
from django.db import migrations

SQLITE_FORWARD = [
    # Porter stemming and accent folding, kept in step with knowledge_chunk by triggers.
    "CREATE VIRTUAL TABLE knowledge_chunk_fts USING fts5("
    "text, content='knowledge_chunk', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_chunk_fts_insert AFTER INSERT ON knowledge_chunk BEGIN "
    "INSERT INTO knowledge_chunk_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER knowledge_chunk_fts_delete AFTER DELETE ON knowledge_chunk BEGIN "
    "INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER knowledge_chunk_fts_update AFTER UPDATE OF text ON knowledge_chunk BEGIN "
    "INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO knowledge_chunk_fts(rowid, text) VALUES (new.id, new.text); END",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_update",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_delete",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_insert",
    "DROP TABLE IF EXISTS knowledge_chunk_fts",
]


def postgres_forward() -> list[str]:
    language = settings.KNOWLEDGE_FTS_LANGUAGE
    return [
        "ALTER TABLE knowledge_chunk ADD COLUMN tsv tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('{language}'::regconfig, text)) STORED",
        "CREATE INDEX knowledge_chunk_tsv_gin ON knowledge_chunk USING GIN (tsv)",
    ]


POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS knowledge_chunk_tsv_gin", "ALTER TABLE knowledge_chunk DROP COLUMN tsv"]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_FORWARD, "postgresql": postgres_forward()}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}.get(vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
