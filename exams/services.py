"""Writes on exams: make one (material, questions, PDF, then the rows in one transaction) and delete one.

The PDF is rendered once, before anything is stored, in the request's active language, and kept
in the row (`Exam.pdf`), so `get_exam` only reads it; if generation or rendering fails nothing is
stored. Titles are unique per owner (a database constraint), and a title that is taken, also
ignoring case and accents, gets the next number ("Biología (2)"); when a parallel request takes
the same title first, the insert fails on the constraint and the next number is tried (the PDF is
rendered again, since it shows the title).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from core.connections import database_connection_release
from core.errors import Conflict, DomainError
from exams.generation import questions_generate
from exams.generation.text import fold
from exams.generation.types import Draft, ExamSpec, Generated, Material
from exams.models import SUBJECT_MAX_LENGTH, TITLE_MAX_LENGTH, Exam, Question
from exams.rendering import exam_html, html_to_pdf
from exams.selectors import exam_count, exam_material, exam_titles, normalize_title

TITLE_ATTEMPTS = 10


def _check_room(owner: User) -> None:
    if exam_count(owner=owner) >= settings.EXAMS_PER_USER:
        raise Conflict(
            _("You have %(n)d exams, the most allowed; delete some before making another.")
            % {"n": settings.EXAMS_PER_USER},
            code="exam_limit",
        )


def _numbered(base: str) -> Iterator[str]:
    yield base
    number = 2
    while True:
        suffix = f" ({number})"
        yield base[: TITLE_MAX_LENGTH - len(suffix)] + suffix
        number += 1


def _free_title(owner: User, base: str) -> str:
    taken = exam_titles(owner=owner)
    return next(title for title in _numbered(base) if fold(title) not in taken)


def _store(*, owner: User, title: str, spec: ExamSpec, material: Material, generated: Generated, **row) -> Exam:
    with transaction.atomic():
        # Serialises one owner's inserts, so the count below holds (SQLite's IMMEDIATE transactions already do).
        list(User.objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True))
        _check_room(owner)
        exam = Exam.objects.create(
            owner=owner,
            title=title,
            subject=spec.subject,
            difficulty=spec.difficulty,
            hints=spec.hints,
            question_count=len(generated.drafts),
            knowledge_base_name=material.knowledge_base_name,
            model=generated.model[:200],
            **row,
        )
        Question.objects.bulk_create(_question(exam, number, draft) for number, draft in enumerate(generated.drafts, 1))
    return exam


def _question(exam: Exam, number: int, draft: Draft) -> Question:
    return Question(
        exam=exam,
        position=number,
        text=draft.text,
        options=list(draft.options),
        answer_index=draft.answer_index,
        hint=draft.hint,
        explanation=draft.explanation,
        source_document_id=draft.source.document_id,
        source_filename=draft.source.filename[:255],
        source_page=draft.source.page,
        source_excerpt=draft.excerpt,
    )


def exam_create(
    *, owner: User, subject: str, question_count: int, difficulty: str, hints: bool, title: str | None = None
) -> Exam:
    subject = normalize_title(subject)
    if not subject or len(subject) > SUBJECT_MAX_LENGTH:
        raise DomainError(
            _("subject: give a subject of 1 to %(n)d characters.") % {"n": SUBJECT_MAX_LENGTH}, code="invalid"
        )
    if not 1 <= question_count <= settings.EXAM_MAX_QUESTIONS:
        raise DomainError(
            _("questions: ask for 1 to %(n)d questions.") % {"n": settings.EXAM_MAX_QUESTIONS}, code="invalid"
        )
    _check_room(owner)
    material = exam_material(owner=owner, subject=subject)
    if not material.passages:
        raise DomainError(
            _(
                "subject: there is no material about “%(subject)s”: load documents under that name "
                "(/load_context) or about that subject first."
            )
            % {"subject": subject[:100]},
            code="no_material",
        )
    spec = ExamSpec(subject=subject, question_count=question_count, difficulty=difficulty, hints=hints)
    generated = questions_generate(user=owner, spec=spec, material=material)
    created_at = timezone.now()
    base_title = normalize_title(title or "") or subject
    for _attempt in range(TITLE_ATTEMPTS):
        candidate = _free_title(owner, base_title)
        html = exam_html(
            title=candidate,
            subject=subject,
            difficulty=difficulty,
            hints=hints,
            created_at=created_at,
            drafts=generated.drafts,
        )
        database_connection_release()
        pdf = html_to_pdf(html)
        try:
            return _store(
                owner=owner,
                title=candidate,
                spec=spec,
                material=material,
                generated=generated,
                pdf=pdf,
                created_at=created_at,
                language=translation.get_language() or settings.LANGUAGE_CODE,
            )
        except IntegrityError:
            continue  # a parallel request took this title first: the next number
    raise Conflict(_("Could not find a free title for the exam; try again."), code="title_taken")


def exam_delete(*, exam: Exam) -> None:
    exam.delete()
