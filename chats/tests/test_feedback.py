"""Feedback on answers over REST (docs/feedback.md): rate, re-rate, clear; input limits; who may rate what."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from bots.services import bot_public_key_rotate, bot_public_set
from chats.feedback.input import MAX_COMMENT_CHARS
from chats.models import Chat, Feedback, FeedbackTag, Message, Role, Surface
from chats.visitors import visitor_new, visitor_token_issue
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

PAGE = "https://shop.example"
MISSING = "00000000-0000-4000-8000-000000000000"


def answered(chat: Chat, *, question: str = "Where is the harbour?", answer: str = "By the sea.") -> Message:
    """A question and its answer at the end of `chat`'s current branch; the answer."""
    parent = Chat.objects.get(pk=chat.pk).current_node
    asked = Message.objects.create(chat=chat, parent=parent, role=Role.USER, content=question)
    reply = Message.objects.create(
        chat=chat, parent=asked, role=Role.ASSISTANT, content=answer, model="gpt-test", task_type="general"
    )
    Chat.objects.filter(pk=chat.pk).update(current_node=reply)
    return reply


def path(message) -> str:
    return f"/messages/{getattr(message, 'pk', message)}/feedback"


def visitor_client(bot) -> tuple[APIClient, object]:
    """A widget visitor of `bot` (their token on the client) and the visitor."""
    visitor = visitor_new(bot)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Visitor {visitor_token_issue(visitor)}", HTTP_ORIGIN=PAGE)
    return client, visitor


@pytest.fixture
def public_bot(make_bot, user):
    return make_bot(owner=user, name="Shop helper", public=True, allowed_origins=[PAGE])


def visitor_answer(bot, visitor) -> Message:
    chat = Chat.objects.create(owner=bot.owner, bot=bot, visitor_id=visitor.id, surface=Surface.WIDGET)
    return answered(chat)


# -- rating ----------------------------------------------------------------------------------------


def test_rating_an_answer_stores_it_with_the_bot_model_and_task_type_of_the_answer(api, user, bot, make_chat):
    message = answered(make_chat(owner=user, bot=bot))
    response = api.put(
        path(message), {"rating": "down", "tags": ["inaccurate", "outdated"], "comment": "Wrong pier."}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"message_id", "rating", "tags", "comment", "created_at", "updated_at"}
    assert body["message_id"] == str(message.pk)
    assert (body["rating"], body["tags"], body["comment"]) == ("down", ["inaccurate", "outdated"], "Wrong pier.")
    stored = Feedback.objects.get(message=message)
    assert (stored.owner, stored.visitor_id, stored.bot, stored.model, stored.task_type) == (
        user,
        None,
        bot,
        "gpt-test",
        "general",
    )
    assert api.get(path(message)).json() == body


def test_rating_again_replaces_the_feedback_whole(api, chat):
    message = answered(chat)
    first = api.put(
        path(message), {"rating": "down", "tags": ["too_long"], "comment": "Too long."}, format="json"
    ).json()
    second = api.put(path(message), {"rating": "up"}, format="json")
    assert second.status_code == 200
    assert (second.json()["rating"], second.json()["tags"], second.json()["comment"]) == ("up", [], "")
    assert second.json()["created_at"] == first["created_at"]
    assert second.json()["updated_at"] >= first["updated_at"]
    assert Feedback.objects.filter(message=message).count() == 1
    assert Feedback.objects.get(message=message).rating == "up"


def test_deleting_clears_the_feedback_and_get_is_then_a_404(api, chat):
    message = answered(chat)
    assert_error(api.get(path(message)), 404, "no feedback")
    api.put(path(message), {"rating": "up"}, format="json")
    response = api.delete(path(message))
    assert response.status_code == 204 and not response.content
    assert not Feedback.objects.filter(message=message).exists()
    assert_error(api.get(path(message)), 404)
    assert api.delete(path(message)).status_code == 204  # nothing left to clear: the same answer
    assert Message.objects.filter(pk=message.pk).exists()


