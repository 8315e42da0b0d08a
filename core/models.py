"""The rows every app shares: the background workers' heartbeats, which /readyz reads."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """A running worker (`manage.py run_worker`) stamps its row every WORKER_HEARTBEAT_SECONDS."""

    worker_id = models.CharField(max_length=64, primary_key=True)
    pid = models.PositiveIntegerField()
    host = models.CharField(max_length=255)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"
