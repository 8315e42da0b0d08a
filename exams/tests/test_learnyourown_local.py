"""000 `/create_exam` and `/get_exam` end to end with the offline provider: documents loaded through
`/load_context`, an exam at each difficulty, and the PDF read back (text with pypdf, pixels with pypdfium2)."""

import base64

import pypdfium2
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import ModelCall
from exams.models import Exam
from exams.tests.conftest import create_exam, flat, get_exam_pdf, load_context, pdf_pages
from exams.tests.material import ENGLISH, SPANISH
from exams.tests.test_cloze import gives_away

pytestmark = pytest.mark.django_db(transaction=True)

CASES = {
    "en": {"name": "Water Cycle", "filename": "water-cycle.txt", "text": ENGLISH, "subject": "water  CYCLE"},
    "es": {"name": "Fotosíntesis", "filename": "fotosíntesis.txt", "text": SPANISH, "subject": "fotosíntesis"},
}


def dark_share(pdf: bytes, page: int, path) -> float:
    """Render one page to PNG (saved at `path`) and return the share of its pixels that are dark."""
    document = pypdfium2.PdfDocument(pdf)
    image = document[page].render(scale=1.5).to_pil().convert("L")
    image.save(path)
    histogram = image.histogram()
    document.close()
    return sum(histogram[:128]) / sum(histogram)


@pytest.mark.parametrize("language", ["en", "es"])
def test_an_exam_at_each_difficulty_renders_its_questions_hints_and_answer_key(api, user, language, tmp_path):
    case = CASES[language]
    load_context(api, user, case["name"], case["filename"], case["text"])
    exams = {}
    for difficulty in ("easy", "medium", "hard"):
        response = create_exam(api, user, subject=case["subject"], questions=10, difficulty=difficulty, hints=True)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["result"] is True and body["message"] == "Exam created successfully"
        exams[difficulty] = Exam.objects.get(owner=user, title=body["title"])
    title = " ".join(case["subject"].split())
    assert [exam.title for exam in exams.values()] == [title, f"{title} (2)", f"{title} (3)"]

    for difficulty, exam in exams.items():
        questions = list(exam.questions.order_by("position"))
        assert len(questions) == exam.question_count == 10
        assert exam.knowledge_base_name == case["name"] and exam.model == "bytchat-local"
        pages = pdf_pages(get_exam_pdf(api, user, exam.title))
        key_page = next(index for index, text in enumerate(pages) if "Answer key" in text)
        questions_text = " ".join(pages[:key_page])
        key_text = " ".join(pages[key_page:])
        assert exam.title in pages[0] and "Difficulty: " + difficulty.capitalize() in pages[0]
        for question in questions:
            assert flat(question.text) in questions_text, (difficulty, question.text)
            assert question.hint and flat(question.hint) in questions_text
            assert not gives_away(question.hint, question.answer)
            for option in question.options:
                assert flat(option) in questions_text
            assert f"{question.position} {question.answer_letter} {flat(question.answer)}" in key_text
            assert question.source_filename == case["filename"] and question.source_excerpt
        assert key_page > 0

    # Difficulty changes what is asked: how many options, which sentences and terms, two blanks when hard.
    option_counts = {d: {len(q.options) for q in exam.questions.all()} for d, exam in exams.items()}
    assert option_counts == {"easy": {3}, "medium": {4}, "hard": {5}}
    texts = {d: {q.text for q in exam.questions.all()} for d, exam in exams.items()}
    assert texts["easy"] != texts["medium"] != texts["hard"] != texts["easy"]
    answers = {d: {q.answer for q in exam.questions.all()} for d, exam in exams.items()}
    assert answers["easy"] != answers["hard"]
    assert any(q.text.count("_____") == 2 for q in exams["hard"].questions.all())
    assert all(q.text.count("_____") == 1 for q in exams["easy"].questions.all())

    png = tmp_path / f"exam-{language}-page1.png"
    share = dark_share(bytes(exams["hard"].pdf), 0, png)
    assert png.stat().st_size > 10_000
    assert 0.01 < share < 0.5  # text on a white page: neither blank nor a black box
    calls = ModelCall.objects.filter(user=user, surface="exams")
    assert calls.count() == 3 and all(call.estimated for call in calls)


def test_spanish_field_names_and_values_and_the_body_token_are_accepted(user):
    client = APIClient()
    token = str(AccessToken.for_user(user))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    load_context(client, user, "Fotosíntesis", "fotosíntesis.txt", SPANISH)
    anonymous = APIClient()
    body = {
        "user": user.email,
        "token": token,
        "type_user": "pro",
        "asignatura": "Fotosíntesis",
        "preguntas": 4,
        "dificultad": "difícil",
        "pistas": "sí",
    }
    response = anonymous.post("/create_exam", body, format="json", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 200, response.content
    exam = Exam.objects.get(owner=user)
    assert (exam.title, exam.difficulty, exam.hints, exam.question_count, exam.language) == (
        "Fotosíntesis",
        "hard",
        True,
        4,
        "es",
    )
    # Addressed by title, ignoring case and accents; the seed's body token authenticates.
    response = anonymous.post("/get_exam", {"user": user.email, "token": token, "title": "FOTOSINTESIS"}, format="json")
    assert response.status_code == 200
    assert response.json()["pdf"] == base64.b64encode(bytes(exam.pdf)).decode()
