"""Forks: a new chat from one message, with its path or its whole branch, in the owner's account only."""

import math

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from chats.models import Chat, Message, MessageStatus, Role, Surface
from chats.selectors import branch_messages
from chats.services import assistant_message_create, chat_create, user_message_create
from chats.sharing import forks
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db
COPY_KEYS = {"id", "title", "bot_id", "surface", "current_node", "message_count", "created_at"}


def answer(chat, question, text, **fields):
    return assistant_message_create(chat=chat, parent=question, content=text, status=MessageStatus.COMPLETE, **fields)


@pytest.fixture
def tree(user, make_bot):
    """Q1 -> A1 -> Q2 -> A2, and an edit of Q2 made later: A1 -> Q2b -> A2b -> Q3b (the current node)."""
    chat = chat_create(owner=user, surface=Surface.SESSIONS, bot=make_bot(owner=user), title="Trip")
    q1 = user_message_create(chat=chat, content="Q1")
    a1 = answer(chat, q1, "A1", citations=[{"filename": "harbour.md", "text": "Tides."}])
    q2 = user_message_create(chat=chat, content="Q2")
    answer(chat, q2, "A2")
    q2b = user_message_create(chat=chat, content="Q2b", parent=a1)
    a2b = answer(chat, q2b, "A2b")
    user_message_create(chat=chat, content="Q3b", parent=a2b)
    Message.objects.filter(chat=chat).update(completion_tokens=50)
    chat.refresh_from_db()
    return chat


def by_content(chat_id) -> dict[str, Message]:
    return {m.content: m for m in Message.objects.filter(chat_id=chat_id).select_related("parent")}


def fork(api, chat, message, mode=None):
    body = {"message_id": str(message.pk)} | ({"mode": mode} if mode else {})
    response = api.post(f"/chats/{chat.pk}/fork", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_path_fork_copies_the_messages_from_the_root_to_the_message(api, user, tree):
    before = list(Message.objects.filter(chat=tree).values_list("id", "parent_id", "content").order_by("id"))
    q2 = Message.objects.get(chat=tree, content="Q2")
    body = fork(api, tree, q2)
    assert set(body) == COPY_KEYS
    assert (body["title"], body["bot_id"], body["surface"], body["message_count"]) == (
        "Trip (fork)",
        str(tree.bot_id),
        "chats",
        3,
    )
    new = Chat.objects.get(pk=body["id"])
    assert new.owner == user
    assert [m.content for m in branch_messages(chat=new)] == ["Q1", "A1", "Q2"]
    assert str(new.current_node_id) == body["current_node"] and new.current_node.content == "Q2"
    copied = by_content(new.pk)
    assert copied["A1"].citations == [{"filename": "harbour.md", "text": "Tides."}]
    # New rows with new ids; token counts stay with the original (usage is counted once).
    assert not set(copied.values()) & set(Message.objects.filter(chat=tree))
    assert {m.completion_tokens for m in copied.values()} == {None}
    assert list(Message.objects.filter(chat=tree).values_list("id", "parent_id", "content").order_by("id")) == before
    # The fork is a chat like any other: every surface reads and goes on with it.
    assert [m["message"] for m in api.get(f"/chats/{body['id']}/conversations").json()] == ["Q1", "A1", "Q2"]


def test_a_branch_fork_copies_the_subtree_as_the_same_tree(api, tree):
    a1 = Message.objects.get(chat=tree, content="A1")
    body = fork(api, tree, a1, mode="branch")
    assert body["message_count"] == 7
    copied = by_content(body["id"])
    parents = {content: (m.parent.content if m.parent else None) for content, m in copied.items()}
    assert parents == {
        "Q1": None,
        "A1": "Q1",
        "Q2": "A1",
        "A2": "Q2",
        "Q2b": "A1",
        "A2b": "Q2b",
        "Q3b": "A2b",
    }
    # The newest way down from the message is current: the later edit, to its end.
    assert copied["Q3b"].pk == Chat.objects.get(pk=body["id"]).current_node_id
    assert str(copied["Q3b"].pk) == body["current_node"]


def test_a_branch_fork_of_a_leaf_is_its_path_and_of_a_subtree_leaves_other_branches_out(api, tree):
    q2b = Message.objects.get(chat=tree, content="Q2b")
    body = fork(api, tree, q2b, mode="branch")
    assert set(by_content(body["id"])) == {"Q1", "A1", "Q2b", "A2b", "Q3b"}
    leaf = Message.objects.get(chat=tree, content="A2")
    body = fork(api, tree, leaf, mode="branch")
    assert set(by_content(body["id"])) == {"Q1", "A1", "Q2", "A2"}
    assert body["current_node"] == str(by_content(body["id"])["A2"].pk)


def test_a_fork_of_an_answer_still_being_written_is_an_interrupted_copy(api, user):
    chat = chat_create(owner=user, surface=Surface.CHATS, title="t")
    question = user_message_create(chat=chat, content="Q")
    partial = assistant_message_create(chat=chat, parent=question, content="Half", status=MessageStatus.STREAMING)
    body = fork(api, chat, partial)
    assert by_content(body["id"])["Half"].status == MessageStatus.INTERRUPTED
    assert Message.objects.get(pk=partial.pk).status == MessageStatus.STREAMING


@pytest.mark.parametrize("body", [{"mode": "path"}, {"mode": "branch"}, {"mode": "sideways", "extra": 1}])
def test_another_users_chat_cannot_be_forked(tree, other_api, other_user, body):
    message = Message.objects.get(chat=tree, content="A1")
    count = Chat.objects.count()
    response = other_api.post(f"/chats/{tree.pk}/fork", {"message_id": str(message.pk), **body}, format="json")
    assert_error(response, 404)
    assert Chat.objects.count() == count and not Chat.objects.filter(owner=other_user).exists()


def test_a_message_of_another_chat_is_a_404(api, user, other_user, tree):
    mine = chat_create(owner=user, surface=Surface.CHATS, title="other")
    theirs = chat_create(owner=other_user, surface=Surface.CHATS, title="theirs")
    for message in (user_message_create(chat=mine, content="x"), user_message_create(chat=theirs, content="y")):
        for mode in ("path", "branch"):
            response = api.post(f"/chats/{tree.pk}/fork", {"message_id": str(message.pk), "mode": mode}, format="json")
            assert_error(response, 404, "Message")
    assert Chat.objects.count() == 3


def test_a_bot_owner_cannot_fork_a_visitors_chat(api, user, make_bot):
    chat = chat_create(
        owner=user,
        surface=Surface.WIDGET,
        bot=make_bot(owner=user, public=True),
        visitor_id="5b0d3c3e-8d1f-4a8e-9d55-2f0c8b1e2a11",
    )
    question = user_message_create(chat=chat, content="A visitor's question")
    assert_error(api.post(f"/chats/{chat.pk}/fork", {"message_id": str(question.pk)}, format="json"), 404)
    assert Chat.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "message_id"), ({"message_id": "nope"}, "message_id"), ({"mode": "sideways"}, "mode"), ({"x": 1}, "x")],
)
def test_bad_input_is_a_400_naming_the_field(api, tree, body, field):
    body = {"message_id": str(tree.current_node_id)} | body if "message_id" not in body and body else body
    assert_error(api.post(f"/chats/{tree.pk}/fork", body, format="json"), 400, field)
    assert Chat.objects.count() == 1


