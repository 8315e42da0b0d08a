"""`manage.py run_worker`: django-tasks-db's `db_worker` (same flags) with a heartbeat that /readyz reads."""

from __future__ import annotations

import os
from typing import Any

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from core.worker_heartbeat import heartbeat_start


class Command(DbWorkerCommand):
    help = "Run the database background worker, stamping a heartbeat every WORKER_HEARTBEAT_SECONDS (/readyz)."

    def handle(self, *args: Any, **options: Any) -> None:
        # With --reload the parent process only watches files and its child runs the worker; a --batch run
        # ends once the queue is empty, so it is not a worker /readyz should count on.
        watcher_only = options["reload"] and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        if not options["batch"] and not watcher_only:
            heartbeat_start(worker_id=options["worker_id"])
        super().handle(*args, **options)
