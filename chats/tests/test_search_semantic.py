"""Message search with an embeddings provider (docs/search.md, semantic search): vectors stored in the
background through the real openai SDK against the fake OpenAI-compatible server, found by meaning, fused
with the words' ranking, never across owners (docs/reliability.md B1), and words alone when the provider
fails (O7)."""

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.test import AsyncClient
from rest_framework_simplejwt.tokens import AccessToken

from chats.models import Chat, Message, MessageSearchEntry, Role
from chats.search.embeddings import message_embeddings_pending, message_embeddings_schedule
from chats.tasks import embed_messages

pytestmark = pytest.mark.django_db


def say(chat: Chat, content: str, role: str = Role.USER) -> Message:
    return Message.objects.create(chat=chat, role=role, content=content)


def found(api, q: str, **params) -> list[str]:
    response = api.get("/search/chats", {"q": q, **params})
    assert response.status_code == 200, response.content
    return [hit["message_id"] for hit in response.json()["results"]]


def embedding_requests(upstream) -> list:
    return [request for request in upstream.requests if request.path == "/v1/embeddings"]


@pytest.fixture
def pets(chat):
    return say(chat, "My cat sleeps on the warm sofa."), say(chat, "Stocks fell sharply today.", Role.ASSISTANT)


def test_the_task_stores_a_unit_vector_for_every_waiting_message(embeddings, pets):
    assert message_embeddings_pending() == 2
    assert embed_messages.enqueue().return_value == 2
    vectors = [
        np.frombuffer(bytes(blob), dtype=np.float32)
        for blob in MessageSearchEntry.objects.values_list("embedding", flat=True)
    ]
    assert len(vectors) == 2 and all(abs(float(np.linalg.norm(v)) - 1) < 1e-5 for v in vectors)
    sent = embedding_requests(embeddings)
    assert len(sent) == 1 and sent[0].body["input"] == [m.content for m in pets]
    assert message_embeddings_pending() == 0


def test_a_message_is_found_by_meaning_without_a_shared_word(embeddings, api, pets):
    cat, stocks = pets
    assert found(api, "kitten") == []  # words alone: no message says "kitten"
    embed_messages.enqueue()
    assert found(api, "kitten") == [str(cat.id)]
    hit = api.get("/search/chats", {"q": "kitten"}).json()["results"][0]
    assert hit["snippet"] == "My cat sleeps on the warm sofa."  # nothing to mark: the message as it starts
    assert found(api, "stocks")[0] == str(stocks.id)


def test_hits_by_words_and_hits_by_meaning_come_back_together(embeddings, api, chat, settings):
    by_words = say(chat, "Stocks of sofas fell.")
    by_meaning = say(chat, "My cat sleeps.")
    embed_messages.enqueue()
    assert set(found(api, "kitten sofa")) == {str(by_words.id), str(by_meaning.id)}
    settings.EMBEDDINGS_MODEL = "fake-embed-fail"
    assert found(api, "kitten sofa") == [str(by_words.id)]


def test_another_users_messages_never_appear_by_meaning(embeddings, api, other_user, make_chat, pets):
    theirs = say(make_chat(owner=other_user), "Their cat is a secret.")
    embed_messages.enqueue()
    assert str(theirs.id) not in found(api, "kitten secret")
    assert found(api, "secret") == []


def test_the_filters_hold_for_hits_found_by_meaning(embeddings, api, pets):
    embed_messages.enqueue()
    assert found(api, "kitten", role="assistant") == []
    assert found(api, "kitten", role="user") == [str(pets[0].id)]


def test_a_failing_provider_at_query_time_serves_the_words_ranking(embeddings, api, pets, settings):
    embed_messages.enqueue()
    settings.EMBEDDINGS_MODEL = "fake-embed-fail"
    assert found(api, "sofa") == [str(pets[0].id)]
    assert found(api, "kitten") == []


def test_a_failing_provider_leaves_the_messages_waiting_for_the_next_run(embeddings, pets, settings):
    settings.EMBEDDINGS_MODEL = "fake-embed-fail"
    assert embed_messages.enqueue().return_value == 0
    assert message_embeddings_pending() == 2


def test_an_edited_message_is_embedded_again_for_its_new_text(embeddings, api, pets):
    cat, _stocks = pets
    embed_messages.enqueue()
    Message.objects.filter(pk=cat.pk).update(content="A puppy chews the slipper.")
    assert message_embeddings_pending() == 1
    assert found(api, "kitten") == []
    embed_messages.enqueue()
    assert found(api, "dog") == [str(cat.id)]


def test_scheduling_queues_one_task_per_delay_however_many_answers_end(embeddings, pets, settings):
    settings.CHAT_SEARCH_EMBEDDING_DELAY_SECONDS = 60
    message_embeddings_schedule()
    assert message_embeddings_pending() == 0
    say(Chat.objects.get(), "A third message.")
    message_embeddings_schedule()
    assert message_embeddings_pending() == 1  # within the delay: the task already due takes it
    assert len(embedding_requests(embeddings)) == 1


def test_without_a_provider_nothing_is_scheduled_or_sent(upstream, pets):
    message_embeddings_schedule()
    assert message_embeddings_pending() == 2
    assert embedding_requests(upstream) == []


def test_the_command_embeds_messages_stored_before_a_provider_was_configured(embeddings, pets, settings, capsys):
    settings.EMBEDDINGS_BATCH = 1
    call_command("embed_messages")
    assert message_embeddings_pending() == 0
    assert "2 message vectors stored" in capsys.readouterr().out
    assert [len(request.body["input"]) for request in embedding_requests(embeddings)] == [1, 1]


def test_the_command_without_a_provider_says_so(pets):
    with pytest.raises(CommandError, match="EMBEDDINGS_PROVIDER"):
        call_command("embed_messages")


@pytest.mark.django_db(transaction=True)
async def test_a_finished_turn_gets_its_question_and_answer_embedded(embeddings, user, bot):
    token = AccessToken.for_user(user)
    response = await AsyncClient().post(
        f"/chat/{bot.id}?query=Tell+me+about+kittens", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    b"".join([chunk async for chunk in response.streaming_content])
    entries = await sync_to_async(list)(
        MessageSearchEntry.objects.filter(chat_id=response["X-Chat-Id"]).values_list("role", "embedding")
    )
    assert sorted(role for role, _ in entries) == ["assistant", "user"]
    assert all(blob is not None for _role, blob in entries)
