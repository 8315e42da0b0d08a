"""Exam titles are unique per user: a taken title gets the next number, never overwrites, even in a race."""

import pytest

from exams import services
from exams.models import Exam
from exams.tests.conftest import create_exam, get_exam_pdf, pdf_pages

pytestmark = pytest.mark.django_db


def test_the_same_subject_twice_gets_a_numbered_title_and_the_first_pdf_is_unchanged(api, user, library):
    first = create_exam(api, user, subject="Fotosíntesis", questions=3, difficulty="easy")
    assert first.json()["title"] == "Fotosíntesis"
    first_pdf = get_exam_pdf(api, user, "Fotosíntesis")
    second = create_exam(api, user, subject="fotosintesis", questions=4, difficulty="hard")
    # Taken ignoring case and accents, so `get_exam` by either spelling stays unambiguous.
    assert second.json()["title"] == "fotosintesis (2)"
    assert get_exam_pdf(api, user, "Fotosíntesis") == first_pdf
    assert "fotosintesis (2)" in pdf_pages(get_exam_pdf(api, user, "fotosintesis (2)"))[0]
    assert list(Exam.objects.order_by("created_at").values_list("title", "question_count")) == [
        ("Fotosíntesis", 3),
        ("fotosintesis (2)", 4),
    ]


def test_a_title_taken_by_a_parallel_request_moves_on_to_the_next_number(user, library, make_exam, monkeypatch):
    make_exam(user, "Water")
    real_titles = services.exam_titles
    calls = []

    def stale_titles(*, owner):
        calls.append(owner)
        # The first look misses the exam a parallel request has just stored; the constraint catches it.
        return set() if len(calls) == 1 else real_titles(owner=owner)

    monkeypatch.setattr(services, "exam_titles", stale_titles)
    exam = services.exam_create(owner=user, subject="Water", question_count=2, difficulty="easy", hints=False)
    assert exam.title == "Water (2)" and len(calls) == 2
    assert sorted(Exam.objects.values_list("title", flat=True)) == ["Water", "Water (2)"]


def test_an_explicit_title_is_used_and_numbered_too(api, user, library, make_exam):
    make_exam(user, "Repaso")
    response = create_exam(api, user, subject="Water", questions=2, title="  Repaso  ")
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Repaso (2)"
    assert Exam.objects.get(title="Repaso (2)").subject == "Water"
