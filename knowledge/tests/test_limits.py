"""Caps per user (knowledge bases, stored bytes) on every surface that stores knowledge; ingest_folder reads safely."""

from __future__ import annotations

import base64
import io
import os
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from bots.models import Bot
from knowledge.models import Document, KnowledgeBase
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

HARBOUR = b"The secret harbour of Port Zafiro lies behind the northern cliffs."
LIGHTHOUSE = b"The Vermilion lighthouse guards the reef of Isla Brava."


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load(api, name: str, *contents: bytes):
    files = [{"filename": f"note{index}.txt", "content": b64(data)} for index, data in enumerate(contents)]
    return api.post("/load_context", {"name": name, "files": files}, format="json")


def train(api, bot, data: bytes, name: str = "harbour.txt"):
    return api.post(f"/bots/{bot.id}/train", {"file": SimpleUploadedFile(name, data)}, format="multipart")


def stored_files(settings) -> list[Path]:
    media = Path(settings.MEDIA_ROOT)
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


def assert_refused(response, status: int, code: str) -> None:
    assert_error(response, status)
    assert response.json()["code"] == code


# --- knowledge bases per user ------------------------------------------------------------------------------------


def test_load_context_into_a_new_base_past_the_cap_is_403_and_stores_nothing(api, user, settings):
    settings.KNOWLEDGE_BASES_PER_USER = 1
    assert load(api, "Geografía", HARBOUR).status_code == 200

    assert_refused(load(api, "Historia", LIGHTHOUSE), 403, "too_many_knowledge_bases")
    assert list(KnowledgeBase.objects.values_list("name", flat=True)) == ["Geografía"]
    assert Document.objects.count() == 1 and len(stored_files(settings)) == 1
    # An existing base still takes files.
    assert load(api, "Geografía", LIGHTHOUSE).status_code == 200


def test_training_a_new_bot_past_the_base_cap_is_403_and_stores_nothing(api, user, settings):
    settings.KNOWLEDGE_BASES_PER_USER = 1
    assert load(api, "Geografía", HARBOUR).status_code == 200
    bot = Bot.objects.create(owner=user, name="Harbour guide")

    assert_refused(train(api, bot, LIGHTHOUSE), 403, "too_many_knowledge_bases")
    assert KnowledgeBase.objects.count() == 1 and Document.objects.count() == 1
    assert len(stored_files(settings)) == 1


def test_the_base_cap_counts_only_the_users_own_bases(api, user, other_api, settings):
    settings.KNOWLEDGE_BASES_PER_USER = 1
    assert load(other_api, "Otra", HARBOUR).status_code == 200
    assert load(api, "Mía", HARBOUR).status_code == 200


def test_ingest_folder_into_a_new_base_past_the_cap_stops_with_the_reason(user, tmp_path, settings):
    settings.KNOWLEDGE_BASES_PER_USER = 0
    (tmp_path / "a.txt").write_bytes(HARBOUR)
    with pytest.raises(CommandError, match="limit of 0 knowledge bases"):
        call_command("ingest_folder", str(tmp_path), user=user.email, base="Inbox", stdout=io.StringIO())
    assert not KnowledgeBase.objects.exists() and not stored_files(settings)


# --- stored bytes per user ---------------------------------------------------------------------------------------


def test_training_past_the_storage_cap_is_403_and_stores_nothing(api, user, settings):
    settings.KNOWLEDGE_MAX_BYTES_PER_USER = len(HARBOUR) + len(LIGHTHOUSE) - 1
    bot = Bot.objects.create(owner=user, name="Harbour guide")
    assert train(api, bot, HARBOUR).status_code == 202

    assert_refused(train(api, bot, LIGHTHOUSE, "lighthouse.txt"), 403, "storage_full")
    assert list(Document.objects.values_list("filename", flat=True)) == ["harbour.txt"]
    assert len(stored_files(settings)) == 1
    # The same file again is the same document: it takes no more room.
    assert train(api, bot, HARBOUR).status_code == 200


def test_a_load_whose_files_together_pass_the_storage_cap_is_403_and_stores_nothing(api, user, settings):
    settings.KNOWLEDGE_MAX_BYTES_PER_USER = len(HARBOUR) + len(LIGHTHOUSE) - 1

    assert_refused(load(api, "Geografía", HARBOUR, LIGHTHOUSE), 403, "storage_full")
    assert not KnowledgeBase.objects.exists() and not Document.objects.exists()
    assert not stored_files(settings)


def test_deleting_documents_makes_room_again(api, user, settings):
    settings.KNOWLEDGE_MAX_BYTES_PER_USER = len(HARBOUR) + len(LIGHTHOUSE) - 1
    bot = Bot.objects.create(owner=user, name="Harbour guide")
    first = train(api, bot, HARBOUR).json()
    assert train(api, bot, LIGHTHOUSE, "lighthouse.txt").status_code == 403

    assert api.delete(f"/bots/{bot.id}/documents/{first['id']}").status_code == 204
    assert train(api, bot, LIGHTHOUSE, "lighthouse.txt").status_code == 202


def test_the_storage_cap_counts_only_the_users_own_files(api, other_api, user, other_user, settings):
    settings.KNOWLEDGE_MAX_BYTES_PER_USER = len(HARBOUR)
    assert load(other_api, "Otra", HARBOUR).status_code == 200
    assert load(api, "Mía", HARBOUR).status_code == 200


def test_ingest_folder_reports_files_past_the_storage_cap_and_keeps_the_rest(user, tmp_path, settings):
    settings.KNOWLEDGE_MAX_BYTES_PER_USER = len(HARBOUR)
    (tmp_path / "a.txt").write_bytes(HARBOUR)
    (tmp_path / "b.txt").write_bytes(LIGHTHOUSE)
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest_folder", str(tmp_path), user=user.email, base="Inbox", stdout=out, stderr=err)
    assert "1 queued" in out.getvalue() and "1 refused" in out.getvalue()
    assert "b.txt" in err.getvalue() and "document storage" in err.getvalue()
    assert list(Document.objects.values_list("filename", flat=True)) == ["a.txt"]


# --- ingest_folder reads no more than the file limit -------------------------------------------------------------


def test_ingest_folder_refuses_an_oversized_file_without_reading_it(user, tmp_path, settings):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 1024 * 1024
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: 64 MB long, nothing on disk
    os.utime(huge, (0, time.time()))  # an access time before the change time: the next read would move it
    (tmp_path / "small.txt").write_bytes(HARBOUR)
    out, err = io.StringIO(), io.StringIO()

    call_command("ingest_folder", str(tmp_path), user=user.email, base="Inbox", stdout=out, stderr=err)

    assert "1 queued" in out.getvalue() and "1 refused" in out.getvalue()
    assert "huge.txt: The file is larger than the limit of 1 MB." in err.getvalue()
    assert huge.stat().st_atime == 0  # never opened for reading
    assert list(Document.objects.values_list("filename", flat=True)) == ["small.txt"]
