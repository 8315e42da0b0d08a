"""Exams in the admin: read-only, with the questions inline and the stored PDF to download (staff only)."""

from __future__ import annotations

import io
import zipfile

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin import NoBulkDeleteMixin
from exams.downloads import pdf_response
from exams.models import Exam, Question
from exams.services import exam_delete

DOWNLOAD_AT_ONCE = 50


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    fields = ["position", "text", "options", "answer_letter", "hint", "source_filename", "source_page"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("answer"))
    def answer_letter(self, question: Question) -> str:
        return question.answer_letter


@admin.register(Exam)
class ExamAdmin(NoBulkDeleteMixin, admin.ModelAdmin):
    list_display = ["title", "owner", "subject", "difficulty", "hints", "question_count", "created_at"]
    list_filter = ["difficulty", "hints", "language", "created_at"]
    search_fields = ["title", "subject", "owner__email"]
    list_select_related = ["owner"]
    date_hierarchy = "created_at"
    fields = [
        "title",
        "owner",
        "subject",
        "difficulty",
        "hints",
        "question_count",
        "knowledge_base_name",
        "model",
        "language",
        "created_at",
        "pdf_download",
    ]
    readonly_fields = fields
    inlines = [QuestionInline]
    actions = ["download_pdfs", "delete_exams"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("pdf")

    def has_add_permission(self, request) -> bool:
        return False

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="exams_exam_pdf",
            )
        ]
        return own + super().get_urls()

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        exam = self.get_object(request, object_id)
        if exam is None:
            raise Http404
        if not self.has_view_permission(request, exam):
            return HttpResponse(status=403)
        return pdf_response(exam)

    @admin.display(description=_("PDF"))
    def pdf_download(self, exam: Exam) -> str:
        if exam.pk is None:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:exams_exam_pdf", args=[exam.pk]), _("Download PDF"))

    @admin.action(description=_("Download the PDFs of the selected exams"))
    def download_pdfs(self, request: HttpRequest, queryset) -> HttpResponse | None:
        # The archive is built in memory: a bounded number of PDFs at a time.
        exams = list(queryset.defer(None)[: DOWNLOAD_AT_ONCE + 1])
        if len(exams) > DOWNLOAD_AT_ONCE:
            self.message_user(
                request,
                _("Select at most %(n)d exams to download at once.") % {"n": DOWNLOAD_AT_ONCE},
                messages.WARNING,
            )
            return None
        if len(exams) == 1:
            return pdf_response(exams[0])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for exam in exams:
                archive.writestr(f"{exam.owner_id}-{exam.pk}.pdf", bytes(exam.pdf))
        return HttpResponse(
            buffer.getvalue(),
            content_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="exams.zip"'},
        )

    @admin.action(description=_("Delete the selected exams"), permissions=["delete"])
    def delete_exams(self, request: HttpRequest, queryset) -> None:
        count = 0
        for exam in queryset:
            exam_delete(exam=exam)
            count += 1
        self.message_user(request, _("%(n)d exam(s) deleted.") % {"n": count})


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    """Read-only: questions are written with their exam and its PDF; search them across exams."""

    list_display = ["exam", "position", "text", "source_filename", "source_page"]
    list_filter = ["exam__difficulty"]
    search_fields = ["text", "exam__title", "exam__owner__email", "source_filename"]
    list_select_related = ["exam"]
    readonly_fields = [field.name for field in Question._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Question | None = None) -> bool:
        return False