def test_every_tag_and_the_longest_comment_are_accepted(api, chat):
    message = answered(chat)
    body = {"rating": "down", "tags": list(FeedbackTag.values), "comment": "x" * MAX_COMMENT_CHARS}
    response = api.put(path(message), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["tags"] == list(FeedbackTag.values)
    assert len(response.json()["comment"]) == MAX_COMMENT_CHARS


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({}, ["rating"], id="no-rating"),
        pytest.param({"rating": "meh"}, ["rating"], id="unknown-rating"),
        pytest.param({"rating": None}, ["rating"], id="null-rating"),
        pytest.param({"rating": "up", "tags": ["brilliant"]}, ["tags", "brilliant"], id="unknown-tag"),
        pytest.param({"rating": "up", "tags": "helpful"}, ["tags"], id="tags-not-a-list"),
        pytest.param({"rating": "up", "tags": ["helpful", "helpful"]}, ["repeat"], id="duplicate-tags"),
        pytest.param(
            {"rating": "up", "tags": [*FeedbackTag.values, "helpful"]}, ["tags", str(len(FeedbackTag))], id="too-many"
        ),
        pytest.param({"rating": "up", "comment": "x" * (MAX_COMMENT_CHARS + 1)}, ["comment", "2000"], id="long"),
        pytest.param({"rating": "up", "comment": "a\u0000b"}, ["comment"], id="nul-in-comment"),
        pytest.param({"rating": "up", "owner": 1}, ["owner"], id="unknown-field"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem_and_stores_nothing(api, chat, body, words):
    message = answered(chat)
    assert_error(api.put(path(message), body, format="json"), 400, *words)
    assert not Feedback.objects.exists()


def test_a_body_that_is_not_json_is_a_400(api, chat):
    message = answered(chat)
    assert_error(api.put(path(message), "rating=up", content_type="text/plain"), 415)
    assert_error(api.put(path(message), "[1]", content_type="application/json"), 400)
    assert not Feedback.objects.exists()


def test_a_user_message_cannot_be_rated(api, chat):
    answer = answered(chat)
    response = api.put(path(answer.parent_id), {"rating": "up"}, format="json")
    assert_error(response, 400, "Only assistant messages", str(answer.parent_id), "user")
    assert response.json()["code"] == "not_an_answer"
    assert not Feedback.objects.exists()


def test_unauthenticated_calls_are_a_401(anon, chat):
    message = answered(chat)
    assert_error(anon.put(path(message), {"rating": "up"}, format="json"), 401)
    assert_error(anon.get("/feedback/tags"), 401)
    assert not Feedback.objects.exists()


# -- whose messages (docs/reliability.md B1) ---------------------------------------------------------


def test_another_users_message_is_a_404_on_every_method_and_stays_unchanged(api, other_api, chat):
    message = answered(chat)
    api.put(path(message), {"rating": "up", "tags": ["helpful"], "comment": "Mine."}, format="json")
    before = Feedback.objects.get(message=message)
    for client_path in (path(message), path(MISSING)):
        assert_error(other_api.get(client_path), 404)
        assert_error(other_api.put(client_path, {"rating": "down"}, format="json"), 404)
        assert_error(
            other_api.put(client_path, {"rating": "nope", "x": 1}, format="json"), 404
        )  # 404 before the body is read
        assert_error(other_api.delete(client_path), 404)
    assert other_api.get(path(message)).json() == other_api.get(path(MISSING)).json()
    after = Feedback.objects.get(message=message)
    assert (after.rating, after.tags, after.comment, after.updated_at) == (
        "up",
        ["helpful"],
        "Mine.",
        before.updated_at,
    )


def test_a_visitor_rates_their_own_answers_only(public_bot, user, make_chat):
    client, visitor = visitor_client(public_bot)
    mine = visitor_answer(public_bot, visitor)
    response = client.put(path(mine), {"rating": "down", "tags": ["off_topic"]}, format="json")
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == PAGE
    stored = Feedback.objects.get(message=mine)
    assert (stored.visitor_id, stored.owner, stored.bot) == (visitor.id, user, public_bot)
    assert client.get(path(mine)).json()["rating"] == "down"

    _other_client, someone_else = visitor_client(public_bot)
    theirs = visitor_answer(public_bot, someone_else)
    owners = answered(make_chat(owner=user, bot=public_bot))
    for message in (theirs, owners):
        assert_error(client.put(path(message), {"rating": "up"}, format="json"), 404)
        assert_error(client.get(path(message)), 404)
        assert_error(client.delete(path(message)), 404)
    assert not Feedback.objects.filter(message__in=[theirs, owners]).exists()

    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Visitor not-a-token")
    assert_error(forged.put(path(mine), {"rating": "up"}, format="json"), 401)
    assert client.delete(path(mine)).status_code == 204
    assert not Feedback.objects.exists()


def test_a_visitor_token_stops_working_when_the_bot_is_private_or_its_key_changes(public_bot):
    client, visitor = visitor_client(public_bot)
    message = visitor_answer(public_bot, visitor)
    bot_public_set(bot=public_bot, public=False)
    assert_error(client.put(path(message), {"rating": "up"}, format="json"), 404)
    bot_public_key_rotate(bot=bot_public_set(bot=public_bot, public=True))
    assert_error(client.put(path(message), {"rating": "up"}, format="json"), 404)
    assert not Feedback.objects.exists()


def test_the_bot_owner_cannot_rate_a_visitors_answer_through_the_user_api(api, public_bot):
    _client, visitor = visitor_client(public_bot)
    message = visitor_answer(public_bot, visitor)
    assert_error(api.put(path(message), {"rating": "down"}, format="json"), 404)
    assert_error(api.get(path(message)), 404)
    assert_error(api.delete(path(message)), 404)
    assert not Feedback.objects.exists()


def test_a_visitors_rating_shows_in_their_session_history(public_bot):
    client, visitor = visitor_client(public_bot)
    message = visitor_answer(public_bot, visitor)
    client.put(path(message), {"rating": "down"}, format="json")
    history = client.get(f"/widget/sessions/{message.chat_id}/messages").json()["messages"]
    assert [(m["role"], m["feedback"]) for m in history] == [("user", None), ("assistant", "down")]


# -- the tag list, CORS ------------------------------------------------------------------------------


def test_the_tag_list_names_every_tag_with_its_label(api, public_bot):
    response = api.get("/feedback/tags")
    assert response.status_code == 200
    assert response.json() == [{"tag": tag.value, "label": str(tag.label)} for tag in FeedbackTag]
    client, _visitor = visitor_client(public_bot)
    assert client.get("/feedback/tags/").json() == response.json()


def test_a_preflight_from_any_page_is_answered_and_the_origin_echoed(chat):
    message = answered(chat)
    response = APIClient().options(path(message), HTTP_ORIGIN=PAGE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="PUT")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == PAGE
    assert {"PUT", "DELETE", "GET"} <= {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert "Origin" in response["Vary"]


# -- query counts ------------------------------------------------------------------------------------


def test_each_call_takes_a_few_queries_whatever_the_chat_holds(
    api, user, bot, make_chat, django_assert_max_num_queries
):
    chat = make_chat(owner=user, bot=bot)
    for _ in range(20):
        answered(chat)
    message = answered(chat)
    with django_assert_max_num_queries(8):
        assert api.put(path(message), {"rating": "up", "tags": ["helpful"]}, format="json").status_code == 200
    with django_assert_max_num_queries(6):  # replaced in place
        assert api.put(path(message), {"rating": "down"}, format="json").status_code == 200
    with django_assert_max_num_queries(2):  # the user, the message with its chat and feedback
        assert api.get(path(message)).status_code == 200
    with django_assert_max_num_queries(3):
        assert api.delete(path(message)).status_code == 204


def test_the_widget_history_reads_every_rating_in_one_query(public_bot):
    client, visitor = visitor_client(public_bot)
    first = visitor_answer(public_bot, visitor)
    chat = first.chat

    def history_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/widget/sessions/{chat.pk}/messages").status_code == 200
        return len(queries)

    client.put(path(first), {"rating": "up"}, format="json")
    few = history_queries()
    for _ in range(8):
        answer = answered(chat)
        client.put(path(answer), {"rating": "down"}, format="json")
    ratings = [m["feedback"] for m in client.get(f"/widget/sessions/{chat.pk}/messages").json()["messages"]]
    assert ratings.count("down") == 8
    assert history_queries() == few
