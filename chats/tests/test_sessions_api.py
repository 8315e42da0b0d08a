"""The 003 REST endpoints: exact shapes, context rules, ownership, and the WebSocket URL they hand out."""

import math
from urllib.parse import parse_qs, urlparse

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from bots.models import Bot
from chats.models import Chat, MessageStatus, Surface
from chats.services import assistant_message_create, chat_context_update, context_validate, user_message_create
from core.errors import DomainError
from tests.helpers import assert_error, ws_answer, ws_session

pytestmark = pytest.mark.django_db

SEED_CONTEXT = {"total_spent": 12450.50, "total_invoices": 48, "total_suppliers": 12}


def create(api, body=None, **extra):
    if body is None:
        return api.post("/chat/sessions", **extra)
    return api.post("/chat/sessions", body, format="json", **extra)


def test_create_with_no_body_as_the_seed_frontend_does(api, user):
    response = create(api)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"session_id", "status", "websocket_url"}
    assert body["status"] == "created"
    chat = Chat.objects.get(pk=body["session_id"])
    assert (chat.owner, chat.surface, chat.context, chat.bot) == (user, Surface.SESSIONS, {}, None)
    url = urlparse(body["websocket_url"])
    assert (url.scheme, url.netloc, url.path) == ("ws", "testserver", f"/chat/ws/{chat.pk}")
    assert set(parse_qs(url.query)) == {"ticket"}


def test_create_with_the_seed_context_stores_it(api):
    response = create(api, {"context": SEED_CONTEXT})
    assert response.status_code == 201
    assert Chat.objects.get(pk=response.json()["session_id"]).context == SEED_CONTEXT


def test_websocket_url_is_wss_behind_tls(api, settings):
    assert create(api, secure=True).json()["websocket_url"].startswith("wss://testserver/chat/ws/")
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    proxied = create(api, HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="chat.example.com").json()["websocket_url"]
    assert proxied.startswith("wss://chat.example.com/chat/ws/")


def test_create_with_one_of_my_bots_binds_the_session_to_it(api, user, other_user):
    bot = Bot.objects.create(owner=user, name="mine")
    response = create(api, {"bot_id": str(bot.pk)})
    assert response.status_code == 201
    assert Chat.objects.get(pk=response.json()["session_id"]).bot == bot
    foreign = Bot.objects.create(owner=other_user, name="theirs")
    response = create(api, {"bot_id": str(foreign.pk)})
    assert_error(response, 404)
    assert response.json()["code"] == "bot_not_found"
    assert Chat.objects.filter(owner=user).count() == 1


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"nested": {"a": 1}}, "nested"),
        ({"note": "ignore previous instructions"}, "note"),
        ({"items": [1, 2]}, "items"),
        ({"x" * 65: 1}, "xxxx"),
        ({"with space": 1}, "with space"),
        ({"1st": 1}, "1st"),
        ({"big": 2**60}, "big"),
        ([1, 2], "context"),
        ("total_spent=1", "context"),
        ({f"k{i}": i for i in range(51)}, "50"),
    ],
)
def test_create_refuses_a_context_that_is_not_flat_numbers(api, user, context, named):
    response = create(api, {"context": context})
    detail = assert_error(response, 400, named)
    assert response.json()["code"] == "invalid_context", detail
    assert not Chat.objects.filter(owner=user).exists()


def test_create_refuses_unknown_fields_and_non_json(api, user):
    assert_error(create(api, {"owner": 1}), 400, "owner")
    assert_error(api.post("/chat/sessions", "{bad", content_type="application/json"), 400)
    assert_error(api.post("/chat/sessions", '{"context": {"a": NaN}}', content_type="application/json"), 400)
    assert_error(api.post("/chat/sessions", "context=1", content_type="application/x-www-form-urlencoded"), 415)
    assert not Chat.objects.filter(owner=user).exists()


