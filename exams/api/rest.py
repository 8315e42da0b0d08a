"""The REST extension for exams (JWT bearer): list, read with questions, download the PDF, delete."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import page_parameters, paginate
from exams.downloads import pdf_response
from exams.models import Exam, Question
from exams.selectors import exam_get, exam_list
from exams.services import exam_delete

PAGE_PARAMETERS = page_parameters(f"At most {settings.LIST_MAX_ROWS} (the default).", "Skip this many.")


class ExamSerializer(serializers.ModelSerializer):
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Exam
        fields = ["id", "title", "subject", "difficulty", "hints", "question_count", "created_at", "pdf_url"]
        read_only_fields = fields

    def get_pdf_url(self, exam: Exam) -> str:
        path = reverse("exam-pdf", kwargs={"exam_id": exam.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class SourceSerializer(serializers.Serializer):
    document_id = serializers.UUIDField(source="source_document_id", allow_null=True)
    filename = serializers.CharField(source="source_filename")
    page = serializers.IntegerField(source="source_page", allow_null=True)
    excerpt = serializers.CharField(source="source_excerpt")


class QuestionSerializer(serializers.ModelSerializer):
    number = serializers.IntegerField(source="position")
    options = serializers.ListField(child=serializers.CharField())
    answer = serializers.CharField(help_text="The correct option's text.")
    answer_letter = serializers.CharField()
    source = SourceSerializer(source="*")

    class Meta:
        model = Question
        fields = [
            "number",
            "text",
            "options",
            "answer_index",
            "answer_letter",
            "answer",
            "hint",
            "explanation",
            "source",
        ]
        read_only_fields = fields


class ExamDetailSerializer(ExamSerializer):
    questions = QuestionSerializer(many=True, read_only=True)

    class Meta(ExamSerializer.Meta):
        fields = [*ExamSerializer.Meta.fields, "knowledge_base_name", "model", "language", "questions"]
        read_only_fields = fields


class ExamListView(APIView):
    @extend_schema(
        responses={200: ExamSerializer(many=True)},
        parameters=PAGE_PARAMETERS,
        description="The caller's exams, newest first. `X-Total-Count` gives the total.",
    )
    def get(self, request: Request) -> Response:
        exams, headers = paginate(exam_list(owner=request.user), request.query_params)
        return Response(ExamSerializer(exams, many=True, context={"request": request}).data, headers=headers)


class ExamView(APIView):
    @extend_schema(responses={200: ExamDetailSerializer}, description="One exam with its questions and answers.")
    def get(self, request: Request, exam_id: str) -> Response:
        exam = exam_get(owner=request.user, exam_id=exam_id)
        return Response(ExamDetailSerializer(exam, context={"request": request}).data)

    @extend_schema(responses={204: None}, description="Delete the exam and its PDF.")
    def delete(self, request: Request, exam_id: str) -> Response:
        exam_delete(exam=exam_get(owner=request.user, exam_id=exam_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExamPdfView(APIView):
    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY}, description="The exam's PDF.")
    def get(self, request: Request, exam_id: str) -> HttpResponse:
        exam = exam_get(owner=request.user, exam_id=exam_id)
        return pdf_response(exam)
