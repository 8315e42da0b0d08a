"""`manage.py export_feedback [--output FILE] [--bot ID] [--rating up|down] [--since DATE]`: feedback as JSON Lines."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from chats.feedback.selectors import feedback_export_rows, feedback_list
from chats.models import Rating


class Command(BaseCommand):
    help = (
        "Write every feedback as one JSON object a line (docs/feedback.md): the question, the rated answer "
        "and, where the question has a regenerated answer, the preferred and rejected pair."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="A file to write (default: standard output).")
        parser.add_argument("--bot", type=uuid.UUID, help="Only the feedback on this bot's answers.")
        parser.add_argument("--rating", choices=Rating.values, help="Only this rating.")
        parser.add_argument("--since", help="Only feedback given on or after this date (YYYY-MM-DD).")

    def handle(self, *args: Any, **options: Any) -> None:
        since = None
        if options["since"]:
            try:
                since = timezone.make_aware(datetime.fromisoformat(options["since"]))
            except ValueError as exc:
                raise CommandError(f"--since must be a date such as 2026-01-31: {exc}") from exc
        feedbacks = feedback_list(bot_id=options["bot"], rating=options["rating"], since=since)
        rows = feedback_export_rows(feedbacks=feedbacks)
        if not options["output"]:
            for row in rows:
                self.stdout.write(json.dumps(row, ensure_ascii=False))
            return
        count = 0
        with Path(options["output"]).open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        self.stderr.write(f"{count} feedback rows written to {options['output']}.")
