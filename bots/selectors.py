"""Reads on bots, always scoped to the owner: another user's bot does not exist."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from bots.models import Bot
from core.errors import NotFound


def bot_list(*, user: User) -> QuerySet[Bot]:
    return Bot.objects.filter(owner=user).prefetch_related("model_configs").order_by("-created_at")


def bot_get(*, user: User, bot_id: uuid.UUID | str) -> Bot:
    bot = bot_list(user=user).filter(pk=bot_id).first()
    if bot is None:
        raise NotFound(_("Bot not found."), code="bot_not_found")
    return bot


def demo_bot_get() -> Bot | None:
    """The bot the /demo/ page shows, while it is public and its owner active."""
    return Bot.objects.filter(demo=True, public=True, owner__is_active=True).first()
