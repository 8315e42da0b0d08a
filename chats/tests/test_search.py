"""GET /search/chats: the caller's own messages from every surface, ranked, filtered and marked, on both
databases (docs/search.md); another user's messages never appear (docs/reliability.md B1)."""

import datetime
import itertools
import random
import uuid

import pytest
from django.utils import timezone

from chats.models import Chat, Message, MessageSearchEntry, MessageStatus, Role, Surface
from chats.runs.services import run_rows_create
from conftest import POSTGRES_CONFIGURED
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db
HIT_KEYS = {
    "message_id",
    "chat_id",
    "chat_title",
    "bot_id",
    "surface",
    "role",
    "visitor",
    "snippet",
    "created_at",
    "score",
}


def say(chat: Chat, content: str, role: str = Role.USER, **fields) -> Message:
    return Message.objects.create(chat=chat, role=role, content=content, **fields)


def search(api, q: str, **params):
    response = api.get("/search/chats", {"q": q, **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def found(api, q: str, **params) -> list[str]:
    return [hit["message_id"] for hit in search(api, q, **params)]


def test_finds_the_callers_messages_from_every_surface_best_first(api, user, make_chat):
    sessions = make_chat(owner=user, title="Harbour trip")
    chats_004 = make_chat(owner=user, surface=Surface.CHATS, title="Lighthouse")
    once = say(sessions, "The ferry leaves the harbour at nine.")
    twice = say(chats_004, "Harbour fees: the harbour master collects them.", role=Role.ASSISTANT)
    say(sessions, "Nothing about boats here.")

    results = search(api, "harbour")
    assert [hit["message_id"] for hit in results] == [str(twice.id), str(once.id)]
    assert set(results[0]) == HIT_KEYS
    first = results[0]
    assert (first["chat_id"], first["chat_title"], first["surface"], first["role"], first["visitor"]) == (
        str(chats_004.id),
        "Lighthouse",
        "chats",
        "assistant",
        False,
    )
    assert first["snippet"] == "<mark>Harbour</mark> fees: the <mark>harbour</mark> master collects them."
    assert results[0]["score"] > results[1]["score"]


def test_stemmed_words_match_and_are_marked(api, user, chat):
    message = say(chat, "We were sailing past the boxes.")
    assert found(api, "sail") == [str(message.id)]
    assert found(api, "box") == [str(message.id)]
    assert search(api, "sails box")[0]["snippet"] == "We were <mark>sailing</mark> past the <mark>boxes</mark>."


@pytest.mark.skipif(POSTGRES_CONFIGURED, reason="PostgreSQL's `english` configuration keeps accents (docs/search.md)")
def test_accents_are_folded_on_sqlite(api, user, chat):
    message = say(chat, "A table at the café.")
    assert found(api, "cafe") == [str(message.id)]
    assert search(api, "cafés")[0]["snippet"] == "A table at the <mark>café</mark>."


def test_another_users_messages_never_appear_whatever_is_asked(api, other_api, user, other_user, make_chat, make_bot):
    mine = say(make_chat(owner=user), "secret harbour plans")
    theirs_bot = make_bot(owner=other_user, name="theirs")
    theirs = [
        say(make_chat(owner=other_user), "secret harbour plans of theirs"),
        say(make_chat(owner=other_user, surface=Surface.OPENAI), "secret harbour plans via v1"),
        say(
            make_chat(owner=other_user, bot=theirs_bot, surface=Surface.WIDGET, visitor_id=uuid.uuid4()),
            "secret harbour plans of a visitor",
        ),
    ]
    for params in ({}, {"include": "visitors,api"}, {"bot": str(theirs_bot.id)}, {"surface": "widget"}):
        assert set(found(api, "secret harbour", **params)) <= {str(mine.id)}
    assert found(api, "secret harbour") == [str(mine.id)]
    assert {str(message.id) for message in theirs} == set(found(other_api, "secret harbour", include="visitors,api"))


def test_visitors_chats_are_found_only_when_asked_for_and_only_by_the_bots_owner(api, user, make_chat, make_bot):
    bot = make_bot(owner=user)
    visitor_chat = make_chat(owner=user, bot=bot, surface=Surface.WIDGET, visitor_id=uuid.uuid4())
    asked = say(visitor_chat, "Do you open on holidays?")
    assert found(api, "holidays") == []
    results = search(api, "holidays", include="visitors")
    assert [hit["message_id"] for hit in results] == [str(asked.id)]
    assert results[0]["visitor"] is True
    assert found(api, "holidays", surface="widget") == [str(asked.id)]


def test_api_records_are_left_out_unless_asked_for(api, user, make_chat):
    v1 = say(make_chat(owner=user, surface=Surface.OPENAI), "quarterly tide tables")
    mcp = say(make_chat(owner=user, surface=Surface.MCP), "quarterly tide tables again")
    assert found(api, "tide") == []
    assert set(found(api, "tide", include="api")) == {str(v1.id), str(mcp.id)}
    assert found(api, "tide", surface="openai") == [str(v1.id)]


def test_filters_by_bot_surface_role_and_date(api, user, make_chat, make_bot):
    bot = make_bot(owner=user)
    with_bot = make_chat(owner=user, bot=bot, surface=Surface.BYTCHAT)
    plain = make_chat(owner=user, surface=Surface.CONVERSATIONS)
    question = say(with_bot, "anchor question")
    answer = say(with_bot, "anchor answer", role=Role.ASSISTANT)
    old = say(plain, "anchor from long ago")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=40))
    old.refresh_from_db()

    assert set(found(api, "anchor", bot=str(bot.id))) == {str(question.id), str(answer.id)}
    assert found(api, "anchor", surface="conversations") == [str(old.id)]
    assert found(api, "anchor", role="assistant") == [str(answer.id)]
    ten_days_ago = (timezone.now() - datetime.timedelta(days=10)).date().isoformat()
    assert set(found(api, "anchor", since=ten_days_ago)) == {str(question.id), str(answer.id)}
    assert found(api, "anchor", until=ten_days_ago) == [str(old.id)]
    assert found(api, "anchor", until=old.created_at.date().isoformat()) == [str(old.id)]  # the day is included
    assert set(found(api, "anchor", since=old.created_at.isoformat())) == {
        str(question.id),
        str(answer.id),
        str(old.id),
    }


