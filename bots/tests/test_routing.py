import pytest

from bots.models import Bot, ModelConfig, TaskType
from bots.routing import classify_task, route_model


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("hola, ¿qué tal?", TaskType.GENERAL),
        ("What is the capital of France?", TaskType.GENERAL),
        ("Fix this bug:\n```python\nprint(x\n```", TaskType.CODE),
        ("Escribe una función en Python que ordene una lista", TaskType.CODE),
        ("Summarize this article for me", TaskType.SUMMARIZE),
        ("Hazme un resumen del capítulo 3", TaskType.SUMMARIZE),
        ("Explain why the sky is blue", TaskType.COMPLEX),
        ("Compara el capitalismo y el socialismo paso a paso", TaskType.COMPLEX),
        ("Who won? When? Where?", TaskType.COMPLEX),
        ("tell me a story " * 50, TaskType.COMPLEX),
    ],
)
def test_classify_task_follows_the_documented_rule(query, expected):
    assert classify_task(query) == expected


def _bot_with(user, *configs):
    bot = Bot.objects.create(owner=user, name="b")
    for task_type, provider, model_id in configs:
        ModelConfig.objects.create(bot=bot, task_type=task_type, provider=provider, model_id=model_id)
    return list(bot.model_configs.all())


def test_router_uses_the_config_for_the_classified_task(user):
    configs = _bot_with(user, ("general", "google", "gemini-1.5-flash-latest"), ("complex", "openai", "gpt-4o"))
    spec, task = route_model(configs=configs, query="Explain why the sky is blue")
    assert (spec.provider, spec.model, task) == ("openai", "gpt-4o", "complex")
    spec, task = route_model(configs=configs, query="hello")
    assert (spec.provider, spec.model, task) == ("google", "gemini-1.5-flash-latest", "general")


def test_router_explicit_task_type_wins_over_the_rule(user):
    configs = _bot_with(user, ("general", "google", "gemini-1.5-flash-latest"), ("complex", "openai", "gpt-4o"))
    spec, task = route_model(configs=configs, query="Explain why the sky is blue", task_type="general")
    assert (spec.model, task) == ("gemini-1.5-flash-latest", "general")


def test_router_falls_back_to_general_then_oldest_then_platform_default(user, settings):
    configs = _bot_with(user, ("general", "google", "g"), ("code", "openai", "c"))
    assert route_model(configs=configs, query="Summarize it")[0].model == "g"
    configs = _bot_with(user, ("code", "openai", "c"), ("complex", "openai", "x"))
    assert route_model(configs=configs, query="Summarize it")[0].model == "c"
    settings.LLM_PROVIDER, settings.LLM_MODEL = "local", "bytchat-local"
    spec, _ = route_model(configs=[], query="hello")
    assert (spec.provider, spec.model, spec.source) == ("local", "bytchat-local", "default")
