"""On PostgreSQL with the pgvector extension available: a vector column with an HNSW index."""

from django.conf import settings
from django.db import migrations


def forward(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is None:
            return  # no pgvector on this server: exact cosine with numpy serves instead
    dimensions = int(settings.EMBEDDINGS_DIMENSIONS)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS vector")
    schema_editor.execute(f"ALTER TABLE knowledge_chunk ADD COLUMN embedding_vec vector({dimensions})")
    schema_editor.execute(
        "CREATE INDEX knowledge_chunk_embedding_hnsw ON knowledge_chunk "
        "USING hnsw (embedding_vec vector_cosine_ops)"
    )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS knowledge_chunk_embedding_hnsw")
        schema_editor.execute("ALTER TABLE knowledge_chunk DROP COLUMN IF EXISTS embedding_vec")


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0003_chunk_embedding")]
    operations = [migrations.RunPython(forward, backward)]
