"""Share links: a snapshot up to a message, public by token, revocable, expiring, continued as a copy."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chats.models import Chat, Message, MessageStatus, Role, ShareLink, Surface
from chats.services import assistant_message_create, chat_create, user_message_create
from chats.sharing import services as sharing_services
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db
LINK_KEYS = {
    "id",
    "token",
    "url",
    "json_url",
    "chat_id",
    "message_id",
    "title",
    "include_citations",
    "expires_at",
    "revoked_at",
    "active",
    "created_at",
    "message_count",
}
COPY_KEYS = {"id", "title", "bot_id", "surface", "current_node", "message_count", "created_at"}
CITATIONS = [
    {"document_id": "7d3c4a51-0000-4000-8000-000000000001", "filename": "harbour.md", "page": 2, "text": "Tides."},
    {"title": "Port news", "url": "https://example.com/port", "snippet": "Ferries run hourly."},
]


def a_chat(owner, *, bot=None, turns=(("Where is the harbour?", "By the old lighthouse."),), title="Harbour trip"):
    """A 004 chat with these (question, answer) turns on one branch; the last answer cites two sources."""
    chat = chat_create(owner=owner, surface=Surface.CHATS, bot=bot, title=title)
    for question, answer in turns:
        asked = user_message_create(chat=chat, content=question)
        assistant_message_create(
            chat=chat, parent=asked, content=answer, status=MessageStatus.COMPLETE, citations=CITATIONS
        )
    return chat


def share(api, chat, **body):
    response = api.post(f"/chats/{chat.pk}/shares", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_share_is_201_with_its_links_and_the_page_and_json_show_the_chat(api, anon, user):
    chat = a_chat(user, turns=[("Q1", "A1"), ("Q2", "A2")])
    link = share(api, chat)
    assert set(link) == LINK_KEYS
    assert link["url"] == f"/s/{link['token']}" and link["json_url"] == f"/shares/public/{link['token']}"
    assert len(link["token"]) >= 43
    assert (link["chat_id"], link["message_id"]) == (str(chat.pk), str(chat.current_node_id))
    assert (link["title"], link["message_count"], link["active"]) == ("Harbour trip", 4, True)
    assert link["include_citations"] is False and link["expires_at"] is None and link["revoked_at"] is None

    public = anon.get(link["json_url"])
    assert public.status_code == 200
    body = public.json()
    assert set(body) == {"title", "messages", "message_count", "created_at", "expires_at"}
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "Q1"),
        ("assistant", "A1"),
        ("user", "Q2"),
        ("assistant", "A2"),
    ]
    # Nothing of the owner's but the text: no ids of their messages, chat or documents.
    assert all(set(m) == {"role", "content", "created_at"} for m in body["messages"])
    assert str(chat.pk) not in public.content.decode() and str(chat.current_node_id) not in public.content.decode()

    page = anon.get(link["url"])
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "Harbour trip" in html and "A2" in html and html.index("Q1") < html.index("A1") < html.index("Q2")
    for response in (page, public):
        assert response["X-Robots-Tag"].startswith("noindex")
        assert response["Referrer-Policy"] == "no-referrer"
        assert response["Cache-Control"] == "no-store"
        assert not response.cookies
    assert "script-src" not in page["Content-Security-Policy"]
    assert page["Content-Security-Policy"].startswith("default-src 'none'")


def test_a_share_holds_the_path_to_its_message_only(api, anon, user):
    chat = a_chat(user, turns=[("Q1", "A1")])
    first_answer = chat.current_node
    Message.objects.create(chat=chat, parent=None, role=Role.SYSTEM, content="System setup")
    user_message_create(chat=chat, content="Another branch", parent=first_answer.parent)
    link = share(api, chat, message_id=str(first_answer.pk), title="Just the first answer")
    assert (link["message_id"], link["message_count"], link["title"]) == (
        str(first_answer.pk),
        2,
        "Just the first answer",
    )
    messages = anon.get(link["json_url"]).json()["messages"]
    assert [m["content"] for m in messages] == ["Q1", "A1"]


def test_system_turns_and_answers_that_wrote_nothing_are_left_out(api, anon, user):
    chat = chat_create(owner=user, surface=Surface.CHATS, title="t")
    system = Message.objects.create(chat=chat, role=Role.SYSTEM, content="You are a pirate.")
    question = user_message_create(chat=chat, content="Q", parent=system)
    assistant_message_create(chat=chat, parent=question, content="", status=MessageStatus.ERROR, error="upstream")
    link = share(api, chat)
    assert [m["content"] for m in anon.get(link["json_url"]).json()["messages"]] == ["Q"]


def test_the_snapshot_never_changes_when_the_chat_goes_on_or_is_edited_or_deleted(api, anon, user):
    chat = a_chat(user, turns=[("Q1", "A1")])
    link = share(api, chat)
    before = anon.get(link["json_url"]).json()

    question = user_message_create(chat=chat, content="Q2 after sharing")
    assistant_message_create(chat=chat, parent=question, content="A2 after sharing", status=MessageStatus.COMPLETE)
    assert anon.get(link["json_url"]).json() == before

    Message.objects.filter(chat=chat, content="A1").update(content="A1 rewritten")
    assert anon.get(link["json_url"]).json() == before
    Message.objects.filter(chat=chat, content="Q1").delete()  # and every message below it
    assert anon.get(link["json_url"]).json() == before
    assert "A1 rewritten" not in anon.get(link["url"]).content.decode()
    assert api.get(f"/shares/{link['id']}").json()["message_id"] is None


def test_a_link_stops_working_when_it_expires(api, anon, user, monkeypatch):
    chat = a_chat(user)
    link = share(api, chat, expires_in_seconds=60)
    assert link["expires_at"] is not None and link["active"] is True
    assert anon.get(link["json_url"]).status_code == 200

    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert_error(anon.get(link["json_url"]), 404, "expired")
    page = anon.get(link["url"])
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert "Where is the harbour" not in page.content.decode()
    assert_error(api.post(f"{link['url']}/continue"), 404)
    assert api.get(f"/shares/{link['id']}").json()["active"] is False


def test_a_revoked_link_is_a_404_like_an_unknown_one_and_revoking_again_changes_nothing(api, anon, user):
    chat = a_chat(user)
    link = share(api, chat)
    assert api.delete(f"/shares/{link['id']}").status_code == 204
    revoked_at = ShareLink.objects.get(pk=link["id"]).revoked_at
    assert revoked_at is not None
    unknown = anon.get("/shares/public/" + "x" * 43)
    revoked = anon.get(link["json_url"])
    assert assert_error(revoked, 404) == assert_error(unknown, 404)
    assert revoked.json() == unknown.json()
    assert anon.get(link["url"]).content == anon.get("/s/" + "x" * 43).content
    assert anon.get(link["url"]).status_code == 404
    assert_error(api.post(f"{link['url']}/continue"), 404)

    assert api.delete(f"/shares/{link['id']}").status_code == 204
    assert ShareLink.objects.get(pk=link["id"]).revoked_at == revoked_at
    detail = api.get(f"/shares/{link['id']}").json()
    assert detail["active"] is False and detail["revoked_at"] is not None


def test_citations_are_shared_only_when_the_owner_says_so_and_never_with_document_ids(api, anon, user):
    chat = a_chat(user)
    hidden = anon.get(share(api, chat)["json_url"]).json()["messages"]
    assert all("citations" not in m for m in hidden)
    assert "harbour.md" not in anon.get(share(api, chat)["url"]).content.decode()

    link = share(api, chat, include_citations=True)
    assert link["include_citations"] is True
    answer = anon.get(link["json_url"]).json()["messages"][-1]
    assert answer["citations"] == [
        {"filename": "harbour.md", "page": 2, "text": "Tides."},
        {"title": "Port news", "url": "https://example.com/port", "snippet": "Ferries run hourly."},
    ]
    html = anon.get(link["url"]).content.decode()
    assert "harbour.md" in html and "https://example.com/port" in html
    assert CITATIONS[0]["document_id"] not in html


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/chats/{chat}/shares", {}),
        ("post", "/chats/{chat}/shares", {"message_id": "{message}"}),
        ("post", "/chats/{chat}/shares", {"expires_in_seconds": -5, "surprise": 1}),
        ("get", "/shares/{share}", None),
        ("delete", "/shares/{share}", None),
    ],
)
def test_another_users_chat_and_share_are_404_on_every_endpoint_and_unchanged(user, api, other_api, method, path, body):
    chat = a_chat(user, title="A's secret chat")
    link = share(api, chat)
    ids = {"chat": chat.pk, "message": chat.current_node_id, "share": link["id"]}
    if body is not None:
        body = {key: value.format(**ids) if isinstance(value, str) else value for key, value in body.items()}
    response = getattr(other_api, method)(path.format(**ids), body, format="json")
    assert "secret" not in assert_error(response, 404)
    assert ShareLink.objects.count() == 1 and ShareLink.objects.get().revoked_at is None
    assert other_api.get("/shares").json() == []


def test_a_message_of_another_chat_cannot_be_shared(api, user, other_user):
    chat, elsewhere, theirs = a_chat(user), a_chat(user), a_chat(other_user)
    for message_id in (elsewhere.current_node_id, theirs.current_node_id):
        response = api.post(f"/chats/{chat.pk}/shares", {"message_id": str(message_id)}, format="json")
        assert_error(response, 404, "Message")
    assert not ShareLink.objects.exists()


def test_a_bot_owner_cannot_share_a_visitors_chat(api, user, make_bot):
    bot = make_bot(owner=user, public=True)
    chat = a_chat(user, bot=bot)
    Chat.objects.filter(pk=chat.pk).update(visitor_id="5b0d3c3e-8d1f-4a8e-9d55-2f0c8b1e2a11", surface=Surface.WIDGET)
    assert_error(api.post(f"/chats/{chat.pk}/shares", {}, format="json"), 404)
    assert not ShareLink.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message_id": "not-a-uuid"}, "message_id"),
        ({"expires_in_seconds": 10}, "expires_in_seconds"),
        ({"expires_in_seconds": 400 * 86400}, "expires_in_seconds"),
        ({"include_citations": "maybe"}, "include_citations"),
        ({"title": "t" * 201}, "title"),
        ({"token": "mine"}, "token"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, user, body, field):
    chat = a_chat(user)
    assert_error(api.post(f"/chats/{chat.pk}/shares", body, format="json"), 400, field)
    assert not ShareLink.objects.exists()


def test_an_empty_chat_has_nothing_to_share(api, user):
    chat = chat_create(owner=user, surface=Surface.CHATS, title="empty")
    response = api.post(f"/chats/{chat.pk}/shares", {}, format="json")
    assert_error(response, 400, "no messages")
    assert response.json()["code"] == "nothing_to_share"


def test_a_snapshot_past_the_limits_is_a_400(api, user, monkeypatch):
    chat = a_chat(user, turns=[("Q1", "A1"), ("Q2", "A2")])
    monkeypatch.setattr(sharing_services, "SHARE_MAX_MESSAGES", 3)
    response = api.post(f"/chats/{chat.pk}/shares", {}, format="json")
    assert_error(response, 400, "at most 3 messages")
    assert response.json()["code"] == "share_too_large"
    # An earlier message fits.
    assert share(api, chat, message_id=str(chat.current_node.parent_id))["message_count"] == 3

    monkeypatch.setattr(sharing_services, "SHARE_MAX_CHARS", 5)
    body = {"message_id": str(chat.current_node.parent_id)}
    assert_error(api.post(f"/chats/{chat.pk}/shares", body, format="json"), 400, "5")


def test_an_answer_still_being_written_cannot_be_shared(api, user):
    chat = a_chat(user)
    question = user_message_create(chat=chat, content="Q2")
    assistant_message_create(chat=chat, parent=question, content="Half an ans", status=MessageStatus.STREAMING)
    response = api.post(f"/chats/{chat.pk}/shares", {}, format="json")
    assert_error(response, 409, "still being written")
    assert share(api, chat, message_id=str(question.pk))["message_count"] == 3


def test_the_list_is_the_callers_newest_first_paginated_in_constant_queries(
    api, other_api, user, other_user, django_assert_max_num_queries
):
    chat = a_chat(user, turns=[(f"Q{i}", f"A{i}") for i in range(30)])
    ids = [share(api, chat, title=f"link {i}")["id"] for i in range(3)]
    share(other_api, a_chat(other_user))
    # The caller, the count, the page: whatever the number of links and the size of their snapshots.
    with django_assert_max_num_queries(3):
        listed = api.get("/shares")
    assert [row["id"] for row in listed.json()] == ids[::-1]
    assert listed["X-Total-Count"] == "3" and listed.json()[0]["message_count"] == 60

    for i in range(12):
        share(api, chat, title=f"more {i}")
    with django_assert_max_num_queries(3):
        page = api.get("/shares?limit=5&offset=1")
    assert page["X-Total-Count"] == "15" and len(page.json()) == 5
    assert [row["title"] for row in page.json()] == [f"more {i}" for i in (10, 9, 8, 7, 6)]


def test_continuing_a_share_makes_a_copy_in_the_viewers_account_and_leaves_the_original(
    api, other_api, user, other_user, make_bot
):
    bot = make_bot(owner=user)
    chat = a_chat(user, bot=bot, turns=[("Q1", "A1"), ("Q2", "A2")])
    link = share(api, chat, include_citations=True)
    original = list(Message.objects.filter(chat=chat).values_list("id", "content", "parent_id"))

    response = other_api.post(f"{link['url']}/continue")
    assert response.status_code == 201, response.content
    copy = response.json()
    assert set(copy) == COPY_KEYS
    assert (copy["title"], copy["bot_id"], copy["surface"], copy["message_count"]) == ("Harbour trip", None, "chats", 4)
    new = Chat.objects.get(pk=copy["id"])
    assert (
        new.owner == other_user and new.current_node_id is not None and str(new.current_node_id) == copy["current_node"]
    )
    # The viewer goes on with it like any chat of theirs: one branch, the last answer current.
    conversation = other_api.get(f"/chats/{copy['id']}/conversations").json()
    assert [(m["role"], m["message"]) for m in conversation] == [
        ("Human", "Q1"),
        ("Assistant", "A1"),
        ("Human", "Q2"),
        ("Assistant", "A2"),
    ]
    assert new.current_node.content == "A2" and new.current_node.citations[0]["filename"] == "harbour.md"
    assert list(Message.objects.filter(chat=chat).values_list("id", "content", "parent_id")) == original
    assert Chat.objects.get(pk=chat.pk).owner == user
    assert [c["id"] for c in api.get("/chats/").json()] == [str(chat.pk)]

    # The owner continuing their own link keeps their bot.
    own = api.post(f"/s/{link['token']}/continue/").json()
    assert own["bot_id"] == str(bot.pk)


def test_continuing_needs_credentials(anon, api, user):
    link = share(api, a_chat(user))
    response = anon.post(f"{link['url']}/continue")
    assert_error(response, 401)
    assert Chat.objects.count() == 1


def test_an_unknown_token_is_a_404_on_the_page_and_the_json(anon):
    page = anon.get("/s/not-a-real-token")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert "not found" in page.content.decode().lower()
    assert_error(anon.get("/shares/public/not-a-real-token"), 404)


def test_the_page_escapes_html_in_messages(api, anon, user):
    chat = a_chat(user, turns=[("<b>bold?</b>", "<script>alert(1)</script><img src=x onerror=alert(2)>")])
    html = anon.get(share(api, chat)["url"]).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html


def test_the_admin_revoke_action_revokes_the_selected_links(admin_client, api, anon, user):
    link = share(api, a_chat(user))
    response = admin_client.post(
        "/admin/chats/sharelink/", {"action": "revoke_share_links", "_selected_action": [link["id"]]}
    )
    assert response.status_code == 302
    assert ShareLink.objects.get(pk=link["id"]).revoked_at is not None
    assert anon.get(link["json_url"]).status_code == 404


def test_live_links_are_limited_per_user_and_a_revoked_one_frees_its_place(api, user, monkeypatch):
    monkeypatch.setattr(sharing_services, "SHARE_MAX_LIVE_LINKS", 2)
    chat = a_chat(user)
    first, _second = share(api, chat), share(api, chat)
    response = api.post(f"/chats/{chat.pk}/shares", {}, format="json")
    assert_error(response, 403, "revoke")
    assert response.json()["code"] == "too_many_share_links"
    assert api.delete(f"/shares/{first['id']}").status_code == 204
    share(api, chat)


@pytest.mark.django_db(transaction=True)
def test_two_links_made_at_once_cannot_both_take_the_last_place(user, monkeypatch):
    import threading
    import time

    from django.db import connection

    from core.errors import DomainError

    monkeypatch.setattr(sharing_services, "SHARE_MAX_LIVE_LINKS", 1)
    chat = a_chat(user)
    create = ShareLink.objects.create

    def slow_create(**fields):
        time.sleep(0.3)  # both requests have counted the live links by now, unless one waits for the other
        return create(**fields)

    monkeypatch.setattr(ShareLink.objects, "create", slow_create)
    start, outcomes = threading.Barrier(2), []

    def make_link() -> None:
        start.wait()
        try:
            sharing_services.share_link_create(user=user, chat=Chat.objects.get(pk=chat.pk))
            outcomes.append("made")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=make_link) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["made", "too_many_share_links"]
    assert ShareLink.objects.filter(owner=user).count() == 1
