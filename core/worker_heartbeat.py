"""The worker's heartbeat: a row per worker, stamped from a thread beside `db_worker`'s loop (run_worker).

django-tasks-db's worker records nothing while it waits for tasks, so without this nothing tells a dead worker
from an idle one. /readyz reads the freshest stamp (core/health.py).
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Max
from django.utils import timezone

from core.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

# Rows of workers unseen for this many stale periods are deleted (a restarted worker gets a new id each time).
PRUNE_AFTER_STALE_PERIODS = 10


def heartbeat_stamp(*, worker_id: str, pid: int, host: str) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"pid": pid, "host": host[:255], "seen_at": now},
        create_defaults={"pid": pid, "host": host[:255], "seen_at": now, "started_at": now},
    )


def heartbeat_prune() -> int:
    horizon = timezone.now() - datetime.timedelta(seconds=settings.WORKER_STALE_SECONDS * PRUNE_AFTER_STALE_PERIODS)
    deleted, _ = WorkerHeartbeat.objects.filter(seen_at__lt=horizon).delete()
    return deleted


def heartbeat_latest() -> datetime.datetime | None:
    """When the freshest worker last stamped its row (None: no worker ever did, or all were pruned)."""
    return WorkerHeartbeat.objects.aggregate(latest=Max("seen_at"))["latest"]


class HeartbeatThread(threading.Thread):
    """Stamps this worker's row every WORKER_HEARTBEAT_SECONDS on a connection of its own, closed after each
    beat (so it holds none between them). A daemon: it dies with the worker's loop."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.worker_id = worker_id
        self.finished = threading.Event()

    def run(self) -> None:
        pid, host = os.getpid(), socket.gethostname()
        while not self.finished.is_set():
            try:
                heartbeat_stamp(worker_id=self.worker_id, pid=pid, host=host)
                heartbeat_prune()
            except DatabaseError as exc:
                # The class only: a driver's message can name the database's host and user.
                logger.warning("worker heartbeat not stored: %s", type(exc).__name__)
            finally:
                connection.close()
            self.finished.wait(settings.WORKER_HEARTBEAT_SECONDS)

    def stop(self) -> None:
        self.finished.set()


def heartbeat_start(*, worker_id: str) -> HeartbeatThread:
    thread = HeartbeatThread(worker_id)
    thread.start()
    return thread
