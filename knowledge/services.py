"""Writes on knowledge: bases, uploads (validated before anything is queued), ingestion, deletion."""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from bots.llm.errors import ProviderError
from bots.models import Bot
from core.errors import DomainError
from knowledge import sqlite_fts
from knowledge.extraction import (
    ExtractionError,
    PageText,
    TextChunk,
    chunk_pages,
    decode_text,
    detect_kind,
    extract_pages_bounded,
)
from knowledge.models import Chunk, Document, DocumentStatus, KnowledgeBase
from knowledge.vectors import embed_for_storage, pgvector_store

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
EXTENSIONS = {"txt": ".txt", "md": ".md", "html": ".html", "pdf": ".pdf", "docx": ".docx"}
EXTENSIONS_TO_KIND = {extension: kind for kind, extension in EXTENSIONS.items()}
CHUNK_BATCH = 200


class UploadRefused(DomainError):
    code = "upload_refused"


def clean_filename(name: str) -> str:
    """The user's filename as safe metadata: last path part, no control or bidi characters, bounded."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot else name[:200]
    return name or "document"


def _lock_owner(owner_id: int) -> None:
    """Serialise the owner's creations, so two parallel requests cannot both pass a cap's check."""
    User.objects.select_for_update().filter(pk=owner_id).first()


def _check_base_room(owner_id: int) -> None:
    limit = settings.KNOWLEDGE_BASES_PER_USER
    if KnowledgeBase.objects.filter(owner_id=owner_id).count() >= limit:
        raise DomainError(
            _("You have reached the limit of %(n)d knowledge bases; delete one before adding another.") % {"n": limit},
            code="too_many_knowledge_bases",
            status_code=403,
        )


def knowledge_base_get_or_create(*, owner: User, name: str) -> KnowledgeBase:
    name = " ".join(name.split())[:200]
    if not name:
        raise DomainError(_("name: a knowledge base needs a name."), code="invalid")
    base = KnowledgeBase.objects.filter(owner=owner, name=name).first()
    if base is not None:
        return base
    with transaction.atomic():
        _lock_owner(owner.pk)
        base = KnowledgeBase.objects.filter(owner=owner, name=name).first()
        if base is None:
            _check_base_room(owner.pk)
            base = KnowledgeBase.objects.create(owner=owner, name=name)
    return base


def bot_home_base(*, bot: Bot) -> KnowledgeBase:
    """The base that `POST /bots/{id}/train` fills, created and attached on first use."""
    base = KnowledgeBase.objects.filter(home_of=bot, owner_id=bot.owner_id).first()
    if base is None:
        name = f"{bot.name[:150]} [bot {bot.id}]"
        if KnowledgeBase.objects.filter(owner_id=bot.owner_id, name=name).exists():
            name = f"{name} {uuid.uuid4().hex[:6]}"  # the user already named a base so
        with transaction.atomic():
            _lock_owner(bot.owner_id)
            base = KnowledgeBase.objects.filter(home_of=bot, owner_id=bot.owner_id).first()
            if base is None:
                _check_base_room(bot.owner_id)
                base = KnowledgeBase.objects.create(home_of=bot, owner_id=bot.owner_id, name=name)
                base.bots.add(bot)
    return base


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    filename: str
    data: bytes
    kind: str


def _too_large() -> UploadRefused:
    limit = settings.KNOWLEDGE_MAX_FILE_BYTES
    return UploadRefused(
        _("The file is larger than the limit of %(mb)d MB.") % {"mb": max(1, limit // (1024 * 1024))},
        code="file_too_large",
        status_code=413,
    )


def upload_check(*, filename: str, data: bytes) -> CheckedUpload:
    """Everything that can refuse a file, before anything is stored or queued."""
    filename = clean_filename(filename)
    if len(data) > settings.KNOWLEDGE_MAX_FILE_BYTES:
        raise _too_large()
    if not data.strip():
        raise UploadRefused(_("The file %(name)s is empty.") % {"name": filename}, code="empty_file")
    try:
        kind = detect_kind(filename, data[:4096])
        # A byte-order mark can hide an empty text file from the check on raw bytes.
        if kind in ("txt", "md", "html") and not decode_text(data).strip():
            raise UploadRefused(_("The file %(name)s is empty.") % {"name": filename}, code="empty_file")
    except ExtractionError as exc:
        status = 415 if exc.code == "unsupported" else 400
        raise UploadRefused(f"{filename}: {exc}", code=f"file_{exc.code}", status_code=status) from exc
    return CheckedUpload(filename=filename, data=data, kind=kind)


def read_upload(upload: UploadedFile) -> bytes:
    limit = settings.KNOWLEDGE_MAX_FILE_BYTES
    if upload.size is not None and upload.size > limit:
        raise _too_large()
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise _too_large()
    return data


def read_path(*, path: Path) -> bytes:
    """A local file's bytes for an upload (ingest_folder): its size checked before a byte is read."""
    limit = settings.KNOWLEDGE_MAX_FILE_BYTES
    if path.stat().st_size > limit:
        raise _too_large()
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after the stat
        raise _too_large()
    return data