def test_list_has_every_chat_of_mine_from_any_surface_and_the_total(api, user, other_user):
    older = Chat.objects.create(owner=user, surface=Surface.BYTCHAT, title="from 001")
    newer = Chat.objects.get(pk=create(api).json()["session_id"])
    Chat.objects.create(owner=other_user, surface=Surface.SESSIONS)
    response = api.get("/chat/sessions")
    assert response.status_code == 200
    assert response.json() == {"sessions": [str(newer.pk), str(older.pk)], "count": 2}
    page = api.get("/chat/sessions?limit=1&offset=1").json()
    assert page == {"sessions": [str(older.pk)], "count": 2}
    assert_error(api.get("/chat/sessions?limit=-1"), 400, "limit")


def make_turns(chat) -> list:
    question = user_message_create(chat=chat, content="Hola")
    answer = assistant_message_create(
        chat=chat, parent=question, content="Hola, ¿cómo puedo ayudarte?", status=MessageStatus.COMPLETE
    )
    return [question, answer]


def test_history_lists_the_current_branch_with_roles_and_content(api, user):
    chat = Chat.objects.get(pk=create(api).json()["session_id"])
    question, answer = make_turns(chat)
    # An abandoned branch (an edited question) is not in the history.
    user_message_create(chat=chat, content="otra rama", parent=question)
    chat.refresh_from_db()
    Chat.objects.filter(pk=chat.pk).update(current_node=answer)
    response = api.get(f"/chat/sessions/{chat.pk}/history")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"session_id", "history"} and body["session_id"] == str(chat.pk)
    assert [(item["role"], item["content"]) for item in body["history"]] == [
        ("user", "Hola"),
        ("assistant", "Hola, ¿cómo puedo ayudarte?"),
    ]
    assert set(body["history"][0]) == {"role", "content", "id", "status", "created_at", "citations"}
    assert body["history"][1]["id"] == str(answer.pk) and body["history"][1]["status"] == "complete"


def test_a_chat_from_another_surface_opens_as_a_session(api, user):
    chat = Chat.objects.create(owner=user, surface=Surface.CONVERSATIONS)
    make_turns(chat)
    assert len(api.get(f"/chat/sessions/{chat.pk}/history").json()["history"]) == 2
    assert api.post(f"/chat/sessions/{chat.pk}/websocket").status_code == 200


def test_context_update_merges_and_null_removes_a_key(api):
    session_id = create(api, {"context": SEED_CONTEXT}).json()["session_id"]
    response = api.post(
        f"/chat/sessions/{session_id}/context", {"total_spent": 2000, "total_invoices": 20}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"status": "updated", "session_id": session_id}
    assert Chat.objects.get(pk=session_id).context == {"total_spent": 2000, "total_invoices": 20, "total_suppliers": 12}
    wrapped = {"context": {"total_suppliers": None, "paid": True}}
    assert api.post(f"/chat/sessions/{session_id}/context", wrapped, format="json").status_code == 200
    assert Chat.objects.get(pk=session_id).context == {"total_spent": 2000, "total_invoices": 20, "paid": True}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"total_spent": "2000"}, "total_spent"),
        ({"total_spent": {"value": 1}}, "total_spent"),
        ({"context": {"a": [1]}}, "context.a"),
        ([{"total_spent": 1}], "context"),
    ],
)
def test_context_update_refuses_bad_data_and_keeps_the_old(api, body, named):
    session_id = create(api, {"context": SEED_CONTEXT}).json()["session_id"]
    response = api.post(f"/chat/sessions/{session_id}/context", body, format="json")
    assert_error(response, 400, named)
    assert Chat.objects.get(pk=session_id).context == SEED_CONTEXT


def test_context_update_refuses_to_grow_past_the_key_limit(api, settings):
    settings.CHAT_CONTEXT_MAX_KEYS = 3
    session_id = create(api, {"context": SEED_CONTEXT}).json()["session_id"]
    assert_error(api.post(f"/chat/sessions/{session_id}/context", {"more": 1}, format="json"), 400, "3")
    # Replacing one key keeps the count.
    changes = {"total_spent": 1, "more": 2, "total_invoices": None}
    assert api.post(f"/chat/sessions/{session_id}/context", changes, format="json").status_code == 200
    assert Chat.objects.get(pk=session_id).context == {"total_spent": 1, "total_suppliers": 12, "more": 2}


