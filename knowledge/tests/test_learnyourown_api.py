"""The 000 context endpoints: load_context, context, get_name, get_documents, delete_name."""

import base64
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from knowledge.models import Chunk, Document, KnowledgeBase
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db(transaction=True)
HARBOUR = b"The secret harbour of Port Zafiro lies behind the northern cliffs."


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load(client, user, name="Geografía", files=None, **extra):
    files = files if files is not None else [{"filename": "harbour.txt", "content": b64(HARBOUR)}]
    return client.post("/load_context", {"user": user.email, "name": name, "files": files, **extra}, format="json")


def test_load_context_queues_files_and_the_names_and_documents_are_listed(api, user):
    response = load(api, user, type_user="pro")
    assert response.status_code == 200 and response.json() == {"result": True}
    assert api.post("/get_name", {"user": user.email}, format="json").json() == {"result": ["Geografía"]}
    assert api.post("/get_documents", {"user": user.email}, format="json").json() == {"result": ["harbour.txt"]}
    assert Document.objects.get(owner=user).status == "ready"


def test_token_in_the_body_authenticates_as_documented(anon, user):
    token = str(AccessToken.for_user(user))
    response = anon.post("/get_name", {"user": user.email, "token": token}, format="json")
    assert response.status_code == 200
    assert_error(anon.post("/get_name", {"user": user.email, "token": "forged"}, format="json"), 401)
    assert_error(anon.post("/get_name", {"user": user.email}, format="json"), 401)


def test_user_parameter_must_name_the_caller(api, user, other_user):
    assert_error(load(api, other_user), 403, "user")
    assert not Document.objects.exists()
    response = api.post("/get_documents?user=" + other_user.email, {}, format="json")
    assert_error(response, 403)
    assert api.post("/get_name", {"user": user.username}, format="json").status_code == 200


def test_context_returns_the_callers_matching_passages_only(api, user, other_api, other_user):
    load(api, user)
    load(other_api, other_user, files=[{"filename": "x.txt", "content": b64(b"Port Zafiro canary-99 harbour.")}])
    response = api.post("/context", {"user": user.email, "text": "Where is the secret harbour?"}, format="json")
    assert response.status_code == 200
    text = response.content.decode()
    assert "northern cliffs" in text and "harbour.txt" in text
    assert "canary-99" not in text
    as_json = api.post("/context", {"text": "secret harbour"}, format="json", HTTP_ACCEPT="application/json")
    assert as_json.json()["citations"][0]["filename"] == "harbour.txt"


def test_multipart_upload_is_accepted_too(api, user):
    response = api.post(
        "/load_context",
        {"name": "Historia", "files": [SimpleUploadedFile("a.md", b"# Rome\n\nRome was founded in 753 BC.")]},
        format="multipart",
    )
    assert response.status_code == 200
    assert list(KnowledgeBase.objects.filter(owner=user).values_list("name", flat=True)) == ["Historia"]


@pytest.mark.parametrize(
    ("files", "status", "word"),
    [
        ([], 400, "files"),
        ([{"filename": "a.txt", "content": "not base64!!"}], 400, "base64"),
        ([{"filename": "a.exe", "content": b64(b"MZ binary")}], 415, "a.exe"),
        ([{"filename": "a.txt", "content": b64(b"")}], 400, "content"),
        ([{"filename": "a.txt", "content": b64(b"   \n ")}], 400, "empty"),
        ([{"filename": "a.txt", "content": b64(HARBOUR)}, {"filename": "b.pdf", "content": b64(b"<html>")}], 415, ""),
    ],
)
def test_a_refused_file_refuses_the_whole_load_and_stores_nothing(api, user, settings, files, status, word):
    assert_error(load(api, user, files=files), status, word)
    assert not Document.objects.exists() and not KnowledgeBase.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_delete_name_removes_the_base_its_chunks_and_files(api, user, settings):
    load(api, user)
    stored = [Path(settings.MEDIA_ROOT) / d.file.name for d in Document.objects.all()]
    assert all(path.exists() for path in stored)
    response = api.post("/delete_name", {"user": user.email, "name": "Geografía"}, format="json")
    assert response.status_code == 200 and response.json() is True
    assert not KnowledgeBase.objects.exists() and not Chunk.objects.exists()
    assert not any(path.exists() for path in stored)
    assert_error(api.post("/delete_name", {"name": "Geografía"}, format="json"), 404)


def test_another_users_base_cannot_be_deleted_or_listed(api, user, other_api, other_user):
    load(api, user)
    assert_error(other_api.post("/delete_name", {"name": "Geografía"}, format="json"), 404)
    assert other_api.post("/get_name", {}, format="json").json() == {"result": []}
    assert_error(other_api.post("/get_documents", {"name": "Geografía"}, format="json"), 404)
    assert KnowledgeBase.objects.filter(owner=user).count() == 1


def test_missing_fields_name_the_field(api):
    assert_error(api.post("/load_context", {"files": []}, format="json"), 400, "name")
    assert_error(api.post("/context", {}, format="json"), 400, "text")
    assert_error(APIClient().post("/context", {"text": "x"}, format="json"), 401)


def test_a_json_load_of_a_large_file_is_accepted_up_to_the_file_limit(api, user, settings):
    big = (b"Port Zafiro harbour notes. " * 40_000)[: 2 * 1024 * 1024]  # 2 MiB, over the 1 MiB JSON limit
    response = load(api, user, files=[{"filename": "big.txt", "content": b64(big)}])
    assert response.status_code == 200, response.content
    settings.KNOWLEDGE_MAX_FILE_BYTES = 1024 * 1024
    too_big = load(api, user, name="other", files=[{"filename": "big2.txt", "content": b64(big + b"x")}])
    assert_error(too_big, 413)


def test_an_empty_user_in_the_body_does_not_hide_another_user_in_the_query(api, user, other_user):
    response = api.post("/get_name?user=" + other_user.email, {"user": ""}, format="json")
    assert_error(response, 403)


def test_a_refused_file_after_accepted_ones_leaves_no_file_on_disk(api, user, settings):
    settings.KNOWLEDGE_MAX_DOCUMENTS_PER_BASE = 1
    files = [
        {"filename": "a.txt", "content": b64(b"First harbour file.")},
        {"filename": "b.txt", "content": b64(b"Second harbour file.")},
    ]
    assert_error(load(api, user, files=files), 403)
    assert not Document.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_training_a_bot_works_even_if_a_base_already_has_its_training_name(api, user):
    bot = api.post("/bots/", {"name": "Navigator"}, format="json").json()
    load(api, user, name=f"Navigator [bot {bot['id']}]")
    response = api.post(f"/bots/{bot['id']}/train", {"file": SimpleUploadedFile("n.txt", HARBOUR)}, format="multipart")
    assert response.status_code == 202
    assert KnowledgeBase.objects.filter(owner=user).count() == 2
