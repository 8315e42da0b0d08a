"""`manage.py demo_bot [--origin URL ...] [--json]`: prepare the demo bot of /demo/ (see chats.demo)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chats.demo import demo_bot_prepare
from core.errors import DomainError


class Command(BaseCommand):
    help = "Create or update the public demo bot, with a sample document, that /demo/ shows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="A page origin allowed to embed the widget (repeatable), e.g. http://localhost:3000; "
            "given, the origins replace the bot's list. Bytchat's own origin is always allowed.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON line for scripts.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            bot = demo_bot_prepare(origins=options["origin"] or None)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"bot_id": str(bot.pk), "public_key": bot.public_key, "demo_url": "/demo/"}))
            return
        self.stdout.write(self.style.SUCCESS(f"Demo bot ready: {bot.name} (key {bot.public_key})."))
        self.stdout.write("Open /demo/ on this server; embed it elsewhere with:")
        self.stdout.write(
            f'  <script src="<server>/static/bytchat/widget.js" data-bot-key="{bot.public_key}" defer></script>'
        )
