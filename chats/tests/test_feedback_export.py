"""The feedback export (JSON Lines, with preferred/rejected pairs from regenerated answers) and the feedback admin."""

from __future__ import annotations

import io
import json
import math

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chats.feedback.selectors import feedback_export_rows
from chats.feedback.services import feedback_set
from chats.models import Chat, Feedback, Message, MessageStatus, Role

pytestmark = pytest.mark.django_db

ROW_KEYS = {
    "feedback_id",
    "message_id",
    "chat_id",
    "bot_id",
    "model",
    "task_type",
    "rating",
    "tags",
    "comment",
    "question",
    "answer",
    "created_at",
}


def ask(chat: Chat, question: str) -> Message:
    return Message.objects.create(chat=chat, role=Role.USER, content=question)


def answer(question: Message, text: str, *, model: str = "gpt-a", status: str = MessageStatus.COMPLETE) -> Message:
    return Message.objects.create(
        chat=question.chat,
        parent=question,
        role=Role.ASSISTANT,
        content=text,
        model=model,
        task_type="general",
        status=status,
    )


def rows(**kwargs) -> list[dict]:
    return list(feedback_export_rows(**kwargs))


@pytest.fixture
def bot_chat(make_chat, user, bot):
    return make_chat(owner=user, bot=bot)


def test_a_rated_answer_without_another_answer_exports_its_question_and_answer_only(bot_chat, bot):
    question = ask(bot_chat, "Where is the pier?")
    reply = answer(question, "North.")
    feedback = feedback_set(message=reply, rating="up", tags=["helpful"], comment="Good.")
    [row] = rows()
    assert set(row) == ROW_KEYS
    assert row == {
        "feedback_id": str(feedback.pk),
        "message_id": str(reply.pk),
        "chat_id": str(bot_chat.pk),
        "bot_id": str(bot.pk),
        "model": "gpt-a",
        "task_type": "general",
        "rating": "up",
        "tags": ["helpful"],
        "comment": "Good.",
        "question": "Where is the pier?",
        "answer": "North.",
        "created_at": feedback.created_at.isoformat(),
    }


def test_a_regenerated_answer_gives_the_preferred_and_rejected_pair(bot_chat):
    question = ask(bot_chat, "Where is the pier?")
    first = answer(question, "South.", model="gpt-a")
    regenerated = answer(question, "North.", model="gpt-b")
    answer(question, "", status=MessageStatus.ERROR)  # a failed attempt is never one of the pair
    feedback_set(message=regenerated, rating="up")
    [liked] = rows()
    assert (liked["answer"], liked["preferred"], liked["rejected"]) == ("North.", "North.", "South.")
    assert liked["model"] == "gpt-b"

    Feedback.objects.all().delete()
    feedback_set(message=first, rating="down")
    [disliked] = rows()
    assert (disliked["answer"], disliked["preferred"], disliked["rejected"]) == ("South.", "North.", "South.")


def test_of_several_siblings_the_one_rated_the_other_way_is_chosen_else_the_newest(bot_chat):
    question = ask(bot_chat, "Which ferry?")
    oldest = answer(question, "The red one.")
    middle = answer(question, "The blue one.")
    newest = answer(question, "The green one.")
    feedback_set(message=oldest, rating="down")
    feedback_set(message=middle, rating="up")
    by_answer = {row["answer"]: row for row in rows()}
    # Each has an opposite-rated sibling, though `newest` is newer than either.
    assert (by_answer["The blue one."]["preferred"], by_answer["The blue one."]["rejected"]) == (
        "The blue one.",
        "The red one.",
    )
    assert (by_answer["The red one."]["preferred"], by_answer["The red one."]["rejected"]) == (
        "The blue one.",
        "The red one.",
    )
    feedback_set(message=newest, rating="up")
    by_answer = {row["answer"]: row for row in rows()}
    # Rated up like `middle`: the opposite one is `oldest`.
    assert by_answer["The green one."]["rejected"] == "The red one."
    Feedback.objects.filter(message=oldest).delete()
    by_answer = {row["answer"]: row for row in rows()}
    # No sibling rated the other way: the newest other one.
    assert by_answer["The blue one."]["rejected"] == "The green one."
    assert by_answer["The green one."]["rejected"] == "The blue one."


def test_the_export_reads_in_chunks_with_two_queries_each(bot_chat):
    for index in range(7):
        question = ask(bot_chat, f"Question {index}?")
        feedback_set(message=answer(question, f"Answer {index}."), rating="up" if index % 2 else "down")
        answer(question, f"Again {index}.")
    with CaptureQueriesContext(connection) as queries:
        exported = rows(chunk_size=3)
    assert len(exported) == 7 and len({row["feedback_id"] for row in exported}) == 7
    assert all(row["rejected"] or row["preferred"] for row in exported)
    assert len(queries) <= 2 * math.ceil(7 / 3)
    assert [row["question"] for row in exported] == [f"Question {index}?" for index in range(7)]


