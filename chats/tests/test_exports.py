"""GET /chats/{id}/export: Markdown and PDF of the current branch, JSON of the whole tree, as attachments."""

import io
import itertools
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from accounts.services import api_key_create
from chats.exports.limits import PDF_MAX_CHARS, size_bound
from chats.models import Chat, Message, MessageStatus, Role, Surface
from chats.services import assistant_message_create, chat_create, user_message_create
from tests.helpers import assert_error

pytestmark = [
    pytest.mark.django_db,
    # The files are streamed through an async iterator (for ASGI); Django's sync test client reads it whole.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators"),
]
FORMATS = ["markdown", "json", "pdf"]
CONTENT_TYPES = {"markdown": "text/markdown; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}
EXTENSIONS = {"markdown": "md", "json": "json", "pdf": "pdf"}
HOSTILE = '<script>alert("x")</script> <img src="/etc/passwd"> & <b>bold</b>'


def export(api, chat_id, fmt=None, **headers):
    query = f"?format={fmt}" if fmt else ""
    return api.get(f"/chats/{chat_id}/export{query}", **headers)


def body_of(response) -> bytes:
    """The whole file; Markdown and JSON are streamed (the test client reads the async stream to its end)."""
    return b"".join(response) if response.streaming else response.content


def pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture
def harbour_chat(user):
    """A chat whose second question was asked twice: the first answer's branch is no longer current."""
    chat = chat_create(owner=user, surface=Surface.CHATS, title="Harbour hours")
    question = user_message_create(chat=chat, content="When does the harbour open?")
    assistant_message_create(
        chat=chat,
        parent=question,
        content="It opens at **six**.\n\nSee the notice board.",
        status=MessageStatus.COMPLETE,
        model="local/offline",
        citations=[
            {"document_id": "d1", "filename": "harbour-rules.pdf", "page": 3, "position": 0, "text": "six"},
            {"title": "Port authority", "url": "https://port.example/hours", "snippet": "..."},
        ],
    )
    old = user_message_create(chat=chat, content="And the old lighthouse?")
    assistant_message_create(chat=chat, parent=old, content="Closed on Mondays.", status=MessageStatus.COMPLETE)
    # Asked again from the first answer: a second branch, now the current one.
    new = user_message_create(chat=chat, content="And the new ferry?", parent=old.parent)
    assistant_message_create(chat=chat, parent=new, content="Every hour.", status=MessageStatus.CANCELLED)
    chat.refresh_from_db()
    return chat


def test_markdown_is_the_current_branch_with_role_headings_sources_and_markdown_kept(api, harbour_chat):
    response = export(api, harbour_chat.pk)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    text = body_of(response).decode()
    assert text.startswith("# Harbour hours\n")
    assert "## You\n\nWhen does the harbour open?" in text
    assert "## Assistant\n\nIt opens at **six**.\n\nSee the notice board." in text
    assert "1. harbour-rules.pdf, page 3\n2. Port authority — https://port.example/hours\n" in text
    assert "## Assistant (stopped)\n\nEvery hour." in text
    assert "4 messages" in text
    assert "old lighthouse" not in text and "Closed on Mondays" not in text
    order = [text.index(part) for part in ("harbour open", "**six**", "new ferry", "Every hour")]
    assert order == sorted(order)


def test_markdown_and_pdf_headings_and_dates_follow_the_request_language(api, harbour_chat):
    text = body_of(export(api, harbour_chat.pk, "markdown", HTTP_ACCEPT_LANGUAGE="es")).decode()
    assert "## Asistente\n\nIt opens at **six**." in text
    assert "## Assistant" not in text
    # Spanish dates spell the month out with "de": the file is written in the request's language.
    assert re.search(r"\d+ de \w+ de \d{4}", text), text[:300]
    pdf = pdf_text(export(api, harbour_chat.pk, "pdf", HTTP_ACCEPT_LANGUAGE="es").content)
    assert "Asistente" in pdf and "Página" in pdf
    assert "Assistant" not in pdf


def test_json_is_the_whole_tree_with_ids_and_parents_parents_first(api, harbour_chat):
    response = export(api, harbour_chat.pk, "json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(body_of(response))
    assert set(body) == {"chat", "messages", "exported_at", "format_version"}
    assert body["format_version"] == 1
    assert body["chat"] == {
        "id": str(harbour_chat.pk),
        "title": "Harbour hours",
        "bot_id": None,
        "surface": "chats",
        "created_at": body["chat"]["created_at"],
        "updated_at": body["chat"]["updated_at"],
        "current_node_id": str(harbour_chat.current_node_id),
    }
    stored = {str(m.pk): m for m in Message.objects.filter(chat=harbour_chat)}
    messages = body["messages"]
    assert len(messages) == 6 == len(stored)
    seen = set()
    for row in messages:
        assert set(row) == {"id", "parent_id", "role", "content", "status", "model", "created_at", "citations"}
        message = stored[row["id"]]
        assert row["parent_id"] == (str(message.parent_id) if message.parent_id else None)
        assert row["parent_id"] is None or row["parent_id"] in seen
        assert (row["role"], row["content"], row["status"]) == (message.role, message.content, message.status)
        seen.add(row["id"])
    # Both answers to the second question hang off the same first answer: the tree, not one branch.
    first_answer = next(row for row in messages if row["content"].startswith("It opens"))
    children = [row["content"] for row in messages if row["parent_id"] == first_answer["id"]]
    assert children == ["And the old lighthouse?", "And the new ferry?"]
    assert first_answer["citations"][0]["filename"] == "harbour-rules.pdf"
    assert first_answer["model"] == "local/offline"


def test_pdf_prints_the_current_branch_and_markup_literally(api, user):
    chat = chat_create(owner=user, surface=Surface.CHATS, title="Markup")
    question = user_message_create(chat=chat, content=HOSTILE)
    assistant_message_create(chat=chat, parent=question, content="Fine & <i>well</i>.", status="complete")
    response = export(api, chat.pk, "pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert HOSTILE in text
    assert "Fine & <i>well</i>." in text
    assert "You" in text and "Assistant" in text


def test_pdf_follows_the_current_branch(api, harbour_chat):
    text = pdf_text(export(api, harbour_chat.pk, "pdf").content)
    assert "When does the harbour open?" in text and "And the new ferry?" in text and "Every hour." in text
    assert "harbour-rules.pdf, page 3" in text
    assert "old lighthouse" not in text and "Closed on Mondays" not in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_an_attachment_named_after_the_title_and_date(api, harbour_chat, fmt):
    response = export(api, harbour_chat.pk, fmt)
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPES[fmt]
    assert response["X-Content-Type-Options"] == "nosniff"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="harbour-hours-{today}.{EXTENSIONS[fmt]}"'


def test_the_filename_drops_quotes_slashes_and_control_characters_and_keeps_other_letters(api, user):
    chat = chat_create(owner=user, surface=Surface.CHATS, title='Año "nuevo"\r\n/../etc\\passwd\x1b\x07;x=1')
    header = export(api, chat.pk)["Content-Disposition"]
    today = timezone.localdate().isoformat()
    ascii_part, unicode_part = header.split("; filename*=")
    assert ascii_part == f'attachment; filename="ano-nuevo-etcpasswdx1-{today}.md"'
    assert unicode_part == f"UTF-8''a%C3%B1o-nuevo-etcpasswdx1-{today}.md"
    untitled = chat_create(owner=user, surface=Surface.CHATS, title='"/"')
    assert export(api, untitled.pk)["Content-Disposition"] == f'attachment; filename="chat-{today}.md"'


def test_a_personal_api_key_exports_too(anon, user, harbour_chat):
    _key, raw = api_key_create(user=user, name="cli")
    response = export(anon, harbour_chat.pk, "json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert json.loads(body_of(response))["chat"]["id"] == str(harbour_chat.pk)


@pytest.mark.parametrize("fmt", [*FORMATS, None])
def test_another_users_chat_is_a_404_like_a_missing_one_in_every_format(other_api, harbour_chat, fmt):
    missing = assert_error(export(other_api, "00000000-0000-0000-0000-000000000000", fmt), 404)
    response = export(other_api, harbour_chat.pk, fmt)
    assert assert_error(response, 404) == missing
    assert response.json()["code"] == "chat_not_found"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_visitors_widget_chat_is_not_the_bot_owners_to_export(api, user, make_bot, fmt):
    import uuid

    bot = make_bot(owner=user, public=True)
    visitor_chat = chat_create(owner=user, surface=Surface.WIDGET, bot=bot, visitor_id=uuid.uuid4(), title="v")
    user_message_create(chat=visitor_chat, content="private to the visitor")
    assert_error(export(api, visitor_chat.pk, fmt), 404)


@pytest.mark.parametrize("fmt", FORMATS)
def test_exporting_needs_credentials(anon, harbour_chat, fmt):
    response = export(anon, harbour_chat.pk, fmt)
    assert_error(response, 401)
    assert response.json()["code"] == "not_authenticated"
    assert "Bearer" in response["WWW-Authenticate"]


def test_an_unknown_format_is_a_400_naming_it(api, harbour_chat):
    response = export(api, harbour_chat.pk, "docx")
    assert_error(response, 400, "format", "docx")
    assert response.json()["code"] == "invalid"


def test_a_pdf_accept_header_and_a_trailing_slash_are_fine(api, harbour_chat):
    response = api.get(f"/chats/{harbour_chat.pk}/export/?format=pdf", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")


def long_chat(user, count: int, *, size: int = 40) -> Chat:
    """A chat of `count` messages in one branch, alternating questions and answers, built in one insert."""
    chat = chat_create(owner=user, surface=Surface.CHATS, title="Long chat")
    messages, parent = [], None
    for number in range(count):
        role = Role.USER if number % 2 == 0 else Role.ASSISTANT
        text = f"message {number:04d} " + "x" * max(0, size - 13)
        citations = [{"filename": f"doc-{number}.pdf", "page": number}] if role == Role.ASSISTANT else []
        parent = Message(chat=chat, parent=parent, role=role, content=text, citations=citations)
        messages.append(parent)
    Message.objects.bulk_create(messages)
    Chat.objects.filter(pk=chat.pk).update(current_node=messages[-1])
    return chat


def test_a_1000_message_chat_exports_completely_within_its_bounds_with_constant_queries(api, user):
    small = long_chat(user, 2)
    chat = long_chat(user, 1000)
    chars = sum(len(m.content) + len(json.dumps(m.citations)) for m in Message.objects.filter(chat=chat))
    bound = size_bound(messages=1000, chars=chars)
    numbers = [f"message {number:04d}" for number in range(1000)]

    for fmt in FORMATS:
        with CaptureQueriesContext(connection) as few:
            assert export(api, small.pk, fmt).status_code == 200
        with CaptureQueriesContext(connection) as many:
            response = export(api, chat.pk, fmt)
        # The user, the chat, its size, its messages: the same four queries for 2 messages or 1,000.
        assert len(many.captured_queries) == len(few.captured_queries) <= 4, many.captured_queries
        assert response.status_code == 200, response.content
        body = body_of(response)
        if fmt == "markdown":
            text = body.decode()
            assert len(body) <= bound
            assert re.findall(r"message \d{4}", text) == numbers
            assert text.count("## You\n") == 500 and text.count("## Assistant\n") == 500
            assert "1. doc-999.pdf, page 999\n" in text
        elif fmt == "json":
            assert len(body) <= bound
            messages = json.loads(body)["messages"]
            assert [m["content"][:12] for m in messages] == numbers
            assert all(m["parent_id"] == prev["id"] for prev, m in itertools.pairwise(messages))
        else:
            assert body.startswith(b"%PDF-")
            assert re.findall(r"message \d{4}", pdf_text(body)) == numbers


def test_a_branch_too_large_for_a_pdf_is_a_clear_422_and_markdown_still_works(api, user):
    chat = long_chat(user, 4, size=PDF_MAX_CHARS // 3)
    assert_error(export(api, chat.pk, "pdf"), 422, "PDF", "format=markdown", "format=json")
    assert export(api, chat.pk, "markdown").status_code == 200


def test_a_pdf_render_past_its_time_limit_is_a_422_not_a_hang_or_a_500(api, harbour_chat, settings):
    settings.EXAM_RENDER_SECONDS = 0.01
    response = export(api, harbour_chat.pk, "pdf")
    assert_error(response, 422, "Markdown", "JSON")
    assert response.json()["code"] == "render_failed"


def test_a_chat_past_the_export_bounds_is_a_422_in_every_format(api, user, monkeypatch):
    import chats.exports.limits as limits

    monkeypatch.setattr(limits, "EXPORT_MAX_MESSAGES", 10)
    chat = long_chat(user, 11)
    for fmt in FORMATS:
        response = export(api, chat.pk, fmt)
        assert_error(response, 422, "11 messages", "10")
        assert response.json()["code"] == "export_too_large"


# -- through a real server (uvicorn, the API's own middleware), as a browser downloads it ---------------


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.live_server import LiveServer

    server = LiveServer(tmp_path_factory.mktemp("live-export"), {}).start()
    yield server
    server.stop()


@pytest.mark.e2e
def test_a_real_server_streams_the_markdown_and_json_and_serves_the_pdf_whole(live):
    import httpx

    from tests.live_server import new_user_auth

    with httpx.Client(base_url=live.url, timeout=60) as http:
        auth = new_user_auth(http)
        chat = http.post("/chats/create", json={"name": "Faro «Año»"}, headers=auth).json()
        for role, text in [("Human", "¿A qué hora abre?"), ("Assistant", HOSTILE)]:
            body = {"chat_id": chat["id"], "role": role, "message": text}
            assert http.post("/conversations/create", json=body, headers=auth).status_code == 201
        spanish = {**auth, "Accept-Language": "es"}
        with http.stream("GET", f"/chats/{chat['id']}/export", headers=spanish) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/markdown; charset=utf-8"
            assert response.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in response.headers
            text = response.read().decode()
        assert text.startswith("# Faro «Año»\n")
        # The answer the client wrote says so (its note is translated once the catalogue has it).
        assert re.search(r"## Asistente \([^)\n]+\)\n\n" + re.escape(HOSTILE) + "\n", text), text
        tree = http.get(f"/chats/{chat['id']}/export?format=json", headers=auth)
        assert [m["content"] for m in tree.json()["messages"]] == ["¿A qué hora abre?", HOSTILE]
        assert tree.headers["content-disposition"].startswith('attachment; filename="faro-ano-')
        assert "filename*=UTF-8''faro-a%C3%B1o-" in tree.headers["content-disposition"]
        pdf = http.get(f"/chats/{chat['id']}/export?format=pdf", headers=spanish)
        assert pdf.status_code == 200
        assert int(pdf.headers["content-length"]) == len(pdf.content)
        assert HOSTILE in pdf_text(pdf.content)
        other = new_user_auth(http)
        assert http.get(f"/chats/{chat['id']}/export?format=pdf", headers=other).status_code == 404
    assert live.tracebacks() == ""
