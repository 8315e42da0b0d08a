"""The exam template and the child-process renderer: accented text, the active language, the font fallback."""

import datetime
import io
import uuid

from django.utils import translation
from pypdf import PdfReader

from exams.generation.types import Draft
from exams.rendering import exam_html, html_to_pdf
from exams.tests.conftest import pdf_pages
from knowledge.retrieval import Passage

SOURCE = Passage(
    chunk_id=1, document_id=uuid.UUID(int=1), filename="señales.txt", page=4, position=0, text="…", score=0.0
)
DRAFT = Draft(
    text="¿Qué animal vive en la montaña? Año, niño, pingüino, corazón, Zürich, Ærø, €.",
    options=("El ñandú", "La cigüeña", "El búho", "El colibrí"),
    answer_index=1,
    hint="Empieza por «c».",
    explanation="Está en la página 4.",
    source=SOURCE,
    excerpt="…",
)
CREATED = datetime.datetime(2025, 3, 14, 10, 0, tzinfo=datetime.UTC)


def fonts(pdf: bytes) -> set[str]:
    found = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            found.add(str(font.get_object()["/BaseFont"]))
    return found


def render(**overrides) -> tuple[bytes, list[str]]:
    html = exam_html(
        title="Biología: repaso",
        subject="Biología",
        difficulty="hard",
        hints=True,
        created_at=CREATED,
        drafts=[DRAFT],
        **overrides,
    )
    pdf = html_to_pdf(html)
    return pdf, pdf_pages(pdf)


def test_spanish_text_renders_with_the_embedded_font_in_the_active_language():
    with translation.override("es"):
        pdf, pages = render()
    text = " ".join(pages)
    for expected in ("¿Qué animal", "montaña", "pingüino", "corazón", "Zürich", "Ærø", "€", "ñandú", "cigüeña"):
        assert expected in text, expected
    assert "14 de marzo de 2025" in pages[0]  # the date in the request's language
    assert "Empieza por «c»." in text and "B La cigüeña" in pages[-1] and "señales.txt, página 4" in pages[-1]
    assert "Soluciones" in pages[-1] and "Pista" in pages[0]  # the template's own text in Spanish too
    assert len(pages) == 2 and "Answer key" not in pages[0]
    assert any("DejaVuSans" in name for name in fonts(pdf))


def test_without_the_font_files_the_pdf_falls_back_to_helvetica(settings, tmp_path):
    settings.EXAM_PDF_FONT_DIR = str(tmp_path / "no-fonts")
    pdf, pages = render()
    assert "March 14, 2025" in pages[0] and "¿Qué animal vive en la montaña?" in " ".join(pages)
    assert all("DejaVu" not in name for name in fonts(pdf))
