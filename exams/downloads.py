"""The stored PDF of an exam as an HTTP download, for the API and the admin."""

from django.http import HttpResponse
from django.utils.http import content_disposition_header

from exams.models import Exam


def pdf_response(exam: Exam) -> HttpResponse:
    return HttpResponse(
        bytes(exam.pdf),
        content_type="application/pdf",
        headers={"Content-Disposition": content_disposition_header(True, f"{exam.title}.pdf")},
    )
