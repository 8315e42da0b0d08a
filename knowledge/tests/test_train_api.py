"""The 001 training surface: `POST /bots/{bot_id}/train`, the bot's documents, and what the chat cites from them.

Tasks run inline (ImmediateBackend) and ingestion is queued on commit, so these tests use transactional
databases: an upload is ingested, and a deleted document's file removed, before the response returns.
"""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from urllib.parse import quote_plus

import docx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.http.response import HttpResponseBase
from django.test import AsyncClient
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from rest_framework_simplejwt.tokens import AccessToken

from bots.models import Bot
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.services import clean_filename
from tests.helpers import assert_error, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENT_KEYS = {
    "id",
    "filename",
    "content_type",
    "size",
    "status",
    "progress",
    "error",
    "knowledge_base",
    "created_at",
    "updated_at",
}
HARBOUR = "The secret harbour of Port Zafiro lies behind the northern cliffs."
TEXT = b"Bytchat keeps notes about harbours. " + HARBOUR.encode() + b"\nThe lighthouse is painted red.\n"
BOUNDARY = "BytchatTrainBoundary7f3a"


# --- builders ----------------------------------------------------------------------------------------------------


def make_pdf(text: str = "") -> bytes:
    """A real one-page PDF; without text, a blank page."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    if text:
        pdf.drawString(72, 760, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def encrypt_pdf(data: bytes, password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx(text: str) -> bytes:
    document = docx.Document()
    document.add_heading("Harbour notes", level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def train_url(bot) -> str:
    return f"/bots/{bot.id}/train"


def document_url(bot, document_id) -> str:
    return f"/bots/{bot.id}/documents/{document_id}"


def upload(client, bot, name: str, data: bytes):
    return client.post(train_url(bot), {"file": SimpleUploadedFile(name, data)}, format="multipart")


def raw_upload(client, bot, filename: str, data: bytes):
    """A multipart body built by hand, so the filename reaches the server exactly as a hostile client sends it."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return client.post(train_url(bot), body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored_path(document: Document) -> Path:
    return Path(settings.MEDIA_ROOT, document.file.name)


def assert_nothing_stored() -> None:
    assert Document.objects.count() == 0
    assert Chunk.objects.count() == 0
    assert media_files() == []


def chat(user, bot, query: str) -> tuple[str, dict]:
    """The answer text and the payload of the `done` event of an SSE chat.

    Through the ASGI handler in one event loop: the sync test client runs the async view in a loop that
    closes when the view returns, which finalises the reply generator after its first chunk.
    """

    async def run() -> tuple[HttpResponseBase, bytes]:
        response = await AsyncClient().post(
            f"/chat/{bot.id}?query={quote_plus(query)}",
            headers={"Authorization": f"Bearer {AccessToken.for_user(user)}", "Accept": "text/event-stream"},
        )
        if not response.streaming:
            return response, response.content
        return response, b"".join([part async for part in response.streaming_content])

    response, raw = async_to_sync(run)()
    assert response.status_code == 200, raw
    assert response["Content-Type"].startswith("text/event-stream")
    events = parse_sse(raw)
    assert events[-1][0] == "done", events
    text = "".join(data["content"] for kind, data in events if kind == "chunk")
    return text, events[-1][1]


@pytest.fixture
def other_bot(make_bot, other_user):
    return make_bot(owner=other_user)


# --- accepted uploads --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("notes.txt", TEXT, "text/plain"),
        ("notes.md", b"# Harbours\n\n" + TEXT, "text/markdown"),
        ("notes.html", b"<html><body><h1>Harbours</h1><p>" + TEXT + b"</p></body></html>", "text/html"),
        ("notes.pdf", make_pdf(HARBOUR), "application/pdf"),
        (
            "notes.docx",
            make_docx(HARBOUR),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
    ids=["txt", "md", "html", "pdf", "docx"],
)
def test_each_supported_type_is_accepted_with_202_and_ends_ready(api, user, bot, name, data, content_type):
    response = upload(api, bot, name, data)
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == DOCUMENT_KEYS
    assert uuid.UUID(body["id"])
    assert body["filename"] == name
    assert body["content_type"] == content_type
    assert body["size"] == len(data)
    assert body["status"] in {"queued", "processing", "ready"}
    assert body["error"] == ""
    assert body["knowledge_base"] == KnowledgeBase.objects.get(home_of=bot).name

    detail = api.get(document_url(bot, body["id"]))
    assert detail.status_code == 200
    assert detail.json()["status"] == "ready"
    assert detail.json()["progress"] == 100
    assert detail.json()["error"] == ""
    chunks = Chunk.objects.filter(document_id=body["id"])
    assert chunks.exists()
    assert all(chunk.owner_id == user.id for chunk in chunks)
    assert "Port Zafiro" in " ".join(chunk.text for chunk in chunks)


