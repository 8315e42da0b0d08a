"""Queues again documents no worker will finish: a dead worker's, and those whose enqueue was lost (see services)."""

from django.core.management.base import BaseCommand

from knowledge.services import documents_reconcile


class Command(BaseCommand):
    help = (
        "Re-queue documents whose worker stopped sending heartbeats, or that are queued without a pending task, "
        "for longer than KNOWLEDGE_STALE_SECONDS."
    )

    def handle(self, *args, **options):
        count = documents_reconcile()
        self.stdout.write(f"{count} document(s) re-queued or failed.")