def test_an_answer_is_found_once_it_ends_and_with_its_final_text(api, user, chat):
    question = say(chat, "what is the pilot's signal?")
    with_run = run_rows_create(chat=chat, question=question, surface=Surface.SESSIONS, run_id=uuid.uuid4())
    answer = with_run[0]
    Message.objects.filter(pk=answer.pk).update(content="a streaming flag draft")  # a checkpoint
    assert found(api, "flag") == []
    Message.objects.filter(pk=answer.pk).update(content="a blue flag by day", status=MessageStatus.COMPLETE)
    assert found(api, "flag") == [str(answer.id)]
    Message.objects.filter(pk=answer.pk).update(content="a lamp by night")
    assert found(api, "flag") == []
    assert found(api, "lamp") == [str(answer.id)]


def test_deleted_messages_and_chats_are_gone_from_the_results(api, user, make_chat):
    first, second = make_chat(owner=user), make_chat(owner=user)
    gone = say(first, "buoy maintenance log")
    kept = say(second, "buoy colours")
    gone.delete()
    assert found(api, "buoy") == [str(kept.id)]
    second.delete()
    assert found(api, "buoy") == []
    assert MessageSearchEntry.objects.count() == 0


def test_system_messages_and_empty_answers_are_not_searchable(api, user, chat):
    say(chat, "system rules mention the quay", role=Role.SYSTEM)
    say(chat, "", role=Role.ASSISTANT)
    assert found(api, "quay") == []
    assert MessageSearchEntry.objects.count() == 0


def test_a_message_holding_html_is_escaped_in_its_snippet(api, user, chat):
    say(chat, '<script>alert("x")</script> the <b>mooring</b> line')
    snippet = search(api, "mooring")[0]["snippet"]
    assert (
        snippet == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; the &lt;b&gt;<mark>mooring</mark>&lt;/b&gt; line"
    )