def test_training_attaches_the_bots_own_knowledge_base(api, bot):
    upload(api, bot, "notes.txt", TEXT)
    base = KnowledgeBase.objects.get(home_of=bot)
    assert list(base.bots.all()) == [bot]
    assert base.owner_id == bot.owner_id


def test_the_same_file_twice_is_one_document_with_one_set_of_chunks(api, bot):
    first = upload(api, bot, "notes.txt", TEXT)
    assert first.status_code == 202
    chunk_ids = list(Chunk.objects.values_list("id", flat=True))
    assert chunk_ids

    second = upload(api, bot, "notes.txt", TEXT)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    renamed = upload(api, bot, "copy-of-notes.txt", TEXT)
    assert renamed.status_code == 200
    assert renamed.json()["id"] == first.json()["id"]

    assert Document.objects.count() == 1
    assert list(Chunk.objects.values_list("id", flat=True)) == chunk_ids
    assert len(media_files()) == 1


# --- refusals ----------------------------------------------------------------------------------------------------


def test_no_file_field_is_refused_with_400(api, bot):
    response = api.post(train_url(bot), {"note": "no file here"}, format="multipart")
    assert_error(response, 400, "file")
    assert_nothing_stored()


def test_two_files_are_refused_with_400(api, bot):
    files = [SimpleUploadedFile("a.txt", b"first file"), SimpleUploadedFile("b.txt", b"second file")]
    response = api.post(train_url(bot), {"file": files}, format="multipart")
    assert_error(response, 400, "exactly one file")
    assert_nothing_stored()


@pytest.mark.parametrize("data", [b"", b"  \n\t \r\n  "], ids=["empty", "whitespace"])
def test_empty_or_whitespace_file_is_refused_with_400(api, bot, data):
    response = upload(api, bot, "empty.txt", data)
    assert_error(response, 400, "empty")
    assert_nothing_stored()


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf", b"\xef\xbb\xbf  \r\n\t ", "  \n ".encode("utf-16")],
    ids=["utf8-bom-only", "utf8-bom-whitespace", "utf16-whitespace"],
)
def test_empty_text_behind_a_byte_order_mark_is_refused_with_400(api, bot, data):
    response = upload(api, bot, "empty.txt", data)
    assert_error(response, 400, "empty")
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60, ('".exe"', "not supported")),
        ("README", b"plain words", ("no extension",)),
        ("report.pdf", b"<!DOCTYPE html><html><body>not a pdf</body></html>", ("PDF",)),
        ("notes.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ("PNG",)),
        ("notes.docx", b"just text, not a zip archive", ("Word",)),
    ],
    ids=["exe", "no-extension", "pdf-that-is-html", "txt-that-is-png", "docx-that-is-text"],
)
def test_unsupported_or_lying_files_are_refused_with_415(api, bot, name, data, words):
    response = upload(api, bot, name, data)
    assert_error(response, 415, *words)
    assert_nothing_stored()


def test_latin1_text_is_refused_with_400(api, bot):
    response = upload(api, bot, "notas.txt", "El año de la piña en Málaga.".encode("latin-1"))
    assert_error(response, 400, "UTF-8")
    assert_nothing_stored()


def test_file_over_the_size_limit_is_refused_with_413(api, bot, settings):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 1000
    assert upload(api, bot, "small.txt", b"x" * 1000).status_code == 202
    Document.objects.all().delete()
    assert media_files() == []

    response = upload(api, bot, "big.txt", b"x" * 1001)
    assert_error(response, 413, "larger than the limit")
    assert_nothing_stored()


def test_json_body_instead_of_multipart_is_refused_with_json_detail(api, bot):
    response = api.post(train_url(bot), {"file": "notes.txt", "content": "hello"}, format="json")
    assert response.status_code in (400, 415), response.content
    assert response["Content-Type"].startswith("application/json")
    assert "application/json" in response.json()["detail"]
    assert_nothing_stored()


def test_anonymous_upload_is_refused_with_401(anon, bot):
    response = upload(anon, bot, "notes.txt", TEXT)
    assert response.status_code == 401
    assert_nothing_stored()


# --- ingestion failures ------------------------------------------------------------------------------------------