def document_upload(*, knowledge_base: KnowledgeBase, upload: UploadedFile) -> tuple[Document, bool]:
    """Validate and store an upload, then queue its ingestion. Returns (document, created)."""
    return document_store(
        knowledge_base=knowledge_base, checked=upload_check(filename=upload.name or "", data=read_upload(upload))
    )


def bot_train(*, bot: Bot, upload: UploadedFile) -> tuple[Document, bool]:
    """An upload into the bot's own base; a refused file leaves no base behind either."""
    checked = upload_check(filename=upload.name or "", data=read_upload(upload))
    with transaction.atomic():
        return document_store(knowledge_base=bot_home_base(bot=bot), checked=checked)


def _check_storage_room(owner_id: int, size: int) -> None:
    limit = settings.KNOWLEDGE_MAX_BYTES_PER_USER
    used = Document.objects.filter(owner_id=owner_id).aggregate(total=Sum("size"))["total"] or 0
    if used + size > limit:
        raise UploadRefused(
            _(
                "This file does not fit in your %(limit)s MB of document storage (%(used)s MB used); "
                "delete some documents first."
            )
            % {"limit": _megabytes(limit), "used": _megabytes(used)},
            code="storage_full",
            status_code=403,
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")


def document_store(*, knowledge_base: KnowledgeBase, checked: CheckedUpload) -> tuple[Document, bool]:
    """Store a checked file and queue its ingestion; the same file twice in one base is the same document."""
    data, kind = checked.data, checked.kind
    checksum = hashlib.sha256(data).hexdigest()
    existing = Document.objects.filter(knowledge_base=knowledge_base, checksum=checksum).first()
    if existing is not None:
        if existing.status == DocumentStatus.FAILED:
            # The failure text asks the user to upload again: that retries the same document.
            document_reindex(document=existing)
            existing.refresh_from_db()
            return existing, True
        return existing, False
    document = Document(
        knowledge_base=knowledge_base,
        owner_id=knowledge_base.owner_id,
        filename=checked.filename,
        extension=EXTENSIONS[kind],
        content_type=CONTENT_TYPES[kind],
        size=len(data),
        checksum=checksum,
        next_attempt_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            _lock_owner(knowledge_base.owner_id)
            limit = settings.KNOWLEDGE_MAX_DOCUMENTS_PER_BASE
            if Document.objects.filter(knowledge_base=knowledge_base).count() >= limit:
                raise UploadRefused(
                    _("This knowledge base already holds %(n)d documents.") % {"n": limit},
                    code="too_many_documents",
                    status_code=403,
                )
            _check_storage_room(knowledge_base.owner_id, len(data))
            document.file.save(f"{document.id}{document.extension}", ContentFile(data), save=False)
            document.save(force_insert=True)
            _enqueue_on_commit(document.pk)
    except IntegrityError:
        document.file.delete(save=False)
        existing = Document.objects.filter(knowledge_base=knowledge_base, checksum=checksum).first()
        if existing is None:
            raise
        return existing, False
    except BaseException:
        document.file.delete(save=False)  # nothing refers to it: never leave it on disk
        raise
    return document, True


def documents_store_all(*, owner: User, name: str, checked: list[CheckedUpload]) -> list[Document]:
    """Store several checked files into the owner's base `name`, all or nothing (files on disk included)."""
    created: list[Document] = []
    try:
        with transaction.atomic():
            base = knowledge_base_get_or_create(owner=owner, name=name)
            for item in checked:
                document, is_new = document_store(knowledge_base=base, checked=item)
                if is_new:
                    created.append(document)
    except BaseException:
        for document in created:
            document.file.delete(save=False)
        raise
    return created


def _enqueue_on_commit(document_id: uuid.UUID, *, run_after: datetime | None = None) -> None:
    # Robust: a failed enqueue (database or broker down) must not fail the upload that stored the
    # document; the document stays `queued` and reconcile_documents queues it again.
    transaction.on_commit(lambda: _enqueue(document_id, run_after=run_after), robust=True)


def _enqueue(document_id: uuid.UUID, *, run_after: datetime | None = None) -> None:
    from knowledge.tasks import ingest_document

    task = ingest_document
    if run_after is not None:
        if not task.get_backend().supports_defer:
            return  # reconcile_documents queues it once it is due
        task = task.using(run_after=run_after)
    result = task.enqueue(str(document_id))
    Document.objects.filter(pk=document_id, status=DocumentStatus.QUEUED).update(task_id=str(result.id)[:64])


def _task_pending(task_id: str) -> bool:
    """Whether the task meant to ingest a document is still waiting to run; False when unknown or gone."""
    from django_tasks import TaskResultStatus
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch

    from knowledge.tasks import ingest_document

    if not task_id or not ingest_document.get_backend().supports_get_result:
        return False
    try:
        return ingest_document.get_result(task_id).status == TaskResultStatus.READY
    except (TaskResultDoesNotExist, TaskResultMismatch):
        return False


def _last_sign_of_life():
    """When a `processing` document's worker last showed it was alive."""
    return Coalesce("heartbeat_at", "started_at")


def _claim(document_id: str) -> Document | None:
    """Mark a queued (or stale) document as processing; None if a live worker has it, or it is done or gone."""
    with transaction.atomic():
        document = (
            Document.objects.select_for_update().annotate(alive_at=_last_sign_of_life()).filter(pk=document_id).first()
        )
        if document is None or document.status in (DocumentStatus.READY, DocumentStatus.FAILED):
            return None
        stale_before = timezone.now() - timedelta(seconds=settings.KNOWLEDGE_STALE_SECONDS)
        if document.status == DocumentStatus.PROCESSING and document.alive_at and document.alive_at > stale_before:
            return None
        document.status = DocumentStatus.PROCESSING
        document.attempts += 1
        document.started_at = document.heartbeat_at = timezone.now()
        document.progress = 0
        document.error = ""
        document.save(
            update_fields=["status", "attempts", "started_at", "heartbeat_at", "progress", "error", "updated_at"]
        )
    return document


def _heartbeat(document: Document) -> Callable[[], None]:
    """A function that stamps the document's heartbeat, at most every KNOWLEDGE_HEARTBEAT_SECONDS."""
    last = time.monotonic()

    def beat() -> None:
        nonlocal last
        if time.monotonic() - last >= settings.KNOWLEDGE_HEARTBEAT_SECONDS:
            last = time.monotonic()
            Document.objects.filter(pk=document.pk, status=DocumentStatus.PROCESSING).update(
                heartbeat_at=timezone.now()
            )

    return beat


def _set_progress(document: Document, progress: int) -> None:
    now = timezone.now()
    Document.objects.filter(pk=document.pk).update(progress=progress, heartbeat_at=now, updated_at=now)


def _finish(document: Document, status: DocumentStatus, error: str = "") -> None:
    Document.objects.filter(pk=document.pk).update(
        status=status, error=error[:500], progress=100 if status == DocumentStatus.READY else document.progress,
        updated_at=timezone.now(),
    )  # fmt: skip


def document_ingest(*, document_id: str) -> str:
    """Extract, chunk and index one document; idempotent (its chunks are replaced, never duplicated)."""
    document = _claim(document_id)
    if document is None:
        return "skipped"
    beat = _heartbeat(document)
    try:
        with document.file.open("rb") as handle:
            data = handle.read()
        kind = EXTENSIONS_TO_KIND[document.extension]
        pages = extract_pages_bounded(
            data,
            kind,
            seconds=settings.KNOWLEDGE_EXTRACT_SECONDS,
            memory_mb=settings.KNOWLEDGE_EXTRACT_MEMORY_MB,
            on_wait=beat,
            wait_step=settings.KNOWLEDGE_HEARTBEAT_SECONDS,
        )
        del data
        _set_progress(document, 30)
        chunks = chunk_pages(
            pages, target_chars=settings.KNOWLEDGE_CHUNK_CHARS, overlap_chars=settings.KNOWLEDGE_CHUNK_OVERLAP
        )
    except ExtractionError as exc:
        _finish(document, DocumentStatus.FAILED, exc.message)
        return "failed"
    except FileNotFoundError:
        _finish(document, DocumentStatus.FAILED, _("The stored file is missing."))
        return "failed"
    _set_progress(document, 50)
    # Outside any transaction: the embeddings call may take a while. Its failures are retried by the task.
    try:
        embeddings = _embed(chunks, beat)
    except ProviderError:
        # Full-text search still serves the document; `reindex` adds the vectors once the provider is back.
        logger.warning("embeddings unavailable for document %s; indexed for full-text search only", document.pk)
        embeddings = None
    if not _store_chunks(document, chunks, embeddings):
        return "deleted"
    return "ready"


def _embed(chunks: list[TextChunk], beat: Callable[[], None]) -> list[bytes] | None:
    """The chunks' vectors, a batch at a time with a heartbeat between batches; None without a provider."""
    texts = [chunk.text for chunk in chunks]
    vectors: list[bytes] = []
    batch = max(1, settings.EMBEDDINGS_BATCH)
    for start in range(0, len(texts), batch):
        part = embed_for_storage(texts[start : start + batch])
        if part is None:
            return None
        vectors.extend(part)
        beat()
    return vectors or None


def _store_chunks(document: Document, chunks: list[TextChunk], embeddings: list[bytes] | None = None) -> bool:
    """Replace the document's chunks and mark it ready, atomically; False if it was deleted meanwhile."""
    with transaction.atomic():
        if not Document.objects.select_for_update().filter(pk=document.pk).exists():
            return False
        sqlite_fts.unindex_document(owner_id=document.owner_id, document_id=document.pk)
        Chunk.objects.filter(document=document).delete()
        for start in range(0, len(chunks), CHUNK_BATCH):
            Chunk.objects.bulk_create(
                [
                    Chunk(
                        document=document,
                        knowledge_base_id=document.knowledge_base_id,
                        owner_id=document.owner_id,
                        position=chunk.position,
                        page=chunk.page,
                        text=chunk.text,
                        token_count=len(chunk.text.split()),
                        embedding=embeddings[start + offset] if embeddings else None,
                    )
                    for offset, chunk in enumerate(chunks[start : start + CHUNK_BATCH])
                ]
            )
        sqlite_fts.index_document(owner_id=document.owner_id, document_id=document.pk)
        if embeddings:
            _store_pgvectors(document)
        _finish(document, DocumentStatus.READY)
    return True


def _store_pgvectors(document: Document) -> None:
    """Copy the chunks' vectors into the pgvector column, where this database has one of their size."""
    rows = list(Chunk.objects.filter(document=document).values_list("id", "embedding"))
    pgvector_store(connection, "knowledge_chunk", rows)


def document_ingest_text(*, knowledge_base: KnowledgeBase, filename: str, text: str) -> Document:
    """Index text that has no file (benchmarks, imports), through the same chunking and storage."""
    data = text.encode()
    document = Document.objects.create(
        knowledge_base=knowledge_base,
        owner_id=knowledge_base.owner_id,
        filename=clean_filename(filename),
        extension=".txt",
        content_type="text/plain",
        size=len(data),
        checksum=hashlib.sha256(data).hexdigest(),
        status=DocumentStatus.PROCESSING,
        attempts=1,
        started_at=timezone.now(),
    )
    chunks = chunk_pages(
        [PageText(page=None, text=text)],
        target_chars=settings.KNOWLEDGE_CHUNK_CHARS,
        overlap_chars=settings.KNOWLEDGE_CHUNK_OVERLAP,
    )
    _store_chunks(document, chunks, embed_for_storage([chunk.text for chunk in chunks]))
    return document


def retry_delay(attempts: int) -> timedelta:
    """How long the retry after `attempts` failed attempts waits: doubling from the base, capped."""
    seconds = settings.KNOWLEDGE_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.KNOWLEDGE_RETRY_MAX_SECONDS))


