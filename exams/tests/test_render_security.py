"""docs/reliability.md H1-H5 for exam PDFs: document or model text never becomes markup, nothing is fetched or read,
and a render that takes too long or too much memory is a clean 422 with nothing stored."""

import pytest

from accounts.models import DailyUsage
from exams.models import Exam, Question
from exams.rendering import RenderFailed, html_to_pdf
from exams.tests.conftest import create_exam, flat, get_exam_pdf, pdf_pages
from knowledge.services import document_ingest_text, knowledge_base_get_or_create
from tests.helpers import assert_error, metric_total

pytestmark = pytest.mark.django_db


def hostile_markup(port: int, marker) -> list[str]:
    return [
        f'<img src="http://127.0.0.1:{port}/x">',
        '<link href="/etc/passwd">',
        '<img src="/etc/passwd">',
        f"<font color=\"[[[open('{marker}', 'w')]]]\">",
        'bgcolor="rgb(' + "9" * 90,
        '<style>a{content:"' + "\\" * 40,
    ]


def hostile_document(markup: list[str]) -> str:
    # Every sentence carries one piece, so every cloze question shows one, whichever term it blanks.
    sentences = [
        "The harbour keeper copied {} into the logbook beside the northern lighthouse.",
        "Fishermen painted {} on the wooden door of the southern tower every winter.",
        "The merchant printed {} across the old charts of the eastern channel.",
        "Children scratched {} under the bridge near the western market square.",
        "A sailor wrote {} inside the lantern room during the autumn storms.",
        "The captain stamped {} onto the cargo papers of the morning ferry }} again.",
    ]
    return "\n\n".join(sentence.format(piece) for sentence, piece in zip(sentences, markup, strict=True))


def test_document_text_with_markup_is_printed_literally_and_fetches_nothing(api, user, canary, tmp_path):
    marker = tmp_path / "evaluated"
    markup = hostile_markup(canary.port, marker)
    base = knowledge_base_get_or_create(owner=user, name="Harbour")
    document_ingest_text(knowledge_base=base, filename="<b>harbour</b>.txt", text=hostile_document(markup))
    response = create_exam(api, user, subject="Harbour", questions=len(markup), difficulty="easy", hints=True)
    assert response.status_code == 200, response.content
    questions = " ".join(Question.objects.values_list("text", flat=True))
    pdf_text = " ".join(pdf_pages(get_exam_pdf(api, user, "Harbour")))
    for piece in markup:
        assert piece in questions
        assert flat(piece) in pdf_text, piece
    assert "root:" not in pdf_text
    assert canary.hits == 0
    assert not marker.exists()


def test_model_output_with_markup_is_printed_literally_and_fetches_nothing(
    api, user, canary, tmp_path, settings, upstream
):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "custom", "fake-exam"
    marker = tmp_path / "evaluated"
    markup = hostile_markup(canary.port, marker)[:4]
    base = knowledge_base_get_or_create(owner=user, name="Harbour")
    # The fake model quotes the start of the passage in each question, markup included.
    document_ingest_text(knowledge_base=base, filename="harbour.txt", text=" ".join(markup) + " The harbour is old.")
    response = create_exam(api, user, subject="Harbour", questions=2, hints=True)
    assert response.status_code == 200, response.content
    pdf_text = " ".join(pdf_pages(get_exam_pdf(api, user, "Harbour")))
    for piece in markup:
        assert flat(piece) in pdf_text, piece
    assert canary.hits == 0 and not marker.exists()


def test_the_renderer_itself_refuses_remote_and_local_resources(canary, tmp_path):
    # Defence in depth, below the template: raw markup straight to the child process.
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    html = (
        "<html><head>"
        f'<link rel="stylesheet" href="http://127.0.0.1:{canary.port}/style.css">'
        f'<style>@import url("http://127.0.0.1:{canary.port}/import.css"); '
        f'@font-face {{ font-family: X; src: url("{secret}"); }}</style>'
        '<link rel="stylesheet" href="/etc/passwd"></head><body>'
        f'<img src="http://127.0.0.1:{canary.port}/x"><img src="/etc/passwd"><img src="../../config/settings.py">'
        "<p>Still rendered.</p></body></html>"
    )
    text = " ".join(pdf_pages(html_to_pdf(html)))
    assert "Still rendered." in text and "root:" not in text
    assert canary.hits == 0


def test_a_render_past_the_time_limit_is_a_clean_422_and_nothing_is_stored(api, user, library, settings):
    settings.EXAM_RENDER_SECONDS = 0.05  # the child cannot even start in time
    response = create_exam(api, user, subject="Water", questions=5)
    assert_error(response, 422, "too long")
    assert response.json()["code"] == "render_failed"
    assert not Exam.objects.exists() and not Question.objects.exists()
    # The questions were generated, so that one (offline) model call stays charged.
    assert DailyUsage.objects.get(user=user).requests == 1


def test_a_renderer_out_of_memory_is_a_render_failure(settings):
    settings.EXAM_RENDER_MEMORY_MB = 16  # too little for the interpreter and xhtml2pdf
    failed = metric_total("bytchat_pdf_render_duration_seconds_count", status="failed")
    with pytest.raises(RenderFailed) as failure:
        html_to_pdf("<p>x</p>")
    assert failure.value.status_code == 422
    assert metric_total("bytchat_pdf_render_duration_seconds_count", status="failed") == failed + 1
