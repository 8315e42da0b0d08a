"""Search over one's own messages (chats/search, docs/search.md): an entry per searchable message kept by
triggers on chats_message, in each database's own full-text engine.

A message is searchable once it is no longer streaming, is a user's or an assistant's, and has text. The
triggers index it when it is stored that way or when it gets there (an answer ending), index it again when
its text changes, and drop it with the message: every path that writes messages is covered, the ORM's and
raw SQL alike, and an answer's checkpoints while it streams cost one WHEN test.

PostgreSQL: the entry holds the message's tsvector (GIN-indexed) and its length; statement triggers on the
entries keep each owner's message count, length total and lexeme frequencies (MessageSearchStats,
MessageSearchTerm) under a per-owner advisory lock, as knowledge's per-base statistics are kept.

Each entry's tsvector also holds the lexeme `owner <id>` (the parser never makes one with a space), so that
the GIN index finds an owner's matches without reading anyone else's; the statistics leave it out.

SQLite: one contentless FTS5 index, `chats_message_fts`, whose rowid is the entry's id. Beside the text it
indexes the owner as a token (`o<id>`) so that a search intersects the owner's postings in the index
instead of ranking everyone's matches first.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

LOCK_NAMESPACE = 7172  # the first key of pg_advisory_xact_lock(int, int): message search statistics


def postgres_forward() -> list[str]:
    language = settings.KNOWLEDGE_FTS_LANGUAGE
    return [
        "ALTER TABLE chats_messagesearchentry ADD COLUMN tsv tsvector NOT NULL",
        "CREATE INDEX chats_messagesearchentry_tsv_gin ON chats_messagesearchentry USING GIN (tsv)",
        # Inserts and deletes are indexed a statement at a time, so that a bulk write (a fork, a chat deleted)
        # updates the owner's statistics once, not once per message in one long transaction.
        f"""
        CREATE FUNCTION chats_message_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO chats_messagesearchentry
                (message_id, owner_id, chat_id, bot_id, surface, role, visitor, created_at, tsv, token_count)
            SELECT n.id, c.owner_id, c.id, c.bot_id, c.surface, n.role, c.visitor_id IS NOT NULL, n.created_at,
                   v.tsv || array_to_tsvector(ARRAY['owner ' || c.owner_id]),
                   (SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0) FROM unnest(v.tsv))
            FROM new_rows AS n
            JOIN chats_chat AS c ON c.id = n.chat_id
            CROSS JOIN LATERAL (SELECT to_tsvector('{language}'::regconfig, n.content) AS tsv) AS v
            WHERE n.status <> 'streaming' AND n.role IN ('user', 'assistant') AND n.content <> '';
            RETURN NULL;
        END
        $$
        """,  # noqa: S608 (only settings and constants are interpolated)
        """
        CREATE FUNCTION chats_message_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM chats_messagesearchentry WHERE message_id IN (SELECT id FROM old_rows);
            RETURN NULL;
        END
        $$
        """,
        # An update re-indexes its row; an answer's checkpoints while it streams (status `streaming` before
        # and after) are not indexed, and cost the WHEN test alone.
        f"""
        CREATE FUNCTION chats_message_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM chats_messagesearchentry WHERE message_id = OLD.id;
            IF NEW.status <> 'streaming' AND NEW.role IN ('user', 'assistant') AND NEW.content <> '' THEN
                INSERT INTO chats_messagesearchentry
                    (message_id, owner_id, chat_id, bot_id, surface, role, visitor, created_at, tsv, token_count)
                SELECT NEW.id, c.owner_id, c.id, c.bot_id, c.surface, NEW.role, c.visitor_id IS NOT NULL,
                       NEW.created_at, v.tsv || array_to_tsvector(ARRAY['owner ' || c.owner_id]),
                       (SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0) FROM unnest(v.tsv))
                FROM chats_chat AS c
                CROSS JOIN LATERAL (SELECT to_tsvector('{language}'::regconfig, NEW.content) AS tsv) AS v
                WHERE c.id = NEW.chat_id;
            END IF;
            RETURN NULL;
        END
        $$
        """,  # noqa: S608 (as above)
        "CREATE TRIGGER chats_message_search_insert AFTER INSERT ON chats_message "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chats_message_search_insert()",
        "CREATE TRIGGER chats_message_search_delete AFTER DELETE ON chats_message "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chats_message_search_delete()",
        "CREATE TRIGGER chats_message_search_update AFTER UPDATE OF content, status, role, created_at "
        "ON chats_message FOR EACH ROW WHEN (OLD.status <> 'streaming' OR NEW.status <> 'streaming') "
        "EXECUTE FUNCTION chats_message_search_update()",
        f"""
        CREATE FUNCTION chats_message_search_stats() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_advisory_xact_lock({LOCK_NAMESPACE}, hashtext(owner_id::text))
                FROM (SELECT DISTINCT owner_id FROM old_rows ORDER BY 1) AS owners;
                UPDATE chats_messagesearchstats AS s
                SET message_count = s.message_count - d.messages, token_total = s.token_total - d.tokens
                FROM (SELECT owner_id, count(*) AS messages, sum(token_count) AS tokens FROM old_rows GROUP BY 1) AS d
                WHERE s.owner_id = d.owner_id;
                UPDATE chats_messagesearchterm AS t SET document_frequency = t.document_frequency - d.messages
                FROM (SELECT o.owner_id, u.lexeme, count(*) AS messages
                      FROM old_rows AS o CROSS JOIN LATERAL unnest(o.tsv) AS u
                      WHERE u.lexeme NOT LIKE 'owner %%' GROUP BY 1, 2) AS d
                WHERE t.owner_id = d.owner_id AND t.lexeme = d.lexeme;
                DELETE FROM chats_messagesearchterm AS t
                USING (SELECT DISTINCT o.owner_id, u.lexeme
                       FROM old_rows AS o CROSS JOIN LATERAL unnest(o.tsv) AS u WHERE u.lexeme NOT LIKE 'owner %%') AS d
                WHERE t.owner_id = d.owner_id AND t.lexeme = d.lexeme AND t.document_frequency <= 0;
            END IF;
            IF TG_OP = 'INSERT' THEN
                PERFORM pg_advisory_xact_lock({LOCK_NAMESPACE}, hashtext(owner_id::text))
                FROM (SELECT DISTINCT owner_id FROM new_rows ORDER BY 1) AS owners;
                INSERT INTO chats_messagesearchstats AS s (owner_id, message_count, token_total)
                SELECT owner_id, count(*), sum(token_count) FROM new_rows GROUP BY 1
                ON CONFLICT (owner_id) DO UPDATE
                SET message_count = s.message_count + excluded.message_count,
                    token_total = s.token_total + excluded.token_total;
                INSERT INTO chats_messagesearchterm AS t (owner_id, lexeme, document_frequency)
                SELECT n.owner_id, u.lexeme, count(*) FROM new_rows AS n CROSS JOIN LATERAL unnest(n.tsv) AS u
                WHERE u.lexeme NOT LIKE 'owner %%' GROUP BY 1, 2
                ON CONFLICT (owner_id, lexeme) DO UPDATE
                SET document_frequency = t.document_frequency + excluded.document_frequency;
            END IF;
            RETURN NULL;
        END
        $$
        """,  # noqa: S608 (only settings and constants are interpolated)
        "CREATE TRIGGER chats_message_search_stats_insert AFTER INSERT ON chats_messagesearchentry "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chats_message_search_stats()",
        "CREATE TRIGGER chats_message_search_stats_delete AFTER DELETE ON chats_messagesearchentry "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chats_message_search_stats()",
        # The messages stored before this migration.
        f"""
        INSERT INTO chats_messagesearchentry
            (message_id, owner_id, chat_id, bot_id, surface, role, visitor, created_at, tsv, token_count)
        SELECT m.id, c.owner_id, c.id, c.bot_id, c.surface, m.role, c.visitor_id IS NOT NULL, m.created_at,
               v.tsv || array_to_tsvector(ARRAY['owner ' || c.owner_id]),
               (SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0) FROM unnest(v.tsv))
        FROM chats_message AS m JOIN chats_chat AS c ON c.id = m.chat_id
        CROSS JOIN LATERAL (SELECT to_tsvector('{language}'::regconfig, m.content) AS tsv) AS v
        WHERE m.status <> 'streaming' AND m.role IN ('user', 'assistant') AND m.content <> ''
        """,  # noqa: S608 (as above)
    ]


POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS chats_message_search_stats_delete ON chats_messagesearchentry",
    "DROP TRIGGER IF EXISTS chats_message_search_stats_insert ON chats_messagesearchentry",
    "DROP FUNCTION IF EXISTS chats_message_search_stats()",
    "DROP TRIGGER IF EXISTS chats_message_search_update ON chats_message",
    "DROP TRIGGER IF EXISTS chats_message_search_delete ON chats_message",
    "DROP TRIGGER IF EXISTS chats_message_search_insert ON chats_message",
    "DROP FUNCTION IF EXISTS chats_message_search_update()",
    "DROP FUNCTION IF EXISTS chats_message_search_delete()",
    "DROP FUNCTION IF EXISTS chats_message_search_insert()",
]

# The same tokenizer as knowledge's indexes (knowledge/sqlite_fts.py).
SQLITE_TOKENIZER = "porter unicode61 remove_diacritics 2"
_SQLITE_ENTRY = (
    "INSERT INTO chats_messagesearchentry (message_id, owner_id, chat_id, bot_id, surface, role, visitor, "
    "created_at, token_count) SELECT new.id, c.owner_id, c.id, c.bot_id, c.surface, new.role, "
    "c.visitor_id IS NOT NULL, new.created_at, 0 FROM chats_chat AS c WHERE c.id = new.chat_id "
    "AND new.status <> 'streaming' AND new.role IN ('user', 'assistant') AND new.content <> ''; "
    "INSERT INTO chats_message_fts (rowid, content, owner) SELECT s.id, new.content, 'o' || s.owner_id "
    "FROM chats_messagesearchentry AS s WHERE s.message_id = new.id; "
)
# A contentless index forgets a row only when told the text it indexed: the entry exists only if it was indexed.
_SQLITE_FORGET = (
    "INSERT INTO chats_message_fts (chats_message_fts, rowid, content, owner) "
    "SELECT 'delete', s.id, old.content, 'o' || s.owner_id FROM chats_messagesearchentry AS s "
    "WHERE s.message_id = old.id; "
    "DELETE FROM chats_messagesearchentry WHERE message_id = old.id; "
)
SQLITE_FORWARD = [
    f"CREATE VIRTUAL TABLE chats_message_fts USING fts5(content, owner, content='', tokenize='{SQLITE_TOKENIZER}')",
    f"CREATE TRIGGER chats_message_search_insert AFTER INSERT ON chats_message BEGIN {_SQLITE_ENTRY}END",
    f"CREATE TRIGGER chats_message_search_delete AFTER DELETE ON chats_message BEGIN {_SQLITE_FORGET}END",
    "CREATE TRIGGER chats_message_search_update AFTER UPDATE OF content, status, role, created_at ON chats_message "
    f"WHEN old.status <> 'streaming' OR new.status <> 'streaming' BEGIN {_SQLITE_FORGET}{_SQLITE_ENTRY}END",
    "INSERT INTO chats_messagesearchentry (message_id, owner_id, chat_id, bot_id, surface, role, visitor, "
    "created_at, token_count) SELECT m.id, c.owner_id, c.id, c.bot_id, c.surface, m.role, c.visitor_id IS NOT NULL, "
    "m.created_at, 0 FROM chats_message AS m JOIN chats_chat AS c ON c.id = m.chat_id "
    "WHERE m.status <> 'streaming' AND m.role IN ('user', 'assistant') AND m.content <> ''",
    "INSERT INTO chats_message_fts (rowid, content, owner) SELECT s.id, m.content, 'o' || s.owner_id "
    "FROM chats_messagesearchentry AS s JOIN chats_message AS m ON m.id = s.message_id",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS chats_message_search_update",
    "DROP TRIGGER IF EXISTS chats_message_search_delete",
    "DROP TRIGGER IF EXISTS chats_message_search_insert",
    "DROP TABLE IF EXISTS chats_message_fts",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"sqlite": SQLITE_FORWARD, "postgresql": postgres_forward()}.get(vendor, []):
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}.get(vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_emails_normalized"),
        ("chats", "0008_feedback_share_links"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="MessageSearchStats",
            fields=[
                (
                    "owner",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="owner",
                    ),
                ),
                ("message_count", models.BigIntegerField(default=0, verbose_name="messages")),
                ("token_total", models.BigIntegerField(default=0, verbose_name="tokens")),
            ],
            options={
                "verbose_name": "message search statistics",
                "verbose_name_plural": "message search statistics",
            },
        ),
        migrations.CreateModel(
            name="MessageSearchEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("bot_id", models.UUIDField(blank=True, null=True, verbose_name="bot")),
                (
                    "surface",
                    models.CharField(
                        choices=[
                            ("bytchat", "Bytchat bot chat (001)"),
                            ("learnyourown", "Learnyourown chat (000)"),
                            ("conversations", "Conversations (002)"),
                            ("sessions", "Chat sessions (003)"),
                            ("chats", "Chats (004)"),
                            ("widget", "Web widget"),
                            ("openai", "OpenAI-compatible API (/v1)"),
                            ("mcp", "MCP server (/mcp)"),
                        ],
                        max_length=20,
                        verbose_name="created through",
                    ),
                ),
                (
                    "role",
                    models.CharField(
                        choices=[("system", "System"), ("user", "User"), ("assistant", "Assistant")],
                        max_length=16,
                        verbose_name="role",
                    ),
                ),
                ("visitor", models.BooleanField(default=False, verbose_name="a visitor's chat")),
                ("created_at", models.DateTimeField(verbose_name="created at")),
                ("token_count", models.PositiveIntegerField(default=0, verbose_name="tokens")),
                (
                    "chat",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="chats.chat",
                        verbose_name="chat",
                    ),
                ),
                (
                    "message",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="chats.message",
                        verbose_name="message",
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="owner",
                    ),
                ),
            ],
            options={
                "verbose_name": "message search entry",
                "verbose_name_plural": "message search entries",
                "indexes": [models.Index(fields=["owner", "created_at"], name="chats_messa_owner_i_e431df_idx")],
            },
        ),
        migrations.CreateModel(
            name="MessageSearchTerm",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("lexeme", models.TextField(verbose_name="lexeme")),
                ("document_frequency", models.BigIntegerField(verbose_name="messages holding it")),
                (
                    "owner",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="owner",
                    ),
                ),
            ],
            options={
                "verbose_name": "message search term",
                "verbose_name_plural": "message search terms",
                "constraints": [
                    models.UniqueConstraint(fields=("owner", "lexeme"), name="message_term_once_per_owner")
                ],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
