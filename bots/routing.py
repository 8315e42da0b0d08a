"""Picks the bot's model config for a query: an explicit task type wins, else a keyword rule.

The rule, in order: a code fence or programming words -> `code`; a request to summarise ->
`summarize`; a long query (over 600 characters), several questions, or words asking for
reasoning (why, explain, compare, analyse, step by step; and their Spanish forms) -> `complex`;
anything else -> `general`. If the bot has no config for that task type it falls back to
`general`, then to its oldest config, then to the platform default model.

Failover: when the chosen model fails before its first token, the bot's `general` config and then
the platform default answer instead, each once; ones whose provider has no key here are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.conf import settings
from django.utils.translation import gettext as _

from bots.llm import default_model_spec, provider_is_configured
from bots.llm.types import ModelSpec
from bots.models import ModelConfig, TaskType
from core.errors import DomainError

LONG_QUERY_CHARS = 600
_CODE = re.compile(
    r"```|\b(def|class|function|python|javascript|typescript|sql|regex|stack ?trace|traceback|"
    r"compile|bug|código|codigo|programa|función|funcion)\b",
    re.IGNORECASE,
)
_SUMMARY = re.compile(r"\b(summari[sz]e|summary|tl;?dr|resume|resumen|resúmen|sintetiza)\b", re.IGNORECASE)
_REASONING = re.compile(
    r"\b(why|explain|compare|analy[sz]e|step by step|prove|derive|evaluate|trade-?offs?|"
    r"por qué|porqué|explica|compara|analiza|paso a paso|demuestra|evalúa|evalua)\b",
    re.IGNORECASE,
)


def classify_task(query: str) -> str:
    if _CODE.search(query):
        return TaskType.CODE
    if _SUMMARY.search(query):
        return TaskType.SUMMARIZE
    if len(query) > LONG_QUERY_CHARS or query.count("?") >= 2 or _REASONING.search(query):
        return TaskType.COMPLEX
    return TaskType.GENERAL


def route_model(*, configs: Sequence[ModelConfig], query: str, task_type: str | None = None) -> tuple[ModelSpec, str]:
    """The model to answer `query` with, and the task type it was routed as."""
    wanted = task_type or classify_task(query)
    by_type = {config.task_type: config for config in configs}
    config = by_type.get(wanted) or by_type.get(TaskType.GENERAL) or (configs[0] if configs else None)
    if config is None:
        return default_model_spec(), wanted
    return ModelSpec(provider=config.provider, model=config.model_id, source=f"bot:{config.task_type}"), wanted


def failover_specs(*, configs: Sequence[ModelConfig], chosen: ModelSpec) -> tuple[ModelSpec, ...]:
    """The models to try, in order, after `chosen` fails before its first token: the bot's `general`
    config, then the platform default; no model twice, none whose provider is not configured here."""
    general = next((config for config in configs if config.task_type == TaskType.GENERAL), None)
    candidates = [default_model_spec()]
    if general is not None:
        candidates.insert(0, ModelSpec(provider=general.provider, model=general.model_id, source="bot:general"))
    seen = {(chosen.provider, chosen.model)}
    fallbacks = []
    for spec in candidates:
        if (spec.provider, spec.model) not in seen and provider_is_configured(spec.provider):
            seen.add((spec.provider, spec.model))
            fallbacks.append(spec)
    return tuple(fallbacks)


def available_model_specs(configs: Sequence[ModelConfig] = ()) -> list[ModelSpec]:
    """The models a chat may ask for by name: the platform default, `LLM_CHAT_MODELS`, the bot's configs."""
    specs = [default_model_spec()]
    for entry in settings.LLM_CHAT_MODELS:
        provider, _slash, model = entry.partition("/")
        if provider and model:
            specs.append(ModelSpec(provider=provider, model=model, source="catalog"))
    specs.extend(ModelSpec(provider=c.provider, model=c.model_id, source=f"bot:{c.task_type}") for c in configs)
    return specs


def model_spec_named(name: str, configs: Sequence[ModelConfig] = ()) -> ModelSpec:
    """The model called `name` (`provider/model`, or a bare model id), if the chat may use it; else 400."""
    wanted = name.strip()
    for spec in available_model_specs(configs):
        if wanted in (f"{spec.provider}/{spec.model}", spec.model):
            return spec
    raise DomainError(
        _("The model %(model)s is not available here.") % {"model": wanted[:100]}, code="model_not_available"
    )
