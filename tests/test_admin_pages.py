"""Every page of the admin opens for staff: each registered model's list, add and change pages,
the usage chart, and the read-only pages refuse edits. A model registered later without an object
here fails `test_every_registered_model_has_an_object`."""

import datetime
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import DailyUsage, ModelCall
from accounts.services import api_key_create
from bots.models import Bot, ModelConfig
from chats.models import Chat, Feedback, Message, Run, ShareLink, Surface
from exams.models import Exam, Question
from knowledge.models import Chunk, DocumentStatus
from knowledge.services import document_reindex, document_store, knowledge_base_get_or_create, upload_check
from tools.models import Tool, ToolCall, ToolServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(make_user, settings, django_capture_on_commit_callbacks) -> dict[str, object]:
    owner = make_user("owner@example.com", user_type="pro", daily_quota=50)
    bot = Bot.objects.create(owner=owner, name="Tutor", system_prompt="Teach.")
    config = ModelConfig.objects.create(bot=bot, task_type="general", provider="local", model_id="bytchat-local")
    base = knowledge_base_get_or_create(owner=owner, name="Biología")
    base.bots.add(bot)
    upload = upload_check(filename="célula.txt", data="La célula es la unidad de vida.".encode())
    with django_capture_on_commit_callbacks(execute=True):
        document, _created = document_store(knowledge_base=base, checked=upload)
    chat = Chat.objects.create(owner=owner, bot=bot, title="<b>chat</b>", surface=Surface.CONVERSATIONS)
    question = Message.objects.create(chat=chat, role="user", content="¿Qué es la célula?")
    answer = Message.objects.create(chat=chat, parent=question, role="assistant", content="<script>alert(1)</script>")
    run = Run.objects.create(
        chat=chat, question=question, message=answer, owner=owner, surface=Surface.CONVERSATIONS, status="complete"
    )
    today = timezone.localdate()
    usage = DailyUsage.objects.create(user=owner, day=today, requests=3)
    DailyUsage.objects.create(user=owner, day=today - datetime.timedelta(days=2), requests=7)
    call = ModelCall.objects.create(
        user=owner, day=today, surface="conversations", model="gpt-x", prompt_tokens=120, completion_tokens=80
    )
    exam = Exam.objects.create(
        owner=owner,
        title="Biología",
        subject="Biología",
        difficulty="easy",
        hints=True,
        question_count=1,
        model="bytchat-local",
        language="es",
        pdf=b"%PDF-1.4 fake",
    )
    question_row = Question.objects.create(
        exam=exam, position=1, text="¿La ___ es la unidad de vida?", options=["célula", "roca"], answer_index=0
    )
    server = ToolServer.objects.create(bot=bot, name="weather", url="https://mcp.example.com/mcp", credentials="x")
    tool = Tool.objects.create(bot=bot, server=server, name="forecast", description="Tomorrow's weather.")
    tool_call = ToolCall.objects.create(
        message=answer, run=run, round=1, index=0, tool=tool, tool_name="weather__forecast", status="done"
    )
    share = ShareLink.objects.create(
        token="t" * 43, owner=owner, chat=chat, message=answer, title="<b>shared</b>", snapshot=[{"role": "user"}]
    )
    feedback = Feedback.objects.create(
        message=answer, owner=owner, bot=bot, model="gpt-x", rating="down", tags=["unsafe"], comment="<b>no</b>"
    )
    api_key, _raw = api_key_create(user=owner, name="CLI")
    refresh = RefreshToken.for_user(owner)
    outstanding = OutstandingToken.objects.get(jti=refresh["jti"])
    blacklisted = BlacklistedToken.objects.create(token=outstanding)
    # Ingestion runs inline in tests; queue one re-index on the database backend for a task row.
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        document_reindex(document=document)
    task = DBTaskResult.objects.get()
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    return {
        "auth.Group": Group.objects.create(name="Support"),
        "token_blacklist.OutstandingToken": outstanding,
        "token_blacklist.BlacklistedToken": blacklisted,
        "django_tasks_database.DBTaskResult": task,
        "accounts.User": owner,
        "accounts.DailyUsage": usage,
        "accounts.ModelCall": call,
        "accounts.ApiKey": api_key,
        "bots.Bot": bot,
        "bots.ModelConfig": config,
        "chats.Chat": chat,
        "chats.Message": question,
        "chats.Run": run,
        "chats.ShareLink": share,
        "chats.Feedback": feedback,
        "knowledge.KnowledgeBase": base,
        "knowledge.Document": document,
        "knowledge.Chunk": Chunk.objects.filter(document=document).first(),
        "exams.Exam": exam,
        "exams.Question": question_row,
        "tools.ToolServer": server,
        "tools.Tool": tool,
        "tools.ToolCall": tool_call,
    }


@pytest.fixture
def staff(make_user) -> Client:
    client = Client()
    client.force_login(make_user("root@example.com", is_staff=True, is_superuser=True))
    return client


REGISTERED = sorted(model._meta.label for model in admin.site._registry)


def test_every_registered_model_has_an_object(objects):
    assert sorted(objects) == REGISTERED
    assert all(obj is not None for obj in objects.values())


