"""The 001 bots surface: `/bots/`, `/bots/{bot_id}`, `/bots/{bot_id}/models/` and their limits."""

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bots.models import Bot, ModelConfig
from tests.helpers import assert_error

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.bot(
        name="Pirate",
        description="Arr",
        system_prompt="You are a pirate.",
        models=[("general", "local", "bytchat-local")],
    ),
]


SEED_CREATE = {
    "name": "Mi Nuevo Asistente",
    "description": "Un bot para pruebas.",
    "initial_configs": [{"task_type": "general", "provider": "google", "model_id": "gemini-1.5-flash-latest"}],
}
SEED_UPDATE = {"system_prompt": "Ahora eres un robot pirata que habla como tal."}
SEED_MODEL = {"provider": "openai", "model_id": "gpt-4o", "task_type": "complex"}
BOT_KEYS = {"id", "name", "description", "system_prompt", "model_configs", "created_at", "updated_at"}
CONFIG_KEYS = {"id", "task_type", "provider", "model_id", "available", "created_at"}


@pytest.fixture
def no_provider_keys(settings):
    providers = {name: dict(config) for name, config in settings.LLM_PROVIDERS.items()}
    for config in providers.values():
        config["api_key"] = ""
        if config.get("requires") == "base_url":
            config["base_url"] = ""
    settings.LLM_PROVIDERS = providers


def snapshot(bot: Bot) -> tuple:
    bot = Bot.objects.get(pk=bot.pk)
    configs = list(bot.model_configs.values_list("id", "task_type", "provider", "model_id"))
    return bot.owner_id, bot.name, bot.description, bot.system_prompt, bot.updated_at, configs


# --- create and list -------------------------------------------------------------------------------


def test_create_with_the_seed_body_returns_201_with_model_configs(api, user, no_provider_keys):
    response = api.post("/bots/", SEED_CREATE, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == BOT_KEYS
    assert body["name"] == "Mi Nuevo Asistente"
    assert body["description"] == "Un bot para pruebas."
    assert body["system_prompt"] == ""
    [config] = body["model_configs"]
    assert set(config) == CONFIG_KEYS
    assert (config["task_type"], config["provider"], config["model_id"]) == (
        "general",
        "google",
        "gemini-1.5-flash-latest",
    )
    assert config["available"] is False
    bot = Bot.objects.get(pk=body["id"])
    assert bot.owner == user
    assert bot.model_configs.count() == 1


def test_create_without_configs_and_without_trailing_slash(api):
    response = api.post("/bots", {"name": "Bare"}, format="json")
    assert response.status_code == 201
    assert response.json()["model_configs"] == []


def test_available_is_false_without_a_key_and_true_for_local(api, no_provider_keys):
    body = {
        "name": "Mixed",
        "initial_configs": [
            {"task_type": "general", "provider": "local", "model_id": "bytchat-local"},
            {"task_type": "complex", "provider": "google", "model_id": "gemini-1.5-pro"},
            {"task_type": "code", "provider": "ollama", "model_id": "llama3.2"},
        ],
    }
    configs = api.post("/bots/", body, format="json").json()["model_configs"]
    assert {c["provider"]: c["available"] for c in configs} == {"local": True, "google": False, "ollama": False}


def test_available_is_true_once_the_provider_has_a_key(api, settings, no_provider_keys):
    settings.LLM_PROVIDERS = {**settings.LLM_PROVIDERS, "google": {**settings.LLM_PROVIDERS["google"], "api_key": "k"}}
    configs = api.post("/bots/", SEED_CREATE, format="json").json()["model_configs"]
    assert configs[0]["available"] is True


def test_list_returns_only_the_callers_bots(api, other_api, user, other_user):
    mine = api.post("/bots/", SEED_CREATE, format="json").json()["id"]
    other_api.post("/bots/", {**SEED_CREATE, "name": "Not yours"}, format="json")
    response = api.get("/bots/")
    assert response.status_code == 200
    assert [b["id"] for b in response.json()] == [mine]
    assert set(response.json()[0]) == BOT_KEYS
    assert api.get("/bots").json() == response.json()


def test_list_is_newest_first(api):
    ids = [api.post("/bots/", {"name": f"b{n}"}, format="json").json()["id"] for n in range(3)]
    assert [b["id"] for b in api.get("/bots/").json()] == ids[::-1]


def test_list_uses_a_constant_number_of_queries(api, user, django_assert_max_num_queries):
    first = Bot.objects.create(owner=user, name="b0")
    ModelConfig.objects.create(bot=first, task_type="general", provider="local", model_id="m")
    with CaptureQueriesContext(connection) as baseline:
        assert len(api.get("/bots/").json()) == 1
    for n in range(1, 10):
        extra = Bot.objects.create(owner=user, name=f"b{n}")
        for task_type in ("general", "complex", "code"):
            ModelConfig.objects.create(bot=extra, task_type=task_type, provider="local", model_id="m")
    with django_assert_max_num_queries(len(baseline)):
        bots = api.get("/bots/").json()
    assert len(bots) == 10
    assert sum(len(b["model_configs"]) for b in bots) == 28


# --- create validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "ok", "description": "d" * 2001}, "description"),
        ({"name": "ok", "system_prompt": "p" * 8001}, "system_prompt"),
        ({"name": "ok", "owner": 1}, "owner"),
        ({"name": "ok", "id": str(uuid.uuid4())}, "id"),
        ({"name": "ok", "created_at": "2000-01-01T00:00:00Z"}, "created_at"),
        ({"name": "ok", "initial_configs": [{"provider": "skynet", "model_id": "t-800"}]}, "provider"),
        ({"name": "ok", "initial_configs": [{"provider": "local", "model_id": "a b"}]}, "model_id"),
        ({"name": "ok", "initial_configs": [{"provider": "local", "model_id": "m", "task_type": "x"}]}, "task_type"),
        ({"name": "ok", "initial_configs": [{"provider": "local"}]}, "model_id"),
        ({"name": "ok", "initial_configs": [{"provider": "local", "model_id": "m", "bot": "x"}]}, "bot"),
        (
            {
                "name": "ok",
                "initial_configs": [
                    {"provider": "local", "model_id": "a", "task_type": "general"},
                    {"provider": "local", "model_id": "b", "task_type": "general"},
                ],
            },
            "task type",
        ),
    ],
)
def test_create_with_invalid_input_is_400_naming_the_problem_and_creates_nothing(api, body, field):
    assert_error(api.post("/bots/", body, format="json"), 400, field)
    assert not Bot.objects.exists()
    assert not ModelConfig.objects.exists()