def test_encrypted_pdf_is_accepted_and_fails_with_a_readable_reason(api, bot):
    response = upload(api, bot, "locked.pdf", encrypt_pdf(make_pdf(HARBOUR), "secret"))
    assert response.status_code == 202, response.content
    assert response["Content-Type"].startswith("application/json")
    document = api.get(document_url(bot, response.json()["id"])).json()
    assert document["status"] == "failed"
    assert "encrypted" in document["error"]
    assert Chunk.objects.count() == 0


def test_pdf_without_text_is_accepted_and_fails_with_a_readable_reason(api, bot):
    response = upload(api, bot, "scan.pdf", make_pdf())
    assert response.status_code == 202, response.content
    assert response["Content-Type"].startswith("application/json")
    document = api.get(document_url(bot, response.json()["id"])).json()
    assert document["status"] == "failed"
    assert "no extractable text" in document["error"]
    assert Chunk.objects.count() == 0
    # The worker survived: the next upload is still ingested.
    assert api.get(document_url(bot, upload(api, bot, "notes.txt", TEXT).json()["id"])).json()["status"] == "ready"


# --- filenames ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("/etc/cron.d/job.txt", "job.txt"),
        ("..\\..\\windows\\notes.txt", "notes.txt"),
        ("bad\x00name.txt", None),
        ("invoice\u202etxt.exe.txt", None),
        ("a" * 296 + ".txt", None),
    ],
    ids=["dot-dot", "absolute", "backslashes", "nul", "rtlo", "300-chars"],
)
def test_hostile_filenames_are_safe_metadata_and_the_file_gets_a_server_uuid_path(api, user, bot, sent, kept):
    response = raw_upload(api, bot, sent, TEXT)
    assert response.status_code == 202, response.content
    filename = response.json()["filename"]
    if kept is not None:
        assert filename == kept
    assert filename.endswith(".txt")
    assert "/" not in filename and "\\" not in filename and ".." not in filename
    assert not any(ord(ch) < 32 or ch in "\x7f\u202e\u202d\u200f" for ch in filename)
    assert 0 < len(filename) <= 200

    document = Document.objects.get(pk=response.json()["id"])
    root = Path(settings.MEDIA_ROOT).resolve()
    path = stored_path(document).resolve()
    assert path.is_relative_to(root)
    assert path.relative_to(root).parts == ("knowledge", str(user.id), f"{document.id}.txt")
    assert media_files() == [stored_path(document)]
    assert path.read_bytes() == TEXT


@pytest.mark.parametrize(
    "raw",
    [
        "../../etc/passwd.txt",
        "/abs/x.pdf",
        "..\\..\\x.txt",
        "bad\x00name.txt",
        "in\u202etxt.exe.txt",
        "b" * 300 + ".md",
    ],
)
def test_clean_filename_keeps_only_a_safe_last_component(raw):
    name = clean_filename(raw)
    assert name
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert not any(ord(ch) < 32 or ch == "\u202e" for ch in name)
    assert len(name) <= 200


# --- listing and deletion ----------------------------------------------------------------------------------------


def test_listing_shows_only_that_bots_documents(api, user, bot):
    second_bot = Bot.objects.create(owner=user, name="Other")
    mine = upload(api, bot, "notes.txt", TEXT).json()
    upload(api, bot, "more.md", b"# More\n\nMore harbour notes.")
    theirs = upload(api, second_bot, "other.txt", b"Notes for the other bot.").json()

    listed = api.get(f"/bots/{bot.id}/documents")
    assert listed.status_code == 200
    ids = [item["id"] for item in listed.json()]
    assert len(ids) == 2 and mine["id"] in ids and theirs["id"] not in ids
    assert all(set(item) == DOCUMENT_KEYS for item in listed.json())
    assert [item["id"] for item in api.get(f"/bots/{second_bot.id}/documents").json()] == [theirs["id"]]


def test_delete_document_removes_its_file_and_chunks(api, bot):
    keep = upload(api, bot, "keep.txt", b"This one stays in the base.").json()
    doomed = upload(api, bot, "notes.txt", TEXT).json()
    doomed_path = stored_path(Document.objects.get(pk=doomed["id"]))
    assert doomed_path.is_file()

    response = api.delete(document_url(bot, doomed["id"]))
    assert response.status_code == 204
    assert not doomed_path.exists()
    assert not Chunk.objects.filter(document_id=doomed["id"]).exists()
    assert_error(api.get(document_url(bot, doomed["id"])), 404)
    assert_error(api.delete(document_url(bot, doomed["id"])), 404)
    assert [item["id"] for item in api.get(f"/bots/{bot.id}/documents").json()] == [keep["id"]]
    assert media_files() == [stored_path(Document.objects.get(pk=keep["id"]))]


