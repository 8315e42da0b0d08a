"""Text extraction in a bounded child process: a file that burns CPU or memory fails its document, not the worker.

Tasks run inline (ImmediateBackend), so the upload below is extracted, in a real child process,
before the response returns; the test process plays the worker.
"""

from __future__ import annotations

import io
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from knowledge.extraction import ExtractionError, extract_pages_bounded
from knowledge.models import Chunk, Document, DocumentStatus

pytestmark = pytest.mark.django_db(transaction=True)

HARBOUR = b"The secret harbour of Port Zafiro lies behind the northern cliffs."


def pdf_with_content(content: bytes) -> bytes:
    """A valid one-page PDF whose page content stream is `content`, deflated."""
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


TEXT_OPS = b"BT /F1 12 Tf 72 720 Td (Hello harbour) Tj ET\n"
# 6 kB that keep pypdf busy for tens of seconds: half a million matrix operators on one page.
CPU_BURNER = pdf_with_content(TEXT_OPS + b"1 0 0 1 0 0 cm\n" * 500_000)
# 70 kB that inflate to a 70 MB content stream.
MEMORY_BURNER = pdf_with_content(TEXT_OPS + b" " * 70_000_000)


def upload(api, bot, name: str, data: bytes) -> Document:
    response = api.post(f"/bots/{bot.id}/train", {"file": SimpleUploadedFile(name, data)}, format="multipart")
    assert response.status_code == 202, response.content
    return Document.objects.get(pk=response.json()["id"])


def test_a_pdf_that_burns_cpu_fails_at_the_time_limit_and_the_worker_goes_on(api, bot, settings):
    settings.KNOWLEDGE_EXTRACT_SECONDS = 1
    settings.KNOWLEDGE_HEARTBEAT_SECONDS = 0.2

    hostile = upload(api, bot, "operators.pdf", CPU_BURNER)

    assert hostile.status == DocumentStatus.FAILED
    assert hostile.error == "Reading the file took longer than the limit of 1 seconds."
    assert not Chunk.objects.filter(document=hostile).exists()
    # The worker stamped its heartbeat while it waited for the child.
    assert hostile.heartbeat_at > hostile.started_at
    # The same worker ingests the next file.
    settings.KNOWLEDGE_EXTRACT_SECONDS = 60
    assert upload(api, bot, "harbour.txt", HARBOUR).status == DocumentStatus.READY
    listed = api.get(f"/bots/{bot.id}/documents/{hostile.id}").json()
    assert (listed["status"], listed["error"]) == ("failed", hostile.error)


def test_a_pdf_that_burns_memory_fails_at_the_memory_limit_and_the_worker_goes_on(api, bot, settings):
    settings.KNOWLEDGE_EXTRACT_MEMORY_MB = 150

    hostile = upload(api, bot, "inflating.pdf", MEMORY_BURNER)

    assert hostile.status == DocumentStatus.FAILED
    assert hostile.error == "Reading the file needed more memory than the limit of 150 MB."
    assert upload(api, bot, "harbour.txt", HARBOUR).status == DocumentStatus.READY


def test_a_reason_from_the_child_is_translated_in_the_parent():
    with pytest.raises(ExtractionError) as info:
        extract_pages_bounded(b"\xff\xfe\x00", "txt", seconds=30, memory_mb=512)
    assert info.value.code == "invalid"
    with translation.override("es"):
        assert str(info.value) == "El archivo no es texto UTF-16 válido."
    assert str(info.value) == "The file is not valid UTF-16 text."


def test_a_bounded_extraction_returns_the_same_pages_as_the_reader():
    pages = extract_pages_bounded(pdf_with_content(TEXT_OPS), "pdf", seconds=30, memory_mb=512)
    assert [(page.page, page.text) for page in pages] == [(1, "Hello harbour")]
    text = "Año\u00a0nuevo: ¿piña? ✓ \U0001f600".encode()
    assert [page.text for page in extract_pages_bounded(text, "txt", seconds=30, memory_mb=512)] == [
        "Año\u00a0nuevo: ¿piña? ✓ \U0001f600"
    ]
