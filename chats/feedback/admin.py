"""The feedback admin: read-only rows, counts per bot, model and task type, and a JSON Lines export."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chats.feedback.selectors import feedback_export_rows, feedback_summary
from chats.models import Feedback


def jsonl_lines(rows: Iterator[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def jsonl_response(rows: Iterator[dict]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(jsonl_lines(rows), content_type="application/x-ndjson; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="feedback-{stamp}.jsonl"'
    return response


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """Read-only: feedback is written by raters only; staff read, count and export it (docs/feedback.md)."""

    list_display = ["rating", "bot", "model", "task_type", "tags", "updated_at"]
    list_filter = ["rating", "bot", "model", "task_type", "updated_at"]
    search_fields = ["tags", "comment", "message__id"]
    list_select_related = ["bot"]
    readonly_fields = [field.name for field in Feedback._meta.fields]
    actions = ["export_jsonl"]
    change_list_template = "admin/chats/feedback/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Feedback | None = None) -> bool:
        return False

    def get_urls(self) -> list:
        summary = path("summary/", self.admin_site.admin_view(self.summary_view), name="chats_feedback_summary")
        return [summary, *super().get_urls()]

    def summary_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Feedback per bot, model and task type"),
            "rows": feedback_summary(),
            "changelist_url": reverse("admin:chats_feedback_changelist"),
        }
        return TemplateResponse(request, "admin/chats/feedback/summary.html", context)

    @admin.action(description=_("Export the selected feedback as JSON Lines"), permissions=["view"])
    def export_jsonl(self, request: HttpRequest, queryset) -> StreamingHttpResponse:
        return jsonl_response(feedback_export_rows(feedbacks=queryset))