def test_deleting_the_bot_removes_its_documents_files(api, bot):
    upload(api, bot, "notes.txt", TEXT)
    upload(api, bot, "notes.pdf", make_pdf(HARBOUR))
    assert len(media_files()) == 2

    assert api.delete(f"/bots/{bot.id}").status_code == 204
    assert media_files() == []
    assert Document.objects.count() == 0
    assert Chunk.objects.count() == 0
    assert not KnowledgeBase.objects.filter(home_of_id=bot.id).exists()


# --- isolation ---------------------------------------------------------------------------------------------------


def test_another_user_cannot_train_list_read_or_delete_a_users_documents(api, other_api, bot):
    document = upload(api, bot, "notes.txt", TEXT).json()

    assert_error(upload(other_api, bot, "intruder.txt", b"Injected notes."), 404)
    assert_error(other_api.get(f"/bots/{bot.id}/documents"), 404)
    assert_error(other_api.get(document_url(bot, document["id"])), 404)
    assert_error(other_api.delete(document_url(bot, document["id"])), 404)

    assert list(Document.objects.values_list("id", flat=True)) == [uuid.UUID(document["id"])]
    assert api.get(document_url(bot, document["id"])).json()["status"] == "ready"
    assert len(media_files()) == 1


def test_a_document_id_under_another_bot_is_not_found(api, other_api, user, bot, other_bot):
    document = upload(api, bot, "notes.txt", TEXT).json()
    upload(other_api, other_bot, "theirs.txt", b"Their own notes.")

    assert_error(other_api.get(document_url(other_bot, document["id"])), 404)
    assert_error(other_api.delete(document_url(other_bot, document["id"])), 404)
    assert document["id"] not in [item["id"] for item in other_api.get(f"/bots/{other_bot.id}/documents").json()]
    # The owner's own second bot does not reach it either: documents are addressed through their bot.
    second_bot = Bot.objects.create(owner=user, name="Second")
    assert_error(api.get(document_url(second_bot, document["id"])), 404)
    assert_error(api.delete(document_url(second_bot, document["id"])), 404)
    assert Document.objects.filter(pk=document["id"]).exists()


# --- chat over the trained documents -----------------------------------------------------------------------------


def test_chat_answers_from_the_trained_document_and_cites_it(api, user, other_user, bot, other_bot):
    document = upload(api, bot, "harbours.txt", TEXT).json()
    assert api.get(document_url(bot, document["id"])).json()["status"] == "ready"

    text, done = chat(user, bot, "Where is the secret harbour")
    assert HARBOUR in text
    assert done["content"] == text
    cited = {(c["document_id"], c["filename"]) for c in done["citations"]}
    assert (document["id"], "harbours.txt") in cited

    untrained = Bot.objects.create(owner=user, name="Untrained")
    text, done = chat(user, untrained, "Where is the secret harbour")
    assert "Zafiro" not in text
    assert done["citations"] == []

    text, done = chat(other_user, other_bot, "Where is the secret harbour of Port Zafiro")
    assert HARBOUR not in text and "northern cliffs" not in text
    assert done["citations"] == []


def test_chat_no_longer_cites_a_deleted_document(api, user, bot):
    document = upload(api, bot, "harbours.txt", TEXT).json()
    assert api.delete(document_url(bot, document["id"])).status_code == 204
    text, done = chat(user, bot, "Where is the secret harbour")
    assert "northern cliffs" not in text
    assert done["citations"] == []


# --- management command ------------------------------------------------------------------------------------------


def test_ingest_folder_uploads_supported_files_and_skips_the_rest(user, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "one.txt").write_bytes(b"The first note is about tides.")
    (folder / "two.txt").write_bytes(b"The second note is about anchors.")
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 60)
    out, err = io.StringIO(), io.StringIO()

    call_command("ingest_folder", str(folder), user=user.email, base="Inbox", stdout=out, stderr=err)

    documents = Document.objects.filter(owner=user, knowledge_base__name="Inbox")
    assert sorted(documents.values_list("filename", flat=True)) == ["one.txt", "two.txt"]
    assert set(documents.values_list("status", flat=True)) == {"ready"}
    assert Chunk.objects.filter(document__in=documents).count() == 2
    assert "2 queued" in out.getvalue() and "0 refused" in out.getvalue()
    assert "tool.exe" not in err.getvalue()
    assert len(media_files()) == 2
    assert all(re.fullmatch(r"[0-9a-f-]{36}\.txt", p.name) for p in media_files())
