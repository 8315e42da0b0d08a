"""Reads on exams, scoped to the owner (another user's exam does not exist), and the material for a new one."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from core.errors import NotFound
from exams.generation.text import fold
from exams.generation.types import Material
from exams.models import Exam
from knowledge.models import Chunk, KnowledgeBase
from knowledge.retrieval import Passage, search

# A base's first chunks in reading order; enough for EXAM_MAX_QUESTIONS questions, bounded for big bases.
MATERIAL_MAX_CHUNKS = 400
# Passages a search over all of the user's documents contributes when no base is named by the subject.
MATERIAL_SEARCH_PASSAGES = 40


def normalize_title(text: str) -> str:
    return " ".join(text.split())


def exam_list(*, owner: User) -> QuerySet[Exam]:
    """The owner's exams, newest first, without their PDFs."""
    return Exam.objects.filter(owner=owner).defer("pdf").order_by("-created_at", "-id")


def exam_get(*, owner: User, exam_id: uuid.UUID | str) -> Exam:
    exam = Exam.objects.filter(owner=owner, pk=exam_id).defer("pdf").first()
    if exam is None:
        raise NotFound(_("Exam not found."), code="exam_not_found")
    return exam


def exam_get_by_title(*, owner: User, title: str) -> Exam:
    """The owner's exam with this title: exact first, else the one whose title matches ignoring case and accents."""
    wanted = normalize_title(title)
    exam = Exam.objects.filter(owner=owner, title=wanted).first()
    if exam is None:
        folded = fold(wanted)
        matches = [
            pk for pk, name in Exam.objects.filter(owner=owner).values_list("pk", "title") if fold(name) == folded
        ]
        if len(matches) == 1:
            exam = Exam.objects.get(pk=matches[0])
    if exam is None:
        raise NotFound(_("Exam not found."), code="exam_not_found")
    return exam


def exam_titles(*, owner: User) -> set[str]:
    """The owner's titles, folded: a new title must differ from each in more than case and accents."""
    return {fold(title) for title in Exam.objects.filter(owner=owner).values_list("title", flat=True)}


def exam_count(*, owner: User) -> int:
    return Exam.objects.filter(owner=owner).count()


def knowledge_base_for_subject(*, owner: User, subject: str) -> KnowledgeBase | None:
    """The owner's base whose name is the subject, ignoring case and runs of whitespace (then accents too)."""
    wanted = normalize_title(subject)
    bases = list(KnowledgeBase.objects.filter(owner=owner).only("id", "name").order_by("created_at"))
    for same in (lambda name: name.casefold() == wanted.casefold(), lambda name: fold(name) == fold(wanted)):
        for base in bases:
            if same(normalize_title(base.name)):
                return base
    return None


def exam_material(*, owner: User, subject: str) -> Material:
    """The passages of the base named by the subject, or else a search of all the owner's documents for it."""
    base = knowledge_base_for_subject(owner=owner, subject=subject)
    if base is None:
        passages = search(owner_id=owner.pk, query=subject, limit=MATERIAL_SEARCH_PASSAGES)
        return Material(passages=tuple(passages))
    chunks = (
        Chunk.objects.filter(owner=owner, knowledge_base=base)
        .select_related("document")
        .only("id", "position", "page", "text", "document__id", "document__filename", "document__created_at")
        .order_by("document__created_at", "document_id", "position")[:MATERIAL_MAX_CHUNKS]
    )
    passages = tuple(
        Passage(
            chunk_id=chunk.pk,
            document_id=chunk.document.id,
            filename=chunk.document.filename,
            page=chunk.page,
            position=chunk.position,
            text=chunk.text,
            score=0.0,
        )
        for chunk in chunks
    )
    return Material(passages=passages, knowledge_base_name=base.name)
