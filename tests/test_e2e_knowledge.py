"""Train a bot with a .txt and a .pdf through a real server and its real database worker, then ask it."""

import io
import json
import time

import httpx
import pytest
from reportlab.pdfgen import canvas

from tests.live_server import LiveServer, new_user_auth

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("live-knowledge"), {"LLM_LOCAL_WORD_DELAY": "0"}, with_worker=True
    ).start()
    yield live
    live.stop()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def pdf_with(text: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "Cover page")
    page.showPage()
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def wait_ready(http, auth, bot_id, document_id, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = http.get(f"/bots/{bot_id}/documents/{document_id}", headers=auth).json()
        if document["status"] in ("ready", "failed"):
            return document
        time.sleep(0.2)
    raise AssertionError(f"document still {document['status']} after {timeout} s")


def ask(http, auth, bot_id, question: str) -> dict:
    with http.stream(
        "POST", f"/chat/{bot_id}", json={"query": question}, headers={**auth, "Accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    return events[-1]


def test_a_bot_answers_from_its_uploaded_txt_and_pdf_with_citations(http):
    auth = new_user_auth(http)
    bot = http.post("/bots/", json={"name": "Navigator"}, headers=auth).json()
    txt = http.post(
        f"/bots/{bot['id']}/train",
        files={"file": ("harbour.txt", b"The secret harbour of Port Zafiro lies behind the northern cliffs.")},
        headers=auth,
    )
    assert txt.status_code == 202 and txt.json()["status"] == "queued"
    pdf = http.post(
        f"/bots/{bot['id']}/train",
        files={"file": ("lighthouse.pdf", pdf_with("The Vermilion lighthouse guards the reef of Isla Brava."))},
        headers=auth,
    )
    assert pdf.status_code == 202
    assert wait_ready(http, auth, bot["id"], txt.json()["id"])["status"] == "ready"
    assert wait_ready(http, auth, bot["id"], pdf.json()["id"])["status"] == "ready"

    done = ask(http, auth, bot["id"], "Where is the secret harbour of Port Zafiro?")
    assert "lies behind the northern cliffs" in done["content"]
    assert done["citations"][0]["filename"] == "harbour.txt"
    assert done["citations"][0]["document_id"] == txt.json()["id"]

    done = ask(http, auth, bot["id"], "What guards the reef of Isla Brava?")
    assert "Vermilion lighthouse" in done["content"]
    cited = [c for c in done["citations"] if c["filename"] == "lighthouse.pdf"]
    assert cited and cited[0]["page"] == 2

    # Another user asking the same question never sees these passages.
    stranger = new_user_auth(http)
    their_bot = http.post("/bots/", json={"name": "Other"}, headers=stranger).json()
    done = ask(http, stranger, their_bot["id"], "Where is the secret harbour of Port Zafiro?")
    assert "northern cliffs" not in done["content"] and done["citations"] == []