@pytest.mark.parametrize("label", REGISTERED)
def test_list_add_and_change_pages_open(staff, objects, label):
    obj = objects[label]
    model = type(obj)
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    changelist = staff.get(reverse(f"{name}_changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count >= 1
    search = staff.get(reverse(f"{name}_changelist") + "?q=owner")
    assert search.status_code == 200
    add = staff.get(reverse(f"{name}_add"))
    model_admin = admin.site._registry[model]
    assert add.status_code == (200 if model_admin.has_add_permission(add.wsgi_request) else 403)
    change = staff.get(reverse(f"{name}_change", args=[obj.pk]))
    assert change.status_code == 200
    assert change.context["original"] == obj


def test_user_list_shows_quota_and_todays_calls(staff, objects):
    response = staff.get(reverse("admin:accounts_user_changelist") + "?q=owner@example.com")
    rows = response.context["cl"].result_list
    assert [(row.email, row.calls_today_count) for row in rows] == [("owner@example.com", 3)]
    page = response.content.decode()
    assert '<td class="field-quota">50</td>' in page
    staff_page = staff.get(reverse("admin:accounts_user_changelist") + "?q=root").content.decode()
    assert "unlimited" in staff_page


def test_staff_edit_a_users_quota(staff, objects):
    owner = objects["accounts.User"]
    page = staff.get(reverse("admin:accounts_user_change", args=[owner.pk]))
    assert b'name="daily_quota"' in page.content
    form = {
        "email": owner.email,
        "username": owner.username,
        "user_type": "free",
        "daily_quota": "500",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    response = staff.post(reverse("admin:accounts_user_change", args=[owner.pk]), form)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    owner.refresh_from_db()
    assert (owner.user_type, owner.daily_quota) == ("free", 500)


def test_bot_page_lists_its_knowledge_bases_and_model_configs(staff, objects):
    page = staff.get(reverse("admin:bots_bot_change", args=[objects["bots.Bot"].pk])).content.decode()
    assert "Biología" in page and "bytchat-local" in page


def test_chat_page_shows_messages_escaped(staff, objects):
    page = staff.get(reverse("admin:chats_chat_change", args=[objects["chats.Chat"].pk])).content.decode()
    assert "¿Qué es la célula?" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_documents_can_be_reindexed_from_the_admin(staff, objects, django_capture_on_commit_callbacks):
    document = objects["knowledge.Document"]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            reverse("admin:knowledge_document_changelist"),
            {"action": "reindex", "_selected_action": [str(document.pk)]},
        )
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY  # re-indexed inline in tests


def test_usage_chart_draws_thirty_days_of_calls_and_tokens(staff, objects):
    response = staff.get(reverse("admin:accounts_dailyusage_chart"))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<svg class="usage-chart"') == 2
    assert response.context["calls_chart"].peak == 7
    calls_bars = response.context["calls_chart"].bars
    assert len(calls_bars) == 30
    heights = [bar.height for bar in calls_bars]
    assert heights[-3] == max(heights) and 0 < heights[-1] < heights[-3]  # 7 two days ago, 3 today
    token_bars = response.context["tokens_chart"].bars
    assert len(token_bars) == 60  # prompt and completion stacked
    assert "10 model calls" in page and "200 tokens" in page
    assert not re.search(r'(x|y|width|height)="\d+,\d', page)  # SVG numbers are never localized
    link = staff.get(reverse("admin:accounts_dailyusage_changelist")).content.decode()
    assert reverse("admin:accounts_dailyusage_chart") in link


def test_usage_chart_numbers_stay_svg_numbers_in_spanish(staff, objects):
    response = staff.get(reverse("admin:accounts_dailyusage_chart"), HTTP_ACCEPT_LANGUAGE="es")
    page = response.content.decode()
    assert "Uso de los últimos 30 días" in page and "llamadas al modelo" in page
    assert not re.search(r'(x|y|width|height)="\d+,\d', page)


def test_usage_pages_are_read_only(staff, objects):
    call = objects["accounts.ModelCall"]
    response = staff.post(reverse("admin:accounts_modelcall_change", args=[call.pk]), {"model": "forged"})
    assert response.status_code == 403
    call.refresh_from_db()
    assert call.model == "gpt-x"


def test_non_staff_cannot_open_admin_pages(make_user, objects):
    client = Client()
    client.force_login(make_user())
    for url in (reverse("admin:accounts_dailyusage_chart"), reverse("admin:accounts_user_changelist")):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_the_view_permission_cannot_open_the_usage_chart(make_user, objects):
    client = Client()
    client.force_login(make_user(is_staff=True))
    assert client.get(reverse("admin:accounts_dailyusage_chart")).status_code == 403


def test_a_days_counter_is_deleted_one_at_a_time_giving_the_calls_back(staff, objects):
    usage = objects["accounts.DailyUsage"]
    changelist = staff.get(reverse("admin:accounts_dailyusage_changelist"))
    assert changelist.context["action_form"] is None  # no bulk delete
    response = staff.post(reverse("admin:accounts_dailyusage_delete", args=[usage.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not DailyUsage.objects.filter(pk=usage.pk).exists()
