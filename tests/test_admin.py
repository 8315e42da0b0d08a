"""The Django admin pages for users, bots and model configs render for staff and only for staff."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from bots.models import Bot, ModelConfig

pytestmark = pytest.mark.django_db

MODELS = [("accounts", "user"), ("bots", "bot"), ("bots", "modelconfig")]


@pytest.fixture
def objects(make_user):
    owner = make_user("owner@example.com", first_name="Ana")
    bot = Bot.objects.create(owner=owner, name="Pirate", description="Arr", system_prompt="You are a pirate.")
    config = ModelConfig.objects.create(bot=bot, task_type="general", provider="local", model_id="bytchat-local")
    ModelConfig.objects.create(bot=bot, task_type="code", provider="openai", model_id="gpt-4o")
    Bot.objects.create(owner=owner, name="Empty")
    return {"user": owner, "bot": bot, "modelconfig": config}


@pytest.fixture
def staff(make_user):
    admin_user = make_user("root@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_changelist_add_and_change_pages_render(staff, objects, app, model):
    obj = objects[model]
    changelist = staff.get(reverse(f"admin:{app}_{model}_changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count >= 1
    assert staff.get(reverse(f"admin:{app}_{model}_add")).status_code == 200
    change = staff.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
    assert change.status_code == 200
    assert change.context["original"] == obj


def test_admin_index_renders(staff, objects):
    response = staff.get(reverse("admin:index"))
    assert response.status_code == 200
    for name in (b"Users", b"Bots", b"Model configs"):
        assert name in response.content


def test_bot_changelist_shows_model_counts(staff, objects):
    response = staff.get(reverse("admin:bots_bot_changelist"))
    counts = {bot.name: bot.model_total for bot in response.context["cl"].result_list}
    assert counts == {"Pirate": 2, "Empty": 0}


@pytest.mark.parametrize(
    ("app", "model", "query", "expected"),
    [
        ("accounts", "user", "q=owner@example", 1),
        ("accounts", "user", "q=Ana", 1),
        ("accounts", "user", "user_type__exact=free", 2),
        ("accounts", "user", "is_staff__exact=1", 1),
        ("accounts", "user", "is_active__exact=0", 0),
        ("accounts", "user", "is_superuser__exact=1&q=root", 1),
        ("bots", "bot", "q=Pirate", 1),
        ("bots", "bot", "q=owner@example.com", 2),
        ("bots", "bot", "model_configs__provider=openai", 1),
        ("bots", "bot", "created_at__gte=2000-01-01+00:00:00%2B00:00", 2),
        ("bots", "bot", "o=3", 2),
        ("bots", "modelconfig", "q=gpt-4o", 1),
        ("bots", "modelconfig", "q=Pirate", 2),
        ("bots", "modelconfig", "provider__exact=local", 1),
        ("bots", "modelconfig", "task_type__exact=code", 1),
    ],
)
def test_changelist_filters_and_search(staff, objects, app, model, query, expected):
    response = staff.get(reverse(f"admin:{app}_{model}_changelist") + "?" + query)
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_non_staff_is_sent_to_the_login_page(make_user, objects, app, model):
    client = Client()
    client.force_login(make_user())
    response = client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_admin_can_add_a_user_through_the_form(staff):
    response = staff.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "added@example.com",
            "username": "added",
            "user_type": "pro",
            "password1": "una-clave-segura-123",
            "password2": "una-clave-segura-123",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else None
    added = User.objects.get(email="added@example.com")
    assert added.user_type == "pro"
    assert added.check_password("una-clave-segura-123")


def test_chats_and_messages_are_readable_not_addable(staff, objects):
    from chats.services import assistant_message_create, chat_create, user_message_create

    chat = chat_create(owner=objects["user"], bot=objects["bot"], title="Treasure", surface="bytchat")
    question = user_message_create(chat=chat, content="Where is it?")
    assistant_message_create(chat=chat, parent=question, content="On the island.", status="complete")
    changelist = staff.get(reverse("admin:chats_chat_changelist") + "?q=owner@example.com")
    assert changelist.status_code == 200 and changelist.context["cl"].result_count == 1
    change = staff.get(reverse("admin:chats_chat_change", args=[chat.pk]))
    assert change.status_code == 200
    assert b"On the island." in change.content
    assert staff.get(reverse("admin:chats_message_changelist") + "?role__exact=assistant").status_code == 200
    assert staff.get(reverse("admin:chats_message_change", args=[question.pk])).status_code == 200
    assert staff.get(reverse("admin:chats_chat_add")).status_code == 403
    assert staff.get(reverse("admin:chats_message_add")).status_code == 403


def test_knowledge_admin_shows_status_and_its_actions_call_the_services(staff, objects, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge.models import Chunk, Document
    from knowledge.services import document_upload, knowledge_base_get_or_create

    base = knowledge_base_get_or_create(owner=objects["user"], name="Maps")
    document, _created = document_upload(
        knowledge_base=base, upload=SimpleUploadedFile("maps.txt", b"Port Zafiro lies north.")
    )
    for name, args in [
        ("knowledge_knowledgebase_changelist", []),
        ("knowledge_knowledgebase_change", [base.pk]),
        ("knowledge_document_changelist", []),
        ("knowledge_document_change", [document.pk]),
        ("knowledge_chunk_changelist", []),
    ]:
        assert staff.get(reverse(f"admin:{name}", args=args)).status_code == 200
    listing = staff.get(reverse("admin:knowledge_document_changelist") + "?status__exact=queued")
    assert listing.status_code == 200
    response = staff.post(
        reverse("admin:knowledge_document_changelist"),
        {"action": "delete_with_files", "_selected_action": [document.pk]},
    )
    assert response.status_code == 302
    assert not Document.objects.exists() and not Chunk.objects.exists()
