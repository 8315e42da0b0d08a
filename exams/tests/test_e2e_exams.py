"""An exam through the real ASGI server and its database worker, written by the fake remote model (one
invalid answer first), as the seed's client sends it: the JWT in the body, Spanish field names."""

import base64
import time

import httpx
import pytest

from exams.tests.conftest import b64, pdf_pages
from exams.tests.material import SPANISH
from tests.live_server import LiveServer, new_user_auth

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_openai_server):
    environment = {
        "LLM_PROVIDER": "custom",
        "LLM_MODEL": "fake-exam-invalid-1",
        "CUSTOM_LLM_BASE_URL": fake_openai_server.base_url,
        "CUSTOM_LLM_API_KEY": "test-provider-key",
        "LLM_MAX_RETRIES": "0",
    }
    live = LiveServer(tmp_path_factory.mktemp("live-exams"), environment, with_worker=True).start()
    yield live
    live.stop()


def wait_for_material(http: httpx.Client, body: dict, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = http.post("/context", json={**body, "text": "fotosíntesis"}, headers={"Accept": "application/json"})
        if response.status_code == 200 and response.json()["citations"]:
            return
        time.sleep(0.2)
    raise AssertionError("the document was not ingested in time")


def test_create_and_get_an_exam_through_the_real_server(server, fake_openai_server):
    fake_openai_server.reset()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        auth = new_user_auth(http)
        token = auth["Authorization"].removeprefix("Bearer ")
        email = http.get("/users/me", headers=auth).json()["email"]
        seed = {"user": email, "token": token, "type_user": "free"}
        files = [{"filename": "fotosíntesis.txt", "content": b64(SPANISH.encode())}]
        assert http.post("/load_context", json={**seed, "name": "Fotosíntesis", "files": files}).status_code == 200
        wait_for_material(http, seed)

        exam = {"asignatura": "Fotosíntesis", "preguntas": 3, "dificultad": "media", "pistas": True}
        created = http.post("/create_exam", json={**seed, **exam})
        assert created.status_code == 200, server.log()
        assert created.json() == {"result": True, "message": "Exam created successfully", "title": "Fotosíntesis"}
        chat_calls = [r for r in fake_openai_server.requests if r.path.endswith("/chat/completions")]
        assert len(chat_calls) == 2  # the first answer was invalid and was retried

        fetched = http.post("/get_exam", json={**seed, "title": "Fotosíntesis"})
        assert fetched.status_code == 200
        pages = pdf_pages(base64.b64decode(fetched.json()["pdf"]))
        assert "¿Qué palabra aparece en el pasaje" in pages[0] and "Mira el pasaje" in pages[0]
        assert "Answer key" in pages[-1]

        [row] = http.get("/exams", headers=auth).json()
        assert row["pdf_url"] == f"{server.url}/exams/{row['id']}/pdf"
        download = http.get(row["pdf_url"], headers=auth)
        assert download.status_code == 200 and download.headers["content-type"] == "application/pdf"
        assert download.content == base64.b64decode(fetched.json()["pdf"])