def test_create_cannot_set_another_owner(api, user, other_user):
    assert_error(api.post("/bots/", {"name": "ok", "owner": other_user.pk}, format="json"), 400, "owner")
    assert not Bot.objects.filter(owner=other_user).exists()


def test_bots_per_user_limit_refuses_the_next_create_with_403(api, settings):
    settings.BOTS_PER_USER = 2
    for n in range(2):
        assert api.post("/bots/", {"name": f"b{n}"}, format="json").status_code == 201
    assert_error(api.post("/bots/", {"name": "b3"}, format="json"), 403, "2")
    assert Bot.objects.count() == 2


def test_bots_per_user_limit_is_per_user(api, other_api, settings):
    settings.BOTS_PER_USER = 1
    assert api.post("/bots/", {"name": "a"}, format="json").status_code == 201
    assert other_api.post("/bots/", {"name": "b"}, format="json").status_code == 201


def test_too_many_initial_configs_is_400(api, settings):
    settings.MODEL_CONFIGS_PER_BOT = 1
    body = {
        "name": "ok",
        "initial_configs": [
            {"provider": "local", "model_id": "a", "task_type": "general"},
            {"provider": "local", "model_id": "b", "task_type": "code"},
        ],
    }
    assert_error(api.post("/bots/", body, format="json"), 400, "initial_configs")
    assert not Bot.objects.exists()


# --- detail: owner -------------------------------------------------------------------------------


def test_owner_can_get_the_bot(api, bot):
    response = api.get(f"/bots/{bot.id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == BOT_KEYS
    assert body["id"] == str(bot.id)
    assert body["system_prompt"] == "You are a pirate."
    assert [c["model_id"] for c in body["model_configs"]] == ["bytchat-local"]
    assert api.get(f"/bots/{bot.id}/").json() == body


def test_put_with_the_seed_body_updates_only_the_system_prompt(api, bot):
    response = api.put(f"/bots/{bot.id}", SEED_UPDATE, format="json")
    assert response.status_code == 200
    assert response.json()["system_prompt"] == SEED_UPDATE["system_prompt"]
    assert response.json()["name"] == "Pirate"
    bot.refresh_from_db()
    assert (bot.name, bot.description, bot.system_prompt) == ("Pirate", "Arr", SEED_UPDATE["system_prompt"])
    assert bot.model_configs.count() == 1


def test_patch_updates_name_and_description(api, bot):
    response = api.patch(f"/bots/{bot.id}/", {"name": "Captain", "description": ""}, format="json")
    assert response.status_code == 200
    bot.refresh_from_db()
    assert (bot.name, bot.description, bot.system_prompt) == ("Captain", "", "You are a pirate.")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"owner": 999}, "owner"),
        ({"model_configs": []}, "model_configs"),
        ({"updated_at": "2000-01-01T00:00:00Z"}, "updated_at"),
    ],
)
def test_update_with_invalid_or_unknown_field_is_400_and_bot_unchanged(api, bot, body, field):
    before = snapshot(bot)
    for method in (api.put, api.patch):
        assert_error(method(f"/bots/{bot.id}", body, format="json"), 400, field)
    assert snapshot(bot) == before


