"""Bad `/create_exam` and `/get_exam` requests are clear 4xx JSON naming the problem, before any model call."""

import pytest

from accounts.models import DailyUsage
from exams.models import Exam
from exams.tests.conftest import create_exam
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"subject": "Water", "questions": 0}, 400, ["questions"]),
        ({"subject": "Water", "questions": -1}, 400, ["questions"]),
        ({"subject": "Water", "questions": 51}, 400, ["questions", "50"]),
        ({"subject": "Water", "questions": 10**6}, 400, ["questions", "50"]),
        ({"subject": "Water", "questions": "ten"}, 400, ["questions"]),
        ({"subject": "Water", "questions": True}, 400, ["questions"]),
        ({"subject": "Water", "difficulty": "insane"}, 400, ["difficulty", "easy"]),
        ({"subject": "Water", "hints": "maybe"}, 400, ["hints"]),
        ({"subject": "x" * 201}, 400, ["subject", "200"]),
        ({"subject": "   "}, 400, ["subject"]),
        ({"questions": 5}, 400, ["subject"]),
        ({"subject": "Water", "colour": "red"}, 400, ["colour"]),
        ({"subject": "Water", "asignatura": "Agua"}, 400, ["asignatura", "subject"]),
        ({"subject": "Water", "title": "t" * 201}, 400, ["title"]),
    ],
)
def test_invalid_create_exam_requests_are_refused_with_the_field_named(api, user, library, fields, status, words):
    response = create_exam(api, user, **fields)
    assert_error(response, status, *words)
    assert not Exam.objects.exists() and not DailyUsage.objects.exists()


def test_the_user_parameter_must_name_the_caller(api, user, other_user, library):
    response = api.post("/create_exam", {"user": other_user.email, "subject": "Water"}, format="json")
    assert_error(response, 403, "user")
    response = api.post("/get_exam", {"user": other_user.email, "title": "Water"}, format="json")
    assert_error(response, 403, "user")


def test_without_a_token_the_request_is_refused(anon, user):
    assert_error(create_exam(anon, user, subject="Water"), 401)
    assert_error(anon.post("/get_exam", {"user": user.email, "title": "Water", "token": "forged"}, format="json"), 401)


def test_get_exam_needs_a_title_and_refuses_unknown_fields(api, user):
    assert_error(api.post("/get_exam", {"user": user.email}, format="json"), 400, "title")
    assert_error(api.post("/get_exam", {"user": user.email, "title": "x", "pdf": 1}, format="json"), 400, "pdf")
    assert_error(api.post("/get_exam", {"user": user.email, "title": "Nothing"}, format="json"), 404, "Exam")


def test_a_subject_without_material_is_a_400(api, user, library):
    response = create_exam(api, user, subject="Quantum chromodynamics")
    assert_error(response, 400, "Quantum chromodynamics")
    assert response.json()["code"] == "no_material"


def test_material_too_thin_for_the_questions_says_how_many_it_supports(api, user):
    from knowledge.services import document_ingest_text, knowledge_base_get_or_create

    base = knowledge_base_get_or_create(owner=user, name="Islands")
    text = (
        "The island of Zafiro has a harbour on its northern coast. "
        "Fishermen from Zafiro sell tuna in the market every morning. "
        "The lighthouse was built in 1887 by the engineer Marta Ruiz."
    )
    document_ingest_text(knowledge_base=base, filename="islands.txt", text=text)
    response = create_exam(api, user, subject="Islands", questions=20, difficulty="medium")
    detail = assert_error(response, 400, "questions", "20")
    assert response.json()["code"] == "not_enough_material"
    possible = int(detail.split("at most ")[1].split()[0])
    assert 1 <= possible < 20
    assert not Exam.objects.exists()
    assert DailyUsage.objects.get(user=user).requests == 0  # refunded: the generator produced nothing


def test_the_exam_limit_per_user_is_a_409(api, user, library, settings, make_exam):
    settings.EXAMS_PER_USER = 1
    make_exam(user, "Old exam")
    response = create_exam(api, user, subject="Water", questions=3)
    assert_error(response, 409, "1")
    assert response.json()["code"] == "exam_limit"
    assert Exam.objects.count() == 1
