"""Writes on bots and their model configs."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot, ModelConfig
from bots.origins import origin_normalize
from core.errors import Conflict, DomainError, NotFound

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


PUBLIC_KEY_PREFIX = "pk_"
ALLOWED_ORIGINS_MAX = 20


def allowed_origins_clean(origins: Any) -> list[str]:
    """A list of at most ALLOWED_ORIGINS_MAX http(s) origins (`https://www.example.com`), normalised;
    anything else (a path, a wildcard, another scheme) is a 400 naming it."""
    if not isinstance(origins, list) or len(origins) > ALLOWED_ORIGINS_MAX:
        raise DomainError(
            _("allowed_origins: give a list of at most %(n)d origins.") % {"n": ALLOWED_ORIGINS_MAX}, code="invalid"
        )
    cleaned: list[str] = []
    for origin in origins:
        normalized = origin_normalize(origin)
        if normalized is None:
            shown = str(origin)[:100]
            message = _('allowed_origins: "%(origin)s" is not an origin such as https://www.example.com.')
            raise DomainError(message % {"origin": shown}, code="invalid")
        if normalized not in cleaned:
            cleaned.append(normalized)
    return cleaned


def public_key_new() -> str:
    return PUBLIC_KEY_PREFIX + secrets.token_urlsafe(24)


def bot_public_set(*, bot: Bot, public: bool, allowed_origins: Any = None) -> Bot:
    """Turn the bot's public mode (the web widget) on or off; a key is made the first time it is on."""
    bot.public = public
    if allowed_origins is not None:
        bot.allowed_origins = allowed_origins_clean(allowed_origins)
    if public and not bot.public_key:
        bot.public_key = public_key_new()
    bot.save(update_fields=["public", "public_key", "allowed_origins", "updated_at"])
    return bot


def bot_public_key_rotate(*, bot: Bot) -> Bot:
    """A new publishable key: pages embedding the old one can no longer start sessions, and the
    visitor tokens issued under it stop working (sockets already open end within WS_MAX_AGE_SECONDS)."""
    bot.public_key = public_key_new()
    bot.save(update_fields=["public_key", "updated_at"])
    return bot


def demo_bot_set(*, bot: Bot) -> Bot:
    """Make this bot the one the /demo/ page shows (there is one at most)."""
    with transaction.atomic():
        Bot.objects.filter(demo=True).exclude(pk=bot.pk).update(demo=False)
        Bot.objects.filter(pk=bot.pk).update(demo=True)
    bot.demo = True
    return bot