def test_owner_can_delete_the_bot_and_then_it_is_404(api, bot):
    assert api.delete(f"/bots/{bot.id}").status_code == 204
    assert not Bot.objects.filter(pk=bot.pk).exists()
    assert not ModelConfig.objects.filter(bot_id=bot.pk).exists()
    assert_error(api.get(f"/bots/{bot.id}"), 404)
    assert_error(api.delete(f"/bots/{bot.id}"), 404)


def test_unknown_bot_id_is_404(api):
    assert_error(api.get(f"/bots/{uuid.uuid4()}"), 404, "Bot")


@pytest.mark.parametrize("path", ["/bots/not-a-uuid", "/bots/123", "/bots/not-a-uuid/models/", "/bots/%00"])
def test_malformed_bot_id_is_404_json(api, path):
    assert_error(api.get(path), 404)


# --- another user's bot ----------------------------------------------------------------------------


def test_other_users_bot_is_404_on_every_method_and_unchanged(other_api, bot):
    config = bot.model_configs.get()
    before = snapshot(bot)
    calls = [
        ("get", f"/bots/{bot.id}", None),
        ("put", f"/bots/{bot.id}", SEED_UPDATE),
        ("patch", f"/bots/{bot.id}", {"name": "stolen"}),
        ("delete", f"/bots/{bot.id}", None),
        ("get", f"/bots/{bot.id}/models/", None),
        ("post", f"/bots/{bot.id}/models/", SEED_MODEL),
        ("delete", f"/bots/{bot.id}/models/{config.id}", None),
    ]
    for method, path, body in calls:
        response = getattr(other_api, method)(path, body, format="json")
        detail = assert_error(response, 404)
        assert "Pirate" not in detail
    assert snapshot(bot) == before
    assert other_api.get("/bots/").json() == []
    # No existence oracle: someone else's bot looks exactly like a bot that does not exist.
    assert other_api.get(f"/bots/{bot.id}").json() == other_api.get(f"/bots/{uuid.uuid4()}").json()


def test_other_users_bot_with_invalid_body_is_still_404_not_400(other_api, bot):
    assert_error(other_api.patch(f"/bots/{bot.id}", {"name": ""}, format="json"), 404)
    assert_error(other_api.post(f"/bots/{bot.id}/models/", {"provider": "nope"}, format="json"), 404)


def test_config_of_another_bot_cannot_be_deleted_through_my_bot(api, other_user, user):
    mine = Bot.objects.create(owner=user, name="mine")
    theirs = Bot.objects.create(owner=other_user, name="theirs")
    config = ModelConfig.objects.create(bot=theirs, task_type="general", provider="local", model_id="m")
    assert_error(api.delete(f"/bots/{mine.id}/models/{config.id}"), 404)
    assert ModelConfig.objects.filter(pk=config.pk).exists()


# --- model configs -------------------------------------------------------------------------------


