"""Writes on bots and their model configs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot, ModelConfig
from config.errors import Conflict, DomainError, NotFound

BOT_FIELDS = ("name", "description", "system_prompt")


def bot_create(
    *,
    owner: User,
    name: str,
    description: str = "",
    system_prompt: str = "",
    initial_configs: list[dict[str, Any]] | None = None,
) -> Bot:
    initial_configs = initial_configs or []
    task_types = [c["task_type"] for c in initial_configs]
    if len(task_types) != len(set(task_types)):
        raise DomainError(_("initial_configs: each task type may appear once."), code="duplicate_task_type")
    if len(initial_configs) > settings.MODEL_CONFIGS_PER_BOT:
        raise DomainError(
            _("initial_configs: at most %(n)d model configs per bot.") % {"n": settings.MODEL_CONFIGS_PER_BOT},
            code="too_many_model_configs",
        )
    with transaction.atomic():
        # Lock the owner row so two parallel creations cannot both pass the count check.
        User.objects.select_for_update().filter(pk=owner.pk).first()
        if Bot.objects.filter(owner=owner).count() >= settings.BOTS_PER_USER:
            raise DomainError(
                _("You have reached the limit of %(n)d bots.") % {"n": settings.BOTS_PER_USER},
                code="too_many_bots",
                status_code=403,
            )
        bot = Bot.objects.create(owner=owner, name=name, description=description, system_prompt=system_prompt)
        ModelConfig.objects.bulk_create([ModelConfig(bot=bot, **config) for config in initial_configs])
    return bot


def bot_update(*, bot: Bot, data: dict[str, Any]) -> Bot:
    changed = [field for field in BOT_FIELDS if field in data]
    for field in changed:
        setattr(bot, field, data[field])
    if changed:
        bot.save(update_fields=[*changed, "updated_at"])
    return bot


def bot_delete(*, bot: Bot) -> None:
    bot.delete()


def model_config_add(*, bot: Bot, provider: str, model_id: str, task_type: str) -> ModelConfig:
    if bot.model_configs.count() >= settings.MODEL_CONFIGS_PER_BOT:
        raise DomainError(
            _("A bot has at most %(n)d model configs.") % {"n": settings.MODEL_CONFIGS_PER_BOT},
            code="too_many_model_configs",
        )
    try:
        with transaction.atomic():
            config = ModelConfig.objects.create(bot=bot, provider=provider, model_id=model_id, task_type=task_type)
    except IntegrityError as exc:
        raise Conflict(
            _("This bot already has a model for the task type %(task_type)s; delete it first.")
            % {"task_type": task_type},
            code="duplicate_task_type",
        ) from exc
    Bot.objects.filter(pk=bot.pk).update(updated_at=config.created_at)
    return config


def model_config_delete(*, bot: Bot, config_id: int) -> None:
    deleted, _unused = ModelConfig.objects.filter(bot=bot, pk=config_id).delete()
    if not deleted:
        raise NotFound(_("Model config not found."), code="model_config_not_found")
