"""`manage.py embed_messages`: vectors for every searchable message still without one (for instance the
messages stored before an embeddings provider was configured). Runs are embedded in the background anyway."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from bots.llm.embeddings import embeddings_enabled
from chats.search.embeddings import message_embeddings_drain, message_embeddings_pending


class Command(BaseCommand):
    help = "Store embedding vectors for the searchable messages that have none yet."

    def handle(self, *args: Any, **options: Any) -> None:
        if not embeddings_enabled():
            raise CommandError(_("No embeddings provider is configured (EMBEDDINGS_PROVIDER)."))
        pending = message_embeddings_pending()
        stored, failure = message_embeddings_drain(
            progress=lambda count: self.stdout.write(f"{count} / {pending}", ending="\r")
        )
        if failure is not None:
            raise CommandError(f"{failure} ({stored} of {pending} stored)")
        self.stdout.write(f"{stored} message vectors stored")
