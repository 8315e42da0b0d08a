"""The exams admin renders for staff only: changelist with filters and search, change page with the
questions inline, and the PDF download (view and action)."""

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from exams.models import Exam

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user):
    client = Client()
    client.force_login(make_user("root@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def exams(make_user, make_exam):
    owner = make_user("owner@example.com")
    return [make_exam(owner, "Water", difficulty="easy"), make_exam(owner, "Fotosíntesis", difficulty="hard")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", 2), ("q=owner@example", 2), ("q=Fotos", 1), ("difficulty__exact=hard", 1), ("hints__exact=1", 2)],
)
def test_changelist_renders_with_filters_and_search(staff, exams, query, expected):
    response = staff.get(reverse("admin:exams_exam_changelist") + "?" + query)
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


def test_change_page_shows_the_questions_and_a_pdf_link(staff, exams):
    exam = exams[0]
    response = staff.get(reverse("admin:exams_exam_change", args=[exam.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Water falls as _____." in content
    assert reverse("admin:exams_exam_pdf", args=[exam.pk]) in content
    assert staff.get(reverse("admin:exams_exam_add")).status_code == 403


def test_pdf_view_and_action_download_the_stored_pdfs(staff, exams):
    response = staff.get(reverse("admin:exams_exam_pdf", args=[exams[0].pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content == bytes(exams[0].pdf)
    assert staff.get(reverse("admin:exams_exam_pdf", args=["not-a-uuid"])).status_code == 404
    one = staff.post(
        reverse("admin:exams_exam_changelist"), {"action": "download_pdfs", "_selected_action": [exams[1].pk]}
    )
    assert one["Content-Type"] == "application/pdf" and one.content == bytes(exams[1].pdf)
    both = staff.post(
        reverse("admin:exams_exam_changelist"),
        {"action": "download_pdfs", "_selected_action": [exam.pk for exam in exams]},
    )
    assert both["Content-Type"] == "application/zip"
    assert len(zipfile.ZipFile(io.BytesIO(both.content)).namelist()) == 2


def test_delete_action_calls_the_service(staff, exams):
    response = staff.post(
        reverse("admin:exams_exam_changelist"), {"action": "delete_exams", "_selected_action": [exams[0].pk]}
    )
    assert response.status_code == 302
    assert list(Exam.objects.values_list("title", flat=True)) == ["Fotosíntesis"]


def test_non_staff_is_sent_to_the_login_page(make_user, exams):
    client = Client()
    client.force_login(make_user())
    for url in (reverse("admin:exams_exam_changelist"), reverse("admin:exams_exam_pdf", args=[exams[0].pk])):
        response = client.get(url)
        assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_staff_without_the_view_permission_cannot_download(make_user, exams):
    client = Client()
    client.force_login(make_user(is_staff=True))
    assert client.get(reverse("admin:exams_exam_pdf", args=[exams[0].pk])).status_code == 403