def test_a_fork_past_the_limit_is_a_400(api, tree, monkeypatch):
    monkeypatch.setattr(forks, "FORK_MAX_MESSAGES", 4)
    a1 = Message.objects.get(chat=tree, content="A1")
    response = api.post(f"/chats/{tree.pk}/fork", {"message_id": str(a1.pk), "mode": "branch"}, format="json")
    assert_error(response, 400, "at most 4 messages")
    assert response.json()["code"] == "fork_too_large"
    q3b = Message.objects.get(chat=tree, content="Q3b")
    assert_error(api.post(f"/chats/{tree.pk}/fork", {"message_id": str(q3b.pk)}, format="json"), 400, "at most 4")
    assert fork(api, tree, a1)["message_count"] == 2
    assert Chat.objects.count() == 2


def a_long_chat(owner, turns: int) -> tuple[Chat, Message]:
    """`turns` questions and answers on one branch, and as many on a second branch from the first answer."""
    chat = chat_create(owner=owner, surface=Surface.CHATS, title="long")
    rows, parent = [], None
    for i in range(turns * 2):
        parent = Message(chat=chat, parent=parent, role=(Role.USER, Role.ASSISTANT)[i % 2], content=f"m{i}")
        rows.append(parent)
    parent = rows[1]
    for i in range(turns * 2):
        parent = Message(chat=chat, parent=parent, role=(Role.USER, Role.ASSISTANT)[i % 2], content=f"b{i}")
        rows.append(parent)
    Message.objects.bulk_create(rows)
    return chat, rows[1]


def test_a_fork_reads_in_constant_queries_whatever_the_chats_size(api, user):
    counts = {}
    for turns in (2, 150):
        chat, first_answer = a_long_chat(user, turns)
        reset_queries()  # a request clears the log it captures into: start it empty
        with CaptureQueriesContext(connection) as queries:
            body = fork(api, chat, first_answer, mode="branch")
        assert body["message_count"] == turns * 4
        statements = [q["sql"].lstrip().split()[0].upper() for q in queries.captured_queries]
        counts[turns] = (len([s for s in statements if s != "INSERT"]), statements.count("INSERT"))
    # Reads and updates do not grow; inserts are bulk, in the database's batches (about 60 rows on SQLite).
    assert counts[150][0] == counts[2][0]
    assert counts[150][1] <= counts[2][1] + math.ceil(600 / 60)