# -- the command -------------------------------------------------------------------------------------


def test_the_command_writes_json_lines_filtered_by_rating(bot_chat, tmp_path):
    question = ask(bot_chat, "Where is the pier?")
    feedback_set(message=answer(question, "North."), rating="up")
    feedback_set(message=answer(question, "South."), rating="down", comment="Wrong — it is «north».")
    out = io.StringIO()
    call_command("export_feedback", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["rating"] for line in lines) == ["down", "up"]
    target = tmp_path / "feedback.jsonl"
    call_command("export_feedback", "--rating", "down", "--output", str(target), stderr=io.StringIO())
    [line] = [json.loads(text) for text in target.read_text(encoding="utf-8").splitlines()]
    assert (line["comment"], line["preferred"], line["rejected"]) == ("Wrong — it is «north».", "North.", "South.")


# -- the admin ---------------------------------------------------------------------------------------


@pytest.fixture
def staff(make_user):
    admin_user = make_user(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    return client


def test_staff_export_the_selected_feedback_from_the_admin(staff, bot_chat):
    question = ask(bot_chat, "Where is the pier?")
    picked = feedback_set(message=answer(question, "North."), rating="up")
    feedback_set(message=answer(ask(bot_chat, "Other?"), "Other."), rating="down")
    response = staff.post("/admin/chats/feedback/", {"action": "export_jsonl", "_selected_action": [str(picked.pk)]})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    [row] = [json.loads(line) for line in body.splitlines()]
    assert (row["feedback_id"], row["question"], row["answer"]) == (str(picked.pk), "Where is the pier?", "North.")


def test_users_who_are_not_staff_cannot_export_or_read_feedback_in_the_admin(make_user, bot_chat):
    feedback = feedback_set(message=answer(ask(bot_chat, "Q?"), "A."), rating="up")
    client = Client()
    client.force_login(make_user())
    for response in (
        client.post("/admin/chats/feedback/", {"action": "export_jsonl", "_selected_action": [str(feedback.pk)]}),
        client.get("/admin/chats/feedback/summary/"),
        client.get("/admin/chats/feedback/"),
    ):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert b"A." not in response.content


def test_the_admin_counts_ratings_per_bot_model_and_task_type(staff, bot_chat, make_bot, user, make_chat):
    question = ask(bot_chat, "Q?")
    feedback_set(message=answer(question, "One.", model="gpt-a"), rating="up")
    feedback_set(message=answer(question, "Two.", model="gpt-a"), rating="down")
    feedback_set(message=answer(question, "Three.", model="gpt-a"), rating="down")
    other = make_chat(owner=user, bot=make_bot(owner=user, name="<b>Ferry</b> bot"))
    feedback_set(message=answer(ask(other, "Q?"), "Four.", model="gpt-b"), rating="up")
    response = staff.get("/admin/chats/feedback/summary/")
    assert response.status_code == 200
    rows_shown = [(row["bot__name"], row["model"], row["up"], row["down"]) for row in response.context["rows"]]
    assert rows_shown == [("Harbour guide", "gpt-a", 1, 2), ("<b>Ferry</b> bot", "gpt-b", 1, 0)]
    assert b"&lt;b&gt;Ferry&lt;/b&gt; bot" in response.content and b"<b>Ferry</b>" not in response.content
    listing = staff.get("/admin/chats/feedback/", {"rating__exact": "down"})
    assert listing.status_code == 200 and listing.context["cl"].result_count == 2
    assert b"/admin/chats/feedback/summary/" in listing.content


def test_a_comment_with_html_is_shown_escaped_in_the_admin(staff, bot_chat):
    feedback = feedback_set(
        message=answer(ask(bot_chat, "Q?"), "A."), rating="down", tags=["unsafe"], comment="<script>alert(1)</script>"
    )
    response = staff.get(f"/admin/chats/feedback/{feedback.pk}/change/")
    assert response.status_code == 200
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert b"<script>alert(1)</script>" not in response.content
    assert staff.get("/admin/chats/feedback/", {"q": "script"}).context["cl"].result_count == 1
    assert staff.get("/admin/chats/feedback/", {"q": "unsafe"}).context["cl"].result_count == 1  # a tag
    assert staff.get("/admin/chats/feedback/", {"q": "not_helpful"}).context["cl"].result_count == 0
