"""One chat model for every surface: a chat (conversation, session) owns a tree of messages."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Surface(models.TextChoices):
    BYTCHAT = "bytchat", _("Bytchat bot chat (001)")
    LEARNYOUROWN = "learnyourown", _("Learnyourown chat (000)")
    CONVERSATIONS = "conversations", _("Conversations (002)")
    SESSIONS = "sessions", _("Chat sessions (003)")
    CHATS = "chats", _("Chats (004)")
    WIDGET = "widget", _("Web widget")
    OPENAI = "openai", _("OpenAI-compatible API (/v1)")
    MCP = "mcp", _("MCP server (/mcp)")


class ChatQuerySet(models.QuerySet):
    def owned_by(self, user) -> "ChatQuerySet":
        """The chats a user holds; those of a public bot's visitors belong to the visitors (chats.visitors),
        and each /v1 or /mcp call is a record of its own (its client keeps the conversation), not listed."""
        return self.filter(owner=user, visitor_id__isnull=True).exclude(surface__in=(Surface.OPENAI, Surface.MCP))


class Chat(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats", verbose_name=_("owner")
    )
    # Deleting a bot deletes the chats held with it: their prompt and knowledge are gone.
    bot = models.ForeignKey(
        "bots.Bot", on_delete=models.CASCADE, null=True, blank=True, related_name="chats", verbose_name=_("bot")
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    # Business data (003 `context`) given to the model as data, never as instructions.
    context = models.JSONField(_("context"), default=dict, blank=True)
    surface = models.CharField(_("created through"), max_length=20, choices=Surface)
    current_node = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("current node")
    )
    # An anonymous visitor of a public bot (the widget): the chat is theirs; `owner` is the bot's
    # owner, whose quota pays for it.
    visitor_id = models.UUIDField(_("visitor"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ChatQuerySet.as_manager()

    class Meta:
        verbose_name = _("chat")
        verbose_name_plural = _("chats")
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"]), models.Index(fields=["visitor_id"])]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Role(models.TextChoices):
    SYSTEM = "system", _("System")
    USER = "user", _("User")
    ASSISTANT = "assistant", _("Assistant")


class MessageStatus(models.TextChoices):
    # An answer still being written: its text is checkpointed as it streams (chats/runs).
    STREAMING = "streaming", _("Streaming")
    COMPLETE = "complete", _("Complete")
    ERROR = "error", _("Error")
    CANCELLED = "cancelled", _("Cancelled")
    # The process writing it died; the text is what was checkpointed before.
    INTERRUPTED = "interrupted", _("Interrupted")


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages", verbose_name=_("chat"))
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children", verbose_name=_("parent")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role)
    content = models.TextField(_("content"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=MessageStatus, default=MessageStatus.COMPLETE)
    model = models.CharField(_("model"), max_length=200, blank=True)
    finish_reason = models.CharField(_("finish reason"), max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    citations = models.JSONField(_("citations"), default=list, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    # An assistant turn the client wrote (004 `conversations/create` with role Assistant), not the model.
    authored_by_client = models.BooleanField(_("written by the client"), default=False)
    # The bot config's task type whose model answered (`default` when none matched), for feedback by task type.
    task_type = models.CharField(_("task type"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at"]
        indexes = [models.Index(fields=["chat", "created_at"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETE = "complete", _("Complete")
    CANCELLED = "cancelled", _("Cancelled")
    ERROR = "error", _("Error")
    INTERRUPTED = "interrupted", _("Interrupted")


class Run(models.Model):
    """One answer being generated (chats/runs): its event log's position and the lease of the process
    writing it. At most one run per chat is running: that is the chat's answer lock."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="runs", verbose_name=_("chat"))
    question = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+", verbose_name=_("question"))
    # The answer's row exists from the start; an answer that failed before writing anything has none.
    message = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="run", verbose_name=_("answer")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs", verbose_name=_("owner")
    )
    surface = models.CharField(_("asked through"), max_length=20, choices=Surface)
    status = models.CharField(_("status"), max_length=16, choices=RunStatus, default=RunStatus.RUNNING)
    # The sequence number of the run's last event, as of its last checkpoint (the live log may be ahead).
    seq = models.PositiveIntegerField(_("last event"), default=0)
    lease_holder = models.CharField(_("process"), max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    # Asked by a reader that is not served by the process writing the run (POST /runs/{id}/stop).
    stop_requested = models.BooleanField(_("stop requested"), default=False)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    # Why it failed, as its readers were told (an answer that failed before writing has no message to say it).
    error = models.CharField(_("error"), max_length=500, blank=True)
    # The W3C traceparent of the span that started it (core/tracing.py), so that a reader resuming it on
    # any process joins its trace; blank when tracing is off.
    trace_parent = models.CharField(_("trace parent"), max_length=55, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["chat"], condition=models.Q(status="running"), name="one_running_run_per_chat"
            )
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class Rating(models.TextChoices):
    UP = "up", _("Good answer")
    DOWN = "down", _("Bad answer")


class FeedbackTag(models.TextChoices):
    """The fixed list of reasons a rater may pick (several at once)."""

    ACCURATE = "accurate", _("Accurate")
    HELPFUL = "helpful", _("Helpful")
    WELL_CITED = "well_cited", _("Well cited")
    INACCURATE = "inaccurate", _("Inaccurate")
    NOT_HELPFUL = "not_helpful", _("Not helpful")
    INCOMPLETE = "incomplete", _("Incomplete")
    OFF_TOPIC = "off_topic", _("Off topic")
    WRONG_CITATION = "wrong_citation", _("Wrong or missing citation")
    OUTDATED = "outdated", _("Outdated")
    TOO_LONG = "too_long", _("Too long")
    UNSAFE = "unsafe", _("Unsafe or offensive")
    OTHER = "other", _("Other")


class Feedback(models.Model):
    """What the chat's holder (a user, or a widget visitor) thought of one assistant message: one per
    message, replaced when rated again. Bot, model and task type are copied from the answer so that
    feedback can be read per bot, model and task type after the bot changes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("message")
    )
    # The chat's owner (for a visitor's chat: the bot's owner, who reads the feedback).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("owner")
    )
    visitor_id = models.UUIDField(_("visitor"), null=True, blank=True)
    bot = models.ForeignKey(
        "bots.Bot", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("bot")
    )
    model = models.CharField(_("model"), max_length=200, blank=True)
    task_type = models.CharField(_("task type"), max_length=32, blank=True)
    rating = models.CharField(_("rating"), max_length=8, choices=Rating)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"]), models.Index(fields=["bot", "rating"])]

    def __str__(self) -> str:
        return f"{self.rating}: {self.message_id}"


class ShareLink(models.Model):
    """A read-only snapshot of a chat up to one message, reachable by its token. The snapshot is copied
    when the link is made, so the chat going on (or being edited) never changes what the link shows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.CharField(_("token"), max_length=64, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links", verbose_name=_("owner")
    )
    # Deleting the chat deletes its links: the owner expects a deleted chat to be gone everywhere.
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="share_links", verbose_name=_("chat"))
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("up to message")
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    # The messages on the path to `message`, root first: [{"role", "content", "created_at", "citations"?}].
    snapshot = models.JSONField(_("snapshot"), default=list, editable=False)
    include_citations = models.BooleanField(_("include citations"), default=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("share link")
        verbose_name_plural = _("share links")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.title or str(self.id)


class MessageSearchEntry(models.Model):
    """A searchable message (chats/search): its owner and filters beside it, so that a search reads no chat.

    Kept by database triggers on chats_message (migration 0009), never by the ORM: a message is indexed once
    it is no longer streaming, re-indexed when its text changes, and dropped with it. Owner, chat and bot are
    copied from its chat, which never changes them. On PostgreSQL the row holds the message's tsvector; on
    SQLite its id is the message's rowid in the FTS5 index `chats_message_fts`.
    """

    id = models.BigAutoField(primary_key=True)
    message = models.OneToOneField(
        Message, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", verbose_name=_("message")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("owner"),
    )
    chat = models.ForeignKey(
        Chat, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", verbose_name=_("chat")
    )
    bot_id = models.UUIDField(_("bot"), null=True, blank=True)
    surface = models.CharField(_("created through"), max_length=20, choices=Surface)
    role = models.CharField(_("role"), max_length=16, choices=Role)
    visitor = models.BooleanField(_("a visitor's chat"), default=False)
    created_at = models.DateTimeField(_("created at"))
    # PostgreSQL: the lexemes' positions counted (BM25's document length); 0 on SQLite.
    token_count = models.PositiveIntegerField(_("tokens"), default=0)
    # Unit-length float32 vector of the message's text, stored by a background task when an embeddings
    # provider is configured (chats/search/embeddings.py). An entry is made anew when its text changes, so a
    # vector always belongs to the text the entry indexes.
    embedding = models.BinaryField(_("embedding"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("message search entry")
        verbose_name_plural = _("message search entries")
        indexes = [
            models.Index(fields=["owner", "created_at"]),
            # The entries still waiting for their vector, oldest first.
            models.Index(fields=["id"], condition=models.Q(embedding__isnull=True), name="message_search_unembedded"),
        ]

    def __str__(self) -> str:
        return str(self.message_id)


class MessageSearchStats(models.Model):
    """An owner's searchable messages and their total length: BM25's N and average length (PostgreSQL).

    Kept by a trigger on chats_messagesearchentry (migration 0009), like knowledge's per-base statistics."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        primary_key=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    message_count = models.BigIntegerField(_("messages"), default=0)
    token_total = models.BigIntegerField(_("tokens"), default=0)

    class Meta:
        verbose_name = _("message search statistics")
        verbose_name_plural = _("message search statistics")

    def __str__(self) -> str:
        return f"{self.owner_id}: {self.message_count}"


class MessageSearchTerm(models.Model):
    """How many of an owner's searchable messages hold a lexeme: BM25's document frequency (PostgreSQL)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("owner"),
    )
    lexeme = models.TextField(_("lexeme"))
    document_frequency = models.BigIntegerField(_("messages holding it"))

    class Meta:
        verbose_name = _("message search term")
        verbose_name_plural = _("message search terms")
        constraints = [models.UniqueConstraint(fields=["owner", "lexeme"], name="message_term_once_per_owner")]

    def __str__(self) -> str:
        return self.lexeme
