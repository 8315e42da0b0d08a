"""Queues again the documents a dead worker left in `processing` (run at worker start-up)."""

from django.core.management.base import BaseCommand

from knowledge.services import documents_reconcile


class Command(BaseCommand):
    help = "Re-queue documents stuck in processing longer than KNOWLEDGE_STALE_SECONDS."

    def handle(self, *args, **options):
        count = documents_reconcile()
        self.stdout.write(f"{count} stale document(s) re-queued or failed.")
