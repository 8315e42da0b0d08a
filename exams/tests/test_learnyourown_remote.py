"""Exams written by a remote model: the real openai SDK against the fake server, retries on invalid
output, the 502 after EXAM_GENERATION_ATTEMPTS, provider errors, and what each call is charged."""

import json
import re

import pytest

from accounts.models import DailyUsage, ModelCall
from exams.models import Exam
from exams.tests.conftest import create_exam, flat, get_exam_pdf, pdf_pages
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote(settings, upstream):
    settings.LLM_PROVIDER = "custom"
    settings.LLM_MODEL = "fake-exam"
    settings.EXAM_GENERATION_ATTEMPTS = 3
    return upstream


def chat_calls(upstream) -> list:
    return [r for r in upstream.requests if r.path.endswith("/chat/completions")]


def charged(user) -> int:
    usage = DailyUsage.objects.filter(user=user).first()
    return usage.requests if usage else 0


def test_the_model_writes_the_questions_and_the_pdf_shows_them(api, user, library, remote):
    response = create_exam(api, user, subject="Fotosíntesis", questions=5, difficulty="hard", hints=True)
    assert response.status_code == 200, response.content
    exam = Exam.objects.get(owner=user)
    assert exam.model == "fake-exam" and exam.question_count == 5
    [call] = chat_calls(remote)
    prompt = call.body["messages"][1]["content"]
    assert "Write exactly 5 multiple-choice questions" in prompt and "Hints: yes" in prompt
    assert "<<<PASSAGE 1 | fotosíntesis.txt>>>" in prompt and "untrusted" in call.body["messages"][0]["content"]

    questions = list(exam.questions.order_by("position"))
    pages = pdf_pages(get_exam_pdf(api, user, exam.title))
    key_page = next(index for index, text in enumerate(pages) if "Answer key" in text)
    body = " ".join(pages[:key_page])
    for question in questions:
        number = re.match(r"¿Qué palabra aparece en el pasaje (\d+)\? «(.{20})", question.text)
        assert number and len(question.options) == 4 and question.hint == f"Mira el pasaje {number[1]}."
        assert flat(question.text) in body and f"Hint: {question.hint}" in body
        assert question.source_filename == "fotosíntesis.txt"
        assert question.source_excerpt.startswith(number[2])  # the passage the model named
    assert "¿Qué" in body and "ñ" in body and "é" in body and "í" in body
    assert "La palabra «" in " ".join(pages[key_page:])  # the explanation, in the answer key

    [record] = ModelCall.objects.filter(user=user, surface="exams")
    assert record.model == "fake-exam" and not record.estimated and record.prompt_tokens > 0
    assert charged(user) == 1


def test_invalid_output_is_retried_with_the_problem_named_and_every_call_is_charged(
    api, user, library, remote, settings
):
    settings.LLM_MODEL = "fake-exam-invalid-2"
    response = create_exam(api, user, subject="Water", questions=3, hints=False)
    assert response.status_code == 200, response.content
    calls = chat_calls(remote)
    assert len(calls) == 3
    assert "Your previous answer was not valid: the answer holds no JSON object" in json.dumps(
        calls[1].body["messages"], ensure_ascii=False
    )
    assert '"options\\" must be a list of exactly 4 strings' in json.dumps(calls[2].body["messages"])
    exam = Exam.objects.get(owner=user)
    assert exam.question_count == 3 and all(q.hint == "" for q in exam.questions.all())
    assert charged(user) == 3 and ModelCall.objects.filter(user=user, surface="exams").count() == 3


def test_output_still_invalid_after_the_last_attempt_is_a_502_and_nothing_is_stored(
    api, user, library, remote, settings
):
    settings.LLM_MODEL = "fake-exam-invalid"
    response = create_exam(api, user, subject="Water", questions=3)
    detail = assert_error(response, 502, "3 attempts", "answer")
    assert response.json()["code"] == "exam_generation_failed"
    assert "must be a whole number from 0 to 3" in detail  # the third kind of invalid output
    assert len(chat_calls(remote)) == 3
    assert not Exam.objects.exists()
    assert charged(user) == 3


def test_a_provider_error_keeps_its_status_and_the_call_is_refunded(api, user, library, remote, settings):
    settings.LLM_MODEL = "fake-status-503"
    response = create_exam(api, user, subject="Water", questions=3)
    assert_error(response, 502, "custom")
    assert response.json()["code"] == "provider_error"
    assert not Exam.objects.exists()
    assert charged(user) == 0 and not ModelCall.objects.exists()


def test_no_quota_left_is_a_429_before_any_model_call(api, user, library, remote):
    user.daily_quota = 0
    user.save(update_fields=["daily_quota"])
    response = create_exam(api, user, subject="Water", questions=3)
    assert_error(response, 429)
    assert response["Retry-After"]
    assert chat_calls(remote) == [] and not Exam.objects.exists()
