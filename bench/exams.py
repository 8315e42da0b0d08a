"""Time to make an exam offline: the material read, the cloze questions generated, the PDF rendered.

    .venv/bin/python -m bench.exams [--documents 200] [--repeat 3]

Loads SciFact abstracts (read from ../shared/bench/scifact, never copied) into one knowledge base
named after the subject, then makes exams of 10 and 50 questions at each difficulty with the offline
generator, and prints the median time of each step and the PDF's size. The PDF render is the child
process the web request waits for (interpreter start and xhtml2pdf included).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

from bench.common import django_setup

ROOT = django_setup(temp_prefix="bytchat-exam-bench-")

from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from accounts.models import User  # noqa: E402
from exams.generation import questions_generate  # noqa: E402
from exams.generation.types import ExamSpec  # noqa: E402
from exams.rendering import exam_html, html_to_pdf  # noqa: E402
from exams.selectors import exam_material  # noqa: E402
from knowledge.services import document_ingest_text, knowledge_base_get_or_create  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "bench" / "scifact" / "corpus.jsonl"
SUBJECT = "SciFact abstracts"


def median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user = User.objects.create_user(email=f"bench-exams-{time.time_ns()}@example.com", password=None, is_staff=True)
    base = knowledge_base_get_or_create(owner=user, name=SUBJECT)
    with SCIFACT.open() as corpus:
        for _index, line in zip(range(args.documents), corpus, strict=False):
            row = json.loads(line)
            document_ingest_text(knowledge_base=base, filename=f"{row['_id']}.txt", text=row["text"])
    print(f"{args.documents} SciFact abstracts in one knowledge base; median of {args.repeat} runs")
    print("questions  difficulty  material ms  generate ms  render ms  PDF kB  pages")
    try:
        for count in (10, 50):
            for difficulty in ("easy", "medium", "hard"):
                spec = ExamSpec(subject=SUBJECT, question_count=count, difficulty=difficulty, hints=True)
                read, make, render = [], [], []
                pdf = b""
                for _run in range(args.repeat):
                    started = time.perf_counter()
                    material = exam_material(owner=user, subject=SUBJECT)
                    read.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    generated = questions_generate(user=user, spec=spec, material=material)
                    make.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    html = exam_html(
                        title=SUBJECT,
                        subject=SUBJECT,
                        difficulty=difficulty,
                        hints=True,
                        created_at=timezone.now(),
                        drafts=generated.drafts,
                    )
                    pdf = html_to_pdf(html)
                    render.append(time.perf_counter() - started)
                pages = len(PdfReader(io.BytesIO(pdf)).pages)
                print(
                    f"{count:>9}  {difficulty:>10}  {median_ms(read):>11.0f}  {median_ms(make):>11.0f}"
                    f"  {median_ms(render):>9.0f}  {len(pdf) / 1024:>6.0f}  {pages:>5}"
                )
    finally:
        user.delete()


if __name__ == "__main__":
    main()