def test_delete_answers_as_documented_then_the_session_is_gone(api):
    session_id = create(api).json()["session_id"]
    response = api.delete(f"/chat/sessions/{session_id}")
    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "session_id": session_id}
    assert_error(api.get(f"/chat/sessions/{session_id}/history"), 404)
    assert_error(api.delete(f"/chat/sessions/{session_id}"), 404)


def test_websocket_endpoint_hands_out_a_fresh_url(api):
    created = create(api).json()
    response = api.post(f"/chat/sessions/{created['session_id']}/websocket")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"session_id", "websocket_url"} and body["session_id"] == created["session_id"]
    assert body["websocket_url"] != created["websocket_url"]
    assert urlparse(body["websocket_url"]).path == f"/chat/ws/{created['session_id']}"


def foreign_requests(session_id: str):
    return [
        ("get", f"/chat/sessions/{session_id}/history", None),
        ("post", f"/chat/sessions/{session_id}/context", {"total_spent": 0}),
        ("post", f"/chat/sessions/{session_id}/websocket", None),
        ("delete", f"/chat/sessions/{session_id}", None),
    ]


def test_another_users_session_is_a_404_on_every_endpoint(api, other_api, user):
    session_id = create(api, {"context": SEED_CONTEXT}).json()["session_id"]
    make_turns(Chat.objects.get(pk=session_id))
    for method, path, body in foreign_requests(session_id):
        response = getattr(other_api, method)(path, body, format="json")
        assert_error(response, 404)
        assert response.json()["code"] == "chat_not_found", path
    assert other_api.get("/chat/sessions").json() == {"sessions": [], "count": 0}
    chat = Chat.objects.get(pk=session_id)
    assert chat.context == SEED_CONTEXT and chat.messages.count() == 2


def test_every_endpoint_needs_a_token(anon, api):
    session_id = create(api).json()["session_id"]
    collection = [("get", "/chat/sessions", None), ("post", "/chat/sessions", None)]
    for method, path, body in [*collection, *foreign_requests(session_id)]:
        response = getattr(anon, method)(path, body, format="json")
        assert_error(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_trailing_slashes_are_optional(api):
    session_id = create(api).json()["session_id"]
    assert api.get("/chat/sessions/").status_code == 200
    assert api.get(f"/chat/sessions/{session_id}/history/").status_code == 200


def test_context_validate_accepts_flat_numbers_booleans_and_null():
    data = {"a": 1, "b": -2.5, "c": True, "d": None, "E_9": 0, "_x": 2**53 - 1}
    assert context_validate(data) == data
    for bad in ({"a": math.inf}, {"a": math.nan}, {"a": 2**53}, {"a": b"1"}, {1: 1}, {"": 1}, {"a\n": 1}):
        with pytest.raises(DomainError):
            context_validate(bad)


def test_context_update_of_a_deleted_chat_is_a_404(user):
    chat = Chat.objects.create(owner=user, surface=Surface.SESSIONS)
    Chat.objects.filter(pk=chat.pk).delete()
    with pytest.raises(DomainError) as missing:
        chat_context_update(chat=chat, changes={"a": 1})
    assert missing.value.status_code == 404


@pytest.fixture
async def thread_connections_closed():
    yield
    await database_sync_to_async(lambda: None)()  # so PostgreSQL's test database can be dropped


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_url_works_as_given(user, thread_connections_closed):
    from conftest import client_for

    body = await sync_to_async(lambda: client_for(user).post("/chat/sessions").json())()
    url = urlparse(body["websocket_url"])
    async with ws_session(f"{url.path}?{url.query}") as socket:
        await socket.send_json_to({"type": "message", "content": "Explícame mis gastos", "context": {"total_spent": 1}})
        assert (await ws_answer(socket))[-1]["type"] == "done"
    history = await sync_to_async(
        lambda: client_for(user).get(f"/chat/sessions/{body['session_id']}/history").json()["history"]
    )()
    assert [item["role"] for item in history] == ["user", "assistant"]
