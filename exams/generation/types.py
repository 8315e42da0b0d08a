"""Typed values of exam generation: what was asked, the material, and the drafted questions."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from bots.llm.types import Usage
from core.errors import DomainError
from knowledge.retrieval import Passage

EXCERPT_CHARS = 500


@dataclass(frozen=True, slots=True)
class ExamSpec:
    subject: str
    question_count: int
    difficulty: str  # a models.Difficulty value
    hints: bool


@dataclass(frozen=True, slots=True)
class Material:
    """The passages questions are made from; `knowledge_base_name` is empty when they came from a search."""

    passages: tuple[Passage, ...]
    knowledge_base_name: str = ""


@dataclass(frozen=True, slots=True)
class Draft:
    """One question before it is stored: its options, which one is right, and the passage it came from."""

    text: str
    options: tuple[str, ...]
    answer_index: int
    hint: str
    explanation: str
    source: Passage
    excerpt: str

    @property
    def answer(self) -> str:
        return self.options[self.answer_index]


@dataclass(frozen=True, slots=True)
class Generated:
    """The result of one model call (or of the offline generator): questions, what made them, what it cost."""

    drafts: tuple[Draft, ...]
    model: str
    usage: Usage


def source_label(passage: Passage) -> str:
    if passage.page:
        return _("%(file)s, page %(page)d") % {"file": passage.filename, "page": passage.page}
    return passage.filename


class NotEnoughMaterial(DomainError):
    status_code = 400
    code = "not_enough_material"

    def __init__(self, *, subject: str, possible: int, asked: int) -> None:
        super().__init__(
            _(
                "questions: the material on “%(subject)s” supports at most %(possible)d distinct questions "
                "at this difficulty and %(asked)d were asked for; ask for %(possible)d or fewer, or load "
                "more documents."
            )
            % {"subject": subject[:100], "possible": possible, "asked": asked}
        )
        self.possible = possible


class GenerationFailed(DomainError):
    status_code = 502
    code = "exam_generation_failed"
