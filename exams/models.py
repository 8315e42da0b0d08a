"""Exams made from a user's documents: the questions, and the PDF rendered once when the exam is made."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SUBJECT_MAX_LENGTH = 200
# Room for the numbered variant of a title that is already taken ("Biología (500)").
TITLE_MAX_LENGTH = SUBJECT_MAX_LENGTH + 20


class Difficulty(models.TextChoices):
    EASY = "easy", _("Easy")
    MEDIUM = "medium", _("Medium")
    HARD = "hard", _("Hard")


class Exam(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exams", verbose_name=_("owner")
    )
    title = models.CharField(_("title"), max_length=TITLE_MAX_LENGTH)
    subject = models.CharField(_("subject"), max_length=SUBJECT_MAX_LENGTH)
    difficulty = models.CharField(_("difficulty"), max_length=10, choices=Difficulty)
    hints = models.BooleanField(_("hints"), default=False)
    question_count = models.PositiveSmallIntegerField(_("questions"))
    # The knowledge base the questions came from; empty when they came from a search of all documents.
    knowledge_base_name = models.CharField(_("knowledge base"), max_length=200, blank=True)
    model = models.CharField(_("model"), max_length=200)
    language = models.CharField(_("language"), max_length=10)
    # Rendered once, when the exam is made; lists defer it.
    pdf = models.BinaryField(_("PDF"), editable=False)
    # Not auto_now_add: the PDF shows this date and is rendered before the row is saved.
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("exam")
        verbose_name_plural = _("exams")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "title"], name="exam_title_per_owner")]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class Question(models.Model):
    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="questions", verbose_name=_("exam"))
    position = models.PositiveSmallIntegerField(_("number"))
    text = models.TextField(_("question"))
    options = models.JSONField(_("options"))
    answer_index = models.PositiveSmallIntegerField(_("correct option"))
    hint = models.TextField(_("hint"), blank=True)
    explanation = models.TextField(_("explanation"), blank=True)
    # The passage the question was made from, copied: the document may be deleted later.
    source_document_id = models.UUIDField(_("source document"), null=True, blank=True)
    source_filename = models.CharField(_("source file"), max_length=255, blank=True)
    source_page = models.PositiveIntegerField(_("source page"), null=True, blank=True)
    source_excerpt = models.TextField(_("source excerpt"), blank=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["exam", "position"]
        constraints = [models.UniqueConstraint(fields=["exam", "position"], name="exam_question_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.text[:60]}"

    @property
    def answer(self) -> str:
        return self.options[self.answer_index]

    @property
    def answer_letter(self) -> str:
        return chr(ord("A") + self.answer_index)
