"""The REST extension: `GET /exams`, `GET|DELETE /exams/{id}`, `GET /exams/{id}/pdf`; another user's exam is a 404
on every exam endpoint (docs/reliability.md B1, H6)."""

import uuid

import pytest

from exams.models import Exam, Question
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_list_is_newest_first_paginated_and_without_other_users_exams(api, user, other_user, make_exam):
    older = make_exam(user, "Older")
    newer = make_exam(user, "Newer")
    Exam.objects.filter(pk=older.pk).update(created_at=newer.created_at.replace(year=2000))
    make_exam(other_user, "Not yours")
    response = api.get("/exams")
    assert response.status_code == 200 and response["X-Total-Count"] == "2"
    rows = response.json()
    assert [row["title"] for row in rows] == ["Newer", "Older"]
    assert set(rows[0]) == {
        "id",
        "title",
        "subject",
        "difficulty",
        "hints",
        "question_count",
        "created_at",
        "pdf_url",
    }
    assert rows[0]["pdf_url"] == f"http://testserver/exams/{newer.pk}/pdf"
    page = api.get("/exams?limit=1&offset=1").json()
    assert [row["title"] for row in page] == ["Older"]
    assert_error(api.get("/exams?limit=-1"), 400, "limit")


def test_detail_has_the_questions_answers_and_sources(api, user, make_exam):
    exam = make_exam(user, "Water")
    body = api.get(f"/exams/{exam.pk}").json()
    assert body["title"] == "Water" and body["language"] == "en"
    [question] = body["questions"]
    assert question == {
        "number": 1,
        "text": "Water falls as _____.",
        "options": ["rain", "glaciers", "1580"],
        "answer_index": 0,
        "answer_letter": "A",
        "answer": "rain",
        "hint": "Starts with “r”.",
        "explanation": "",
        "source": {"document_id": None, "filename": "water-cycle.txt", "page": None, "excerpt": "Water falls as rain."},
    }


def test_pdf_download_is_an_attachment(api, user, make_exam):
    exam = make_exam(user, "Biología: repaso")
    response = api.get(f"/exams/{exam.pk}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "Biolog%C3%ADa" in response["Content-Disposition"]
    assert response.content == bytes(exam.pdf)


def test_delete_removes_the_exam_and_its_questions(api, user, make_exam):
    exam = make_exam(user, "Water")
    assert api.delete(f"/exams/{exam.pk}").status_code == 204
    assert not Exam.objects.exists() and not Question.objects.exists()
    assert_error(api.delete(f"/exams/{exam.pk}"), 404)


def test_another_users_exam_does_not_exist_on_any_endpoint(api, user, other_api, other_user, make_exam):
    exam = make_exam(user, "Mine")
    for method, path in [
        ("get", f"/exams/{exam.pk}"),
        ("get", f"/exams/{exam.pk}/pdf"),
        ("delete", f"/exams/{exam.pk}"),
        ("get", f"/exams/{uuid.uuid4()}"),
    ]:
        assert_error(getattr(other_api, method)(path), 404, "Exam")
    response = other_api.post("/get_exam", {"user": other_user.email, "title": "Mine"}, format="json")
    assert_error(response, 404, "Exam")
    assert other_api.get("/exams").json() == []
    assert Exam.objects.get(pk=exam.pk).title == "Mine"


def test_the_rest_endpoints_need_a_bearer_token(anon, user, make_exam):
    exam = make_exam(user, "Mine")
    for path in ("/exams", f"/exams/{exam.pk}", f"/exams/{exam.pk}/pdf"):
        assert_error(anon.get(path), 401)
