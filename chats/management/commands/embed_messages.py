"""`manage.py embed_messages`: vectors for every searchable message still without one (for instance the
messages stored before an embeddings provider was configured). Runs are embedded in the background anyway."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from bots.llm.embeddings import embeddings_enabled
from bots.llm.errors import ProviderError
from chats.search.embeddings import message_embeddings_pending, message_embeddings_store


class Command(BaseCommand):
    help = "Store embedding vectors for the searchable messages that have none yet."

    def handle(self, *args: Any, **options: Any) -> None:
        if not embeddings_enabled():
            raise CommandError(_("No embeddings provider is configured (EMBEDDINGS_PROVIDER)."))
        pending = message_embeddings_pending()
        stored = 0
        while True:
            try:
                read = message_embeddings_store(limit=settings.EMBEDDINGS_BATCH)
            except ProviderError as exc:
                raise CommandError(f"{exc} ({stored} of {pending} stored)") from exc
            stored += read
            if read:
                self.stdout.write(f"{stored} / {pending}", ending="\r")
            if read < settings.EMBEDDINGS_BATCH:
                break
        self.stdout.write(f"{stored} message vectors stored")
