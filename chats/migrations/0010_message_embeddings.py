"""Vectors for message search (chats/search/embeddings.py): a column on the entries, an index of the entries
still waiting for theirs and, on PostgreSQL with the pgvector extension available, a vector column with an
HNSW index (as knowledge's migration 0004 gives chunks)."""

from django.conf import settings
from django.db import migrations, models


def pgvector_forward(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is None:
            return  # no pgvector on this server: exact cosine with numpy serves instead
    dimensions = int(settings.EMBEDDINGS_DIMENSIONS)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS vector")
    schema_editor.execute(f"ALTER TABLE chats_messagesearchentry ADD COLUMN embedding_vec vector({dimensions})")
    schema_editor.execute(
        "CREATE INDEX chats_messagesearchentry_embedding_hnsw ON chats_messagesearchentry "
        "USING hnsw (embedding_vec vector_cosine_ops)"
    )


def pgvector_backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS chats_messagesearchentry_embedding_hnsw")
        schema_editor.execute("ALTER TABLE chats_messagesearchentry DROP COLUMN IF EXISTS embedding_vec")


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0009_message_search"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="messagesearchentry",
            name="embedding",
            field=models.BinaryField(blank=True, null=True, verbose_name="embedding"),
        ),
        migrations.AddIndex(
            model_name="messagesearchentry",
            index=models.Index(
                condition=models.Q(("embedding__isnull", True)), fields=["id"], name="message_search_unembedded"
            ),
        ),
        migrations.RunPython(pgvector_forward, pgvector_backward),
    ]