def test_add_model_with_the_seed_body_returns_201(api, bot):
    response = api.post(f"/bots/{bot.id}/models/", SEED_MODEL, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == CONFIG_KEYS
    assert (body["provider"], body["model_id"], body["task_type"]) == ("openai", "gpt-4o", "complex")
    assert bot.model_configs.filter(pk=body["id"], provider="openai").exists()
    listed = api.get(f"/bots/{bot.id}/models").json()
    assert [c["task_type"] for c in listed] == ["general", "complex"]
    assert api.get(f"/bots/{bot.id}").json()["model_configs"] == listed


def test_add_model_without_trailing_slash_works(api, bot):
    response = api.post(f"/bots/{bot.id}/models", {**SEED_MODEL, "task_type": "code"}, format="json")
    assert response.status_code == 201


def test_add_model_task_type_defaults_to_general(api, user):
    bot = Bot.objects.create(owner=user, name="empty")
    response = api.post(f"/bots/{bot.id}/models/", {"provider": "local", "model_id": "m"}, format="json")
    assert response.status_code == 201
    assert response.json()["task_type"] == "general"


def test_add_model_for_a_task_type_already_configured_is_409(api, bot):
    assert api.post(f"/bots/{bot.id}/models/", SEED_MODEL, format="json").status_code == 201
    again = {**SEED_MODEL, "model_id": "gpt-4o-mini"}
    assert_error(api.post(f"/bots/{bot.id}/models/", again, format="json"), 409, "complex")
    assert list(bot.model_configs.filter(task_type="complex").values_list("model_id", flat=True)) == ["gpt-4o"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "skynet", "model_id": "gpt-4o", "task_type": "code"}, "provider"),
        ({"provider": "", "model_id": "gpt-4o", "task_type": "code"}, "provider"),
        ({"model_id": "gpt-4o", "task_type": "code"}, "provider"),
        ({"provider": "openai", "model_id": "gpt 4o", "task_type": "code"}, "model_id"),
        ({"provider": "openai", "model_id": "", "task_type": "code"}, "model_id"),
        ({"provider": "openai", "model_id": "gpt-4o\n", "task_type": "summarize"}, None),
        ({"provider": "openai", "model_id": "m" * 201, "task_type": "code"}, "model_id"),
        ({"provider": "openai", "model_id": "gpt-4o;rm -rf", "task_type": "code"}, "model_id"),
        ({"provider": "openai", "model_id": "gpt-4o", "task_type": "poetry"}, "task_type"),
        ({"provider": "openai", "model_id": "gpt-4o", "task_type": "code", "bot": "x"}, "bot"),
    ],
)
def test_add_model_with_invalid_input_is_400_naming_the_field(api, bot, body, field):
    before = snapshot(bot)
    response = api.post(f"/bots/{bot.id}/models/", body, format="json")
    if field is None:  # surrounding whitespace is trimmed, not an error
        assert response.status_code == 201
        assert response.json()["model_id"] == "gpt-4o"
        return
    assert_error(response, 400, field)
    assert snapshot(bot) == before


@pytest.mark.parametrize("model_id", ["../etc/passwd", "models/../../admin", ".."])
def test_add_model_with_dot_dot_segment_is_400(api, bot, model_id):
    body = {"provider": "openai", "model_id": model_id, "task_type": "code"}
    response = api.post(f"/bots/{bot.id}/models/", body, format="json")
    assert_error(response, 400, "model_id")


def test_model_ids_with_slashes_and_colons_are_accepted(api, user):
    bot = Bot.objects.create(owner=user, name="ids")
    for task_type, provider, model_id in [
        ("general", "openrouter", "openai/gpt-4o-mini"),
        ("code", "ollama", "qwen2.5-coder:7b"),
    ]:
        body = {"provider": provider, "model_id": model_id, "task_type": task_type}
        assert api.post(f"/bots/{bot.id}/models/", body, format="json").status_code == 201


def test_model_configs_per_bot_limit(api, bot, settings):
    settings.MODEL_CONFIGS_PER_BOT = 1
    assert_error(api.post(f"/bots/{bot.id}/models/", SEED_MODEL, format="json"), 400, "1")
    assert bot.model_configs.count() == 1


def test_delete_model_config_is_204_then_404(api, bot):
    config = bot.model_configs.get()
    assert api.delete(f"/bots/{bot.id}/models/{config.id}").status_code == 204
    assert not ModelConfig.objects.filter(pk=config.pk).exists()
    assert_error(api.delete(f"/bots/{bot.id}/models/{config.id}/"), 404)
    assert api.get(f"/bots/{bot.id}").json()["model_configs"] == []
    # The freed task type can be configured again.
    again = {"provider": "local", "model_id": "m", "task_type": "general"}
    assert api.post(f"/bots/{bot.id}/models/", again, format="json").status_code == 201


# --- body limits ---------------------------------------------------------------------------------


def test_json_body_over_one_mib_is_413_json(api, bot):
    big = json.dumps({"name": "big", "description": "x" * (1024 * 1024 + 10)})
    response = api.post("/bots/", big, content_type="application/json")
    assert_error(response, 413)
    big_patch = json.dumps({"system_prompt": "x" * (1024 * 1024 + 10)})
    assert_error(api.patch(f"/bots/{bot.id}", big_patch, content_type="application/json"), 413)
    assert not Bot.objects.filter(name="big").exists()


def test_unauthenticated_bots_routes_are_401(anon, bot):
    for method, path in [
        ("get", "/bots/"),
        ("post", "/bots/"),
        ("get", f"/bots/{bot.id}"),
        ("delete", f"/bots/{bot.id}"),
        ("post", f"/bots/{bot.id}/models/"),
    ]:
        response = getattr(anon, method)(path, {}, format="json")
        assert_error(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert Bot.objects.filter(pk=bot.pk).exists()
