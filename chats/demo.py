"""The demo: a public bot that answers from a sample document, shown by the widget at /demo/.

`manage.py demo_bot` prepares it (idempotent); staff can make any bot the demo bot in the admin.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from bots.models import Bot
from bots.services import bot_public_set, demo_bot_set
from knowledge.services import document_store, knowledge_base_get_or_create, upload_check

DEMO_OWNER_EMAIL = "demo@bytchat.invalid"
DEMO_BOT_NAME = "Bytchat demo"
DEMO_PROMPT = (
    "You are the Bytchat demo assistant. Answer briefly and only from the documents you are given; "
    "say so when they do not cover the question."
)
SAMPLE = Path(__file__).resolve().parent / "demo_material" / "bytchat.md"


def demo_bot_get() -> Bot | None:
    """The bot the /demo/ page shows, while it is public."""
    return Bot.objects.filter(demo=True, public=True, owner__is_active=True).first()


def demo_bot_prepare(*, origins: list[str]) -> Bot:
    """The demo owner (no password: it cannot log in), its public bot with the sample document,
    the given page origins allowed besides Bytchat's own, marked as the demo bot."""
    user_model = get_user_model()
    with transaction.atomic():
        owner = user_model.objects.filter(email=DEMO_OWNER_EMAIL).first()
        if owner is None:
            owner = user_model.objects.create_user(email=DEMO_OWNER_EMAIL, password=None)
        bot = Bot.objects.filter(owner=owner, name=DEMO_BOT_NAME).first()
        if bot is None:
            bot = Bot.objects.create(owner=owner, name=DEMO_BOT_NAME, system_prompt=DEMO_PROMPT)
        allowed = list(dict.fromkeys([*bot.allowed_origins, *origins]))
        bot_public_set(bot=bot, public=True, allowed_origins=allowed)
        demo_bot_set(bot=bot)
        base = knowledge_base_get_or_create(owner=owner, name=DEMO_BOT_NAME)
        base.bots.add(bot)
        # The same file twice is the same document: running the command again adds nothing.
        document_store(knowledge_base=base, checked=upload_check(filename=SAMPLE.name, data=SAMPLE.read_bytes()))
    return bot
