"""The 000 (learnyourown) exam endpoints: `/create_exam` and `/get_exam`.

As the seed sends them: JSON with `user`, `token` (or the Authorization header), `type_user`
(never trusted), and the exam's fields in English or in the seed's Spanish (`asignatura`,
`preguntas`, `dificultad`, `pistas`; difficulty `fácil`/`media`/`difícil` too). `user` must name
the caller. Exams are addressed by title within the caller's own exams only.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.learnyourown import LearnyourownSerializer, LearnyourownView, valid
from exams.generation.text import fold
from exams.models import SUBJECT_MAX_LENGTH, TITLE_MAX_LENGTH
from exams.selectors import exam_get_by_title
from exams.services import exam_create

FIELD_ALIASES = {
    "asignatura": "subject",
    "preguntas": "questions",
    "dificultad": "difficulty",
    "pistas": "hints",
    "titulo": "title",
    "título": "title",
}
DIFFICULTIES = {
    "easy": "easy",
    "facil": "easy",
    "medium": "medium",
    "media": "medium",
    "medio": "medium",
    "hard": "hard",
    "dificil": "hard",
}
DEFAULT_QUESTIONS = 10


class SpanishBooleanField(serializers.BooleanField):
    TRUE_VALUES = serializers.BooleanField.TRUE_VALUES | {"si", "sí", "Si", "Sí", "SI", "SÍ"}


class LearnyourownExamSerializer(LearnyourownSerializer):
    def to_internal_value(self, data):
        return super().to_internal_value(english_fields(data) if hasattr(data, "keys") else data)


def english_fields(data) -> dict:
    """The body with the seed's Spanish field names in English; one field sent under both names is refused."""
    renamed = {}
    for key in data:
        name = FIELD_ALIASES.get(key, key)
        if name in renamed:
            both = ", ".join(k for k in data if FIELD_ALIASES.get(k, k) == name)
            raise serializers.ValidationError({name: [_("Give only one of %(names)s.") % {"names": both}]})
        renamed[name] = data[key]
    return renamed


class CreateExamSerializer(LearnyourownExamSerializer):
    subject = serializers.CharField(max_length=SUBJECT_MAX_LENGTH, help_text="Also `asignatura`.")
    questions = serializers.IntegerField(
        min_value=1, default=DEFAULT_QUESTIONS, help_text="How many, 1 to EXAM_MAX_QUESTIONS. Also `preguntas`."
    )
    difficulty = serializers.CharField(
        default="medium", help_text="easy, medium or hard (fácil, media, difícil). Also `dificultad`."
    )
    hints = SpanishBooleanField(default=False, help_text="Also `pistas`.")
    title = serializers.CharField(
        max_length=SUBJECT_MAX_LENGTH, required=False, help_text="Defaults to the subject (an extension)."
    )

    def validate_questions(self, value: int) -> int:
        if value > settings.EXAM_MAX_QUESTIONS:
            raise serializers.ValidationError(
                _("Ensure this value is less than or equal to %(n)d.") % {"n": settings.EXAM_MAX_QUESTIONS}
            )
        return value

    def validate_difficulty(self, value: str) -> str:
        difficulty = DIFFICULTIES.get(fold(value.strip()))
        if difficulty is None:
            raise serializers.ValidationError(_("Use easy, medium or hard (fácil, media or difícil)."))
        return difficulty


class GetExamSerializer(LearnyourownExamSerializer):
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, help_text="Also `titulo`.")


class CreateExamView(LearnyourownView):
    # the subject's knowledge base, a title taken, a render past its limits, the quota, the model
    error_statuses = {403, 404, 409, 422, 429, 502, 503, 504}

    @extend_schema(
        request=CreateExamSerializer,
        responses={
            200: inline_serializer(
                "ExamCreated",
                {
                    "result": serializers.BooleanField(),
                    "message": serializers.CharField(),
                    "title": serializers.CharField(),
                },
            )
        },
        description="Makes an exam from the caller's knowledge base named by the subject (or, without one, "
        "from a search of all their documents), renders its PDF and stores it. A title already taken gets "
        'a number: "Biología (2)".',
    )
    def post(self, request: Request) -> Response:
        data = valid(CreateExamSerializer, request)
        exam = exam_create(
            owner=request.user,
            subject=data["subject"],
            question_count=data["questions"],
            difficulty=data["difficulty"],
            hints=data["hints"],
            title=data.get("title"),
        )
        # The seed's literal message: clients compare it.
        return Response({"result": True, "message": "Exam created successfully", "title": exam.title})


class GetExamView(LearnyourownView):
    # an exam named in the body
    error_statuses = {403, 404}

    @extend_schema(
        request=GetExamSerializer,
        responses={
            200: inline_serializer(
                "ExamPdf",
                {
                    "result": serializers.BooleanField(),
                    "message": serializers.CharField(),
                    "pdf": serializers.CharField(),
                },
            )
        },
        description="The caller's exam with this title, as a base64-encoded PDF.",
    )
    def post(self, request: Request) -> Response:
        data = valid(GetExamSerializer, request)
        exam = exam_get_by_title(owner=request.user, title=data["title"])
        pdf = base64.b64encode(bytes(exam.pdf)).decode()
        return Response({"result": True, "message": "Exam retrieved successfully", "pdf": pdf})