def document_retry_or_fail(*, document_id: str) -> str:
    """After an unexpected failure: queue again, later each time, while attempts remain; else fail readably."""
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        return "deleted"
    if document.attempts >= settings.KNOWLEDGE_MAX_ATTEMPTS:
        _finish(document, DocumentStatus.FAILED, _("Ingestion failed repeatedly; upload the file again."))
        return "failed"
    due = timezone.now() + retry_delay(document.attempts)
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.QUEUED, started_at=None, heartbeat_at=None, next_attempt_at=due, task_id=""
    )
    _enqueue_on_commit(document.pk, run_after=due)
    return "retrying"


def documents_reconcile(*, now: datetime | None = None) -> int:
    """Queue again what no worker will finish: `processing` documents without a recent heartbeat (a dead
    worker; retried with backoff, or failed past the attempt limit) and `queued` documents due for
    KNOWLEDGE_STALE_SECONDS whose task is not pending (a lost enqueue). Returns how many it touched."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.KNOWLEDGE_STALE_SECONDS)
    count = 0
    orphans = Document.objects.annotate(alive_at=_last_sign_of_life()).filter(
        status=DocumentStatus.PROCESSING, alive_at__lt=stale_before
    )
    for document_id in orphans.values_list("pk", flat=True):
        document_retry_or_fail(document_id=str(document_id))
        count += 1
    lost = Document.objects.annotate(due_at=Coalesce("next_attempt_at", "updated_at")).filter(
        status=DocumentStatus.QUEUED, due_at__lt=stale_before
    )
    for document_id, task_id in lost.values_list("pk", "task_id"):
        if _task_pending(task_id):
            continue
        Document.objects.filter(pk=document_id).update(next_attempt_at=now, task_id="")
        _enqueue_on_commit(document_id)
        count += 1
    return count


def document_reindex(*, document: Document) -> None:
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.QUEUED,
        attempts=0,
        progress=0,
        error="",
        started_at=None,
        heartbeat_at=None,
        next_attempt_at=timezone.now(),
        task_id="",
    )
    _enqueue_on_commit(document.pk)


def document_delete(*, document: Document) -> None:
    """Deletes the document and its chunks; its file goes once the deletion commits (see signals).

    The row lock waits for an ingestion that is storing chunks, so none of its chunks outlive it.
    """
    with transaction.atomic():
        if Document.objects.select_for_update().filter(pk=document.pk).exists():
            document.delete()


def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    with transaction.atomic():
        list(Document.objects.select_for_update().filter(knowledge_base=knowledge_base).values_list("pk"))
        knowledge_base.delete()
