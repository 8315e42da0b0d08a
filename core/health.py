"""What /healthz and /readyz answer: the process is up; the database, Redis (when configured) and a worker's
heartbeat are there (docs/reliability.md L1).

Each check runs in a daemon thread of its own and is waited for at most READYZ_TIMEOUT_SECONDS, so a hung
database or Redis makes the probe fail in time instead of hanging it: the hung call keeps its thread, not the
request's, and a probe that finds the same check still hung waits on it again instead of starting another (at
most one thread per check, and none that holds up the process's exit). A check reports `ok` and a figure
(`ms`, `age_seconds`), or why it failed as a fixed word (`timeout`, `unavailable`, `none`, `stale`): never a
connection string or an exception's text.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.connections import database_connection_release
from core.worker_heartbeat import heartbeat_latest

Check = dict[str, Any]

# The checks still running, by what they check: a later probe waits on one of these rather than start another.
_running: dict[tuple[str, ...], concurrent.futures.Future[Check]] = {}
_running_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, Check]
    failures: list[str] = field(default_factory=list)  # a sentence each, in the request's language

    @property
    def ready(self) -> bool:
        return not self.failures


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def database_check() -> Check:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        database_connection_release()  # a pooled connection goes back; none is held between probes
    return {"ok": True, "ms": _ms_since(started)}


def worker_check() -> Check:
    """A worker stamped its heartbeat (core/worker_heartbeat.py) within WORKER_STALE_SECONDS."""
    try:
        latest = heartbeat_latest()
    finally:
        database_connection_release()
    if latest is None:
        return {"ok": False, "age_seconds": None, "error": "none"}
    age = max(0.0, (timezone.now() - latest).total_seconds())
    ok = age <= settings.WORKER_STALE_SECONDS
    return {"ok": ok, "age_seconds": round(age, 1)} | ({} if ok else {"error": "stale"})


@functools.cache
def _redis_client(url: str, timeout: float) -> redis.Redis:
    # No retries: a probe asks once, and its own deadline bounds the wait.
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def redis_check() -> Check:
    started = time.perf_counter()
    _redis_client(settings.REDIS_URL, settings.READYZ_TIMEOUT_SECONDS).ping()
    return {"ok": True, "ms": _ms_since(started)}


def worker_expected() -> bool:
    """A worker is needed where tasks wait in the database for one (not with the inline test backend)."""
    backend = settings.TASKS.get("default", {}).get("BACKEND", "")
    return settings.READYZ_WORKER and backend == "django_tasks_db.DatabaseBackend"


def _started(key: tuple[str, ...], check: Callable[[], Check]) -> concurrent.futures.Future[Check]:
    with _running_lock:
        running = _running.get(key)
        if running is not None and not running.done():
            return running
        future: concurrent.futures.Future[Check] = concurrent.futures.Future()
        _running[key] = future

    def run() -> None:
        try:
            future.set_result(check())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=f"readyz-{key[0]}", daemon=True).start()
    return future


def _run_checks(checks: dict[tuple[str, ...], Callable[[], Check]], deadline: float) -> dict[str, Check]:
    futures = {key: _started(key, check) for key, check in checks.items()}
    results: dict[str, Check] = {}
    for (name, *_target), future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except (concurrent.futures.TimeoutError, redis.TimeoutError):
            results[name] = {"ok": False, "error": "timeout"}
        except Exception:  # what failed is said by the check's name, never by the exception's text
            results[name] = {"ok": False, "error": "unavailable"}
    return results


def readiness() -> Readiness:
    """Every check at once, each bounded by READYZ_TIMEOUT_SECONDS from now."""
    checks: dict[tuple[str, ...], Callable[[], Check]] = {("database",): database_check}
    if settings.REDIS_URL:
        checks[("redis", settings.REDIS_URL)] = redis_check
    if worker_expected():
        checks[("worker",)] = worker_check
    results = _run_checks(checks, time.monotonic() + settings.READYZ_TIMEOUT_SECONDS)
    failures = []
    if not results["database"]["ok"]:
        failures.append(_("The database did not answer."))
    if "redis" in results and not results["redis"]["ok"]:
        failures.append(_("Redis did not answer."))
    worker = results.get("worker")
    # A worker check that could not read the database is the database's failure, said once above.
    if worker is not None and not worker["ok"] and "age_seconds" in worker:
        failures.append(
            _("No background worker has reported in the last %(seconds)d seconds.")
            % {"seconds": settings.WORKER_STALE_SECONDS}
        )
    elif worker is not None and not worker["ok"] and results["database"]["ok"]:
        failures.append(_("The background worker's heartbeat could not be read."))
    return Readiness(results, failures)
