"""Helpers of the exam tests: documents through /load_context or straight into a base, and reading PDFs."""

from __future__ import annotations

import base64
import io
import socket
import threading

import pytest
from pypdf import PdfReader

from exams.models import Exam
from knowledge.services import document_ingest_text, knowledge_base_get_or_create


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load_context(client, user, name: str, filename: str, text: str):
    body = {"user": user.email, "name": name, "files": [{"filename": filename, "content": b64(text.encode())}]}
    response = client.post("/load_context", body, format="json")
    assert response.status_code == 200, response.content
    return response


def create_exam(client, user, **fields):
    return client.post("/create_exam", {"user": user.email, **fields}, format="json")


def get_exam_pdf(client, user, title: str) -> bytes:
    response = client.post("/get_exam", {"user": user.email, "title": title}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"] is True and body["message"] == "Exam retrieved successfully"
    return base64.b64decode(body["pdf"], validate=True)


def pdf_pages(pdf: bytes) -> list[str]:
    """Each page's text, whitespace collapsed (xhtml2pdf wraps lines where it must)."""
    return [" ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def library(user):
    """`user`'s base "Water" (English prose) and base "Fotosíntesis" (Spanish prose), ingested inline."""
    from exams.tests.material import ENGLISH, SPANISH

    water = knowledge_base_get_or_create(owner=user, name="Water")
    document_ingest_text(knowledge_base=water, filename="water-cycle.txt", text=ENGLISH)
    plants = knowledge_base_get_or_create(owner=user, name="Fotosíntesis")
    document_ingest_text(knowledge_base=plants, filename="fotosíntesis.txt", text=SPANISH)
    return {"Water": water, "Fotosíntesis": plants}


class Canary:
    """A loopback TCP listener that counts connections: a renderer that fetched a URL would show up here."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _address = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def canary():
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture
def make_exam():
    """An exam row with a placeholder PDF, for tests of reading, listing and the admin (no render)."""
    from exams.models import Question

    def make(owner, title: str = "Water", **extra) -> Exam:
        exam = Exam.objects.create(
            owner=owner,
            title=title,
            subject=extra.pop("subject", title),
            difficulty=extra.pop("difficulty", "easy"),
            hints=extra.pop("hints", True),
            question_count=1,
            model="bytchat-local",
            language="en",
            pdf=extra.pop("pdf", b"%PDF-1.4 placeholder of " + title.encode()),
            **extra,
        )
        Question.objects.create(
            exam=exam,
            position=1,
            text="Water falls as _____.",
            options=["rain", "glaciers", "1580"],
            answer_index=0,
            hint="Starts with “r”.",
            source_filename="water-cycle.txt",
            source_excerpt="Water falls as rain.",
        )
        return exam

    return make
