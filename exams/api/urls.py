"""The exams surface: 000's `/create_exam` and `/get_exam`, plus list and download."""

from django.urls import re_path

from core.paths import UUID
from exams.api import learnyourown, rest

urlpatterns = [
    re_path(r"^create_exam/?$", learnyourown.CreateExamView.as_view(), name="create-exam"),
    re_path(r"^get_exam/?$", learnyourown.GetExamView.as_view(), name="get-exam"),
    re_path(r"^exams/?$", rest.ExamListView.as_view(), name="exam-list"),
    re_path(rf"^exams/(?P<exam_id>{UUID})/?$", rest.ExamView.as_view(), name="exam-detail"),
    re_path(rf"^exams/(?P<exam_id>{UUID})/pdf/?$", rest.ExamPdfView.as_view(), name="exam-pdf"),
]