def test_a_long_message_is_cut_around_its_first_match(api, user, chat):
    say(chat, "filler " * 200 + "the dredger arrives tomorrow " + "tail " * 200)
    snippet = search(api, "dredger")[0]["snippet"]
    assert "<mark>dredger</mark> arrives tomorrow" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < 400


def test_words_that_are_fts_syntax_are_searched_as_words(api, user, chat):
    message = say(chat, "NEAR the OR gate AND the NOT sign")
    for query in ('NEAR OR AND NOT "', "gate*", "owner:1", "content: gate", "(gate"):
        response = api.get("/search/chats", {"q": query})
        assert response.status_code == 200, (query, response.content)
    assert found(api, "gate*") == [str(message.id)]


def test_paging_walks_the_ranking(api, user, chat):
    ids = [str(say(chat, "knot " * (count + 1)).id) for count in range(5)]
    everything = found(api, "knot", limit=5)
    assert set(everything) == set(ids)
    assert (
        found(api, "knot", limit=2) + found(api, "knot", limit=2, offset=2) + found(api, "knot", limit=2, offset=4)
        == everything
    )


def test_the_query_count_does_not_grow_with_the_hits(api, user, chat, django_assert_max_num_queries):
    for index in range(30):
        say(chat, f"harbour note {index}")
    with django_assert_max_num_queries(8):
        assert len(search(api, "harbour note", limit=20)) == 20


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 501}, "q"),
        ({"q": "x", "bot": "nope"}, "bot"),
        ({"q": "x", "surface": "fax"}, "surface"),
        ({"q": "x", "role": "system"}, "role"),
        ({"q": "x", "since": "yesterday"}, "since"),
        ({"q": "x", "until": "2026-13-40"}, "until"),
        ({"q": "x", "include": "everything"}, "include"),
        ({"q": "x", "limit": "500"}, "limit"),
        ({"q": "x", "offset": "-1"}, "offset"),
        ({"q": "x", "owner": "2"}, "owner"),
    ],
)
def test_bad_parameters_are_400_naming_them(api, params, field):
    assert_error(api.get("/search/chats", params), 400, field)


def test_search_needs_credentials(anon):
    assert_error(anon.get("/search/chats", {"q": "x"}), 401)


def test_a_query_with_no_words_finds_nothing(api, user, chat):
    say(chat, "punctuation only")
    assert search(api, "?!… --") == []


def test_reading_only_messages_that_can_rank_gives_the_one_pass_top(api, user, other_user, make_chat, monkeypatch):
    """Both databases rank in two passes (knowledge/bm25.py); with budgets that hold, the hits and their
    scores are the one-pass ranking's, which scores every message holding any of the words."""
    from knowledge import bm25
    from knowledge.tests.test_ranking_scope import WORDS

    rng = random.Random(11)
    mine, theirs = make_chat(owner=user), make_chat(owner=other_user)
    Message.objects.bulk_create(
        [
            Message(chat=mine, role=Role.USER, content=" ".join(rng.choices(WORDS, k=rng.randint(3, 30))))
            for _ in range(300)
        ]
        + [Message(chat=mine, role=Role.ASSISTANT, content="zygote " * n + "cell gene") for n in (1, 2, 3)]
        + [Message(chat=theirs, role=Role.USER, content=" ".join(rng.choices(WORDS, k=12))) for _ in range(100)]
    )
    queries = ["zygote insulin cell", "cell protein gene", "zygote kidney brain memory cortex synapse", "dose"]
    for query, limit in itertools.product(queries, [1, 5, 40]):
        monkeypatch.setattr(bm25, "CANDIDATE_BUDGET", 10**9)  # one pass over every match: the reference
        every_match = search(api, query, limit=limit)
        assert every_match
        for budget, combinations in [(1, 64), (30, 64), (30, 0)]:
            monkeypatch.setattr(bm25, "CANDIDATE_BUDGET", budget)
            monkeypatch.setattr(bm25, "MAX_COMBINATIONS", combinations)
            pruned = search(api, query, limit=limit)
            assert [hit["message_id"] for hit in pruned] == [hit["message_id"] for hit in every_match], (
                query,
                limit,
                budget,
            )
            assert [round(hit["score"], 9) for hit in pruned] == [round(hit["score"], 9) for hit in every_match]
