"""Knowledge bases, their documents, and the chunks retrieval searches."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class KnowledgeBase(models.Model):
    """A user's named collection of documents (the 000 surface's "name", e.g. a school subject)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_bases", verbose_name=_("owner")
    )
    name = models.CharField(_("name"), max_length=200)
    bots = models.ManyToManyField("bots.Bot", blank=True, related_name="knowledge_bases", verbose_name=_("bots"))
    # The base that `POST /bots/{id}/train` fills; deleted with its bot.
    home_of = models.OneToOneField(
        "bots.Bot",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="home_knowledge_base",
        verbose_name=_("training base of"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("knowledge base")
        verbose_name_plural = _("knowledge bases")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="knowledge_base_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class DocumentStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    PROCESSING = "processing", _("Processing")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


def document_upload_path(document: "Document", filename: str) -> str:
    # Server-chosen names only: the user's filename is metadata, never a path (docs/reliability.md D3).
    return f"knowledge/{document.owner_id}/{document.id}{document.extension}"


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    knowledge_base = models.ForeignKey(
        KnowledgeBase, on_delete=models.CASCADE, related_name="documents", verbose_name=_("knowledge base")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents", verbose_name=_("owner")
    )
    # Blank only for text ingested without a file (the retrieval benchmark).
    file = models.FileField(_("file"), upload_to=document_upload_path, max_length=300, blank=True)
    filename = models.CharField(_("filename"), max_length=255)
    extension = models.CharField(_("extension"), max_length=10)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size"))
    checksum = models.CharField(_("SHA-256"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=DocumentStatus, default=DocumentStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    error = models.CharField(_("error"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    # Stamped by the ingesting worker while it works; reconcile_documents re-queues a `processing` document without one.
    heartbeat_at = models.DateTimeField(_("heartbeat at"), null=True, blank=True)
    # When a `queued` document is due: now for an upload, later for a retry that backs off.
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # The task result meant to ingest it, so reconcile_documents can tell a pending task from a lost one.
    task_id = models.CharField(_("task"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["knowledge_base", "checksum"], name="knowledge_document_once_per_base")
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"]), models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return self.filename


class Chunk(models.Model):
    """A passage of a document. Full-text indexes live beside it (see the 0002 migration)."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks", verbose_name=_("document"))
    # Copied from the document so retrieval filters by owner inside the index query (docs/reliability.md D9).
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(_("position"))
    page = models.PositiveIntegerField(_("page"), null=True, blank=True)
    text = models.TextField(_("text"))
    token_count = models.PositiveIntegerField(_("tokens"))
    # Unit-length float32 vector from the embeddings provider, when one is configured.
    embedding = models.BinaryField(_("embedding"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("chunk")
        verbose_name_plural = _("chunks")
        ordering = ["document", "position"]
        indexes = [models.Index(fields=["owner", "knowledge_base"])]
        constraints = [models.UniqueConstraint(fields=["document", "position"], name="knowledge_chunk_position")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"


class KnowledgeBaseTextStats(models.Model):
    """A base's chunk count and token total, for BM25's N and average length (PostgreSQL).

    Kept by a trigger on knowledge_chunk (migration 0007) in the same transaction as the chunks, so
    ranking reads a few small rows instead of scanning the base (knowledge/bm25.py). Empty on SQLite,
    where each owner's FTS5 index keeps its own statistics (knowledge/sqlite_fts.py).
    """

    knowledge_base = models.OneToOneField(
        KnowledgeBase, on_delete=models.CASCADE, primary_key=True, related_name="+", verbose_name=_("knowledge base")
    )
    chunk_count = models.BigIntegerField(_("chunks"), default=0)
    token_total = models.BigIntegerField(_("tokens"), default=0)

    class Meta:
        verbose_name = _("knowledge base text statistics")
        verbose_name_plural = _("knowledge base text statistics")

    def __str__(self) -> str:
        return f"{self.knowledge_base_id}: {self.chunk_count} chunks"


class KnowledgeBaseTerm(models.Model):
    """How many of a base's chunks hold a lexeme: BM25's document frequency (PostgreSQL, see above)."""

    knowledge_base = models.ForeignKey(
        KnowledgeBase, on_delete=models.CASCADE, related_name="+", verbose_name=_("knowledge base")
    )
    lexeme = models.TextField(_("lexeme"))
    document_frequency = models.BigIntegerField(_("chunks holding it"))

    class Meta:
        verbose_name = _("knowledge base term")
        verbose_name_plural = _("knowledge base terms")
        constraints = [
            models.UniqueConstraint(fields=["knowledge_base", "lexeme"], name="knowledge_term_once_per_base")
        ]

    def __str__(self) -> str:
        return f"{self.lexeme} ({self.document_frequency})"
