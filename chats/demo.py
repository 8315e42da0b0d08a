"""The demo: a public bot that answers from a sample document, shown by the widget at /demo/.

`manage.py demo_bot` prepares it (idempotent); staff can make any bot the demo bot in the admin.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from bots.models import Bot
from bots.services import bot_create, bot_public_set, demo_bot_set
from knowledge.services import document_store, knowledge_base_get_or_create, upload_check

DEMO_OWNER_EMAIL = "demo@bytchat.invalid"
DEMO_BOT_NAME = "Bytchat demo"
DEMO_PROMPT = (
    "You are the Bytchat demo assistant. Answer briefly and only from the documents you are given; "
    "say so when they do not cover the question."
)
SAMPLE = Path(__file__).resolve().parent / "demo_material" / "bytchat.md"
# Anyone may talk to a public demo: its owner's quota bounds what that costs a day.
DEMO_DAILY_QUOTA = 1000


def demo_bot_prepare(*, origins: list[str] | None = None) -> Bot:
    """The demo owner (no password: it cannot log in; DEMO_DAILY_QUOTA calls a day), its public bot
    with the sample document, marked as the demo bot. `origins`, when given, become the pages
    allowed to embed it besides Bytchat's own (replacing the previous list); else the list is kept."""
    user_model = get_user_model()
    with transaction.atomic():
        owner = user_model.objects.filter(email=DEMO_OWNER_EMAIL).first()
        if owner is None:
            owner = user_model.objects.create_user(email=DEMO_OWNER_EMAIL, password=None, daily_quota=DEMO_DAILY_QUOTA)
        bot = Bot.objects.filter(owner=owner, name=DEMO_BOT_NAME).first()
        if bot is None:
            bot = bot_create(owner=owner, name=DEMO_BOT_NAME, system_prompt=DEMO_PROMPT)
        bot_public_set(bot=bot, public=True, allowed_origins=origins if origins else None)
        demo_bot_set(bot=bot)
        base = knowledge_base_get_or_create(owner=owner, name=DEMO_BOT_NAME)
        base.bots.add(bot)
        # The same file twice is the same document: running the command again adds nothing.
        document_store(knowledge_base=base, checked=upload_check(filename=SAMPLE.name, data=SAMPLE.read_bytes()))
    return bot
