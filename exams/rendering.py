"""An exam as PDF: the Django template is rendered here, xhtml2pdf runs in a bounded child process (`exams.pdf`).

The template autoescapes every value and marks nothing safe, so question, option, hint and source
text (from documents or a model) reach xhtml2pdf as text, never as markup or CSS (docs/reliability.md H1,
H2). The child gets EXAM_RENDER_SECONDS of wall-clock time and EXAM_RENDER_MEMORY_MB of address
space and only the environment it needs; a timeout, a crash or a refused render is a 422
`render_failed`, and the caller stores nothing.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from core import metrics
from core.errors import DomainError
from core.sandbox import SandboxTimeout, run_bounded
from exams.generation.types import Draft, source_label
from exams.models import Difficulty

# Constants only: exams.pdf imports xhtml2pdf inside its render function, which runs in the child.
from exams.pdf import EXIT_TIME_LIMIT, FONT_FILES

logger = logging.getLogger(__name__)


class RenderFailed(DomainError):
    status_code = 422
    code = "render_failed"


class RenderTimeLimit(RenderFailed):
    """The render ran past EXAM_RENDER_SECONDS (the same answer to the client; measured apart)."""


def fonts_available(font_dir: str) -> bool:
    return all((Path(font_dir) / name).is_file() for name in FONT_FILES.values())


def letter(index: int) -> str:
    return chr(ord("A") + index)


def exam_html(
    *, title: str, subject: str, difficulty: str, hints: bool, created_at: datetime.datetime, drafts: Sequence[Draft]
) -> str:
    questions = [
        {
            "number": number,
            "text": draft.text,
            "options": [(letter(index), option) for index, option in enumerate(draft.options)],
            "hint": draft.hint if hints else "",
            "answer_letter": letter(draft.answer_index),
            "answer": draft.answer,
            "explanation": draft.explanation,
            "source": source_label(draft.source),
        }
        for number, draft in enumerate(drafts, start=1)
    ]
    context = {
        "title": title,
        "subject": subject,
        "difficulty": Difficulty(difficulty).label,
        "hints": hints,
        "created_at": created_at,
        "questions": questions,
        "embed_fonts": fonts_available(settings.EXAM_PDF_FONT_DIR),
    }
    return render_to_string("exams/exam.html", context)


def html_to_pdf(html: str) -> bytes:
    """The PDF of `html`, rendered by `python -m exams.pdf` under time and memory limits (each render
    measured: core/metrics.py pdf_render_duration, by outcome)."""
    started = time.perf_counter()
    status = "failed"
    try:
        pdf = _render(html)
        status = "ok"
        return pdf
    except RenderTimeLimit:
        status = "time_limit"
        raise
    finally:
        metrics.pdf_render_duration.labels(status).observe(time.perf_counter() - started)


def _render(html: str) -> bytes:
    seconds = settings.EXAM_RENDER_SECONDS
    args = [str(settings.EXAM_PDF_FONT_DIR), str(seconds), str(settings.EXAM_RENDER_MEMORY_MB)]
    try:
        completed = run_bounded("exams.pdf", args, data=html.encode("utf-8"), seconds=seconds)
    except SandboxTimeout as exc:
        logger.warning("exam PDF render killed after %s s", seconds)
        raise RenderTimeLimit(_("The exam PDF took too long to render; try fewer questions.")) from exc
    except OSError as exc:
        logger.exception("exam PDF renderer could not start")
        raise RenderFailed(_("The exam PDF could not be rendered.")) from exc
    if completed.returncode == EXIT_TIME_LIMIT:
        raise RenderTimeLimit(_("The exam PDF took too long to render; try fewer questions."))
    if completed.returncode != 0 or not completed.stdout.startswith(b"%PDF-"):
        logger.warning(
            "exam PDF render failed (exit %s): %s",
            completed.returncode,
            completed.stderr[-2000:].decode(errors="replace"),
        )
        raise RenderFailed(_("The exam PDF could not be rendered."))
    return completed.stdout
