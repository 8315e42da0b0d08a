"""`/healthz` and `/readyz` (docs/reliability.md L1): the process answers; the database, Redis when configured and a
worker's heartbeat are there, each check bounded in time, and a failure is named without its technical details."""

import datetime
import json
import socket

import pytest
from django.utils import timezone

from core.models import WorkerHeartbeat
from core.worker_heartbeat import HeartbeatThread, heartbeat_latest, heartbeat_prune, heartbeat_stamp
from tests.e2e_helpers import eventually
from tests.live_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_tasks(settings):
    """The production task backend, whose tasks wait in the database for a worker."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def beat(age_seconds: float = 0) -> None:
    heartbeat_stamp(worker_id="w1", pid=1, host="worker-host")
    WorkerHeartbeat.objects.filter(worker_id="w1").update(
        seen_at=timezone.now() - datetime.timedelta(seconds=age_seconds)
    )


def assert_not_ready(response, *words: str) -> dict:
    assert response.status_code == 503, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "not_ready" and body["code"] == "not_ready"
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


def test_healthz_answers_ok_without_a_query(anon, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = anon.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_healthz_answers_ok_even_with_redis_unreachable(anon, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert anon.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_with_the_database_and_a_fresh_worker_heartbeat(anon, database_tasks):
    beat(age_seconds=3)
    response = anon.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready" and {"database", "worker"} <= set(body["checks"])  # and redis, when set
    assert body["checks"]["database"]["ok"] is True and body["checks"]["database"]["ms"] >= 0
    assert body["checks"]["worker"]["ok"] is True and 3 <= body["checks"]["worker"]["age_seconds"] < 60


def test_readyz_is_503_naming_the_worker_when_none_ever_reported(anon, database_tasks, caplog):
    body = assert_not_ready(anon.get("/readyz"), "worker")
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["worker"] == {"ok": False, "age_seconds": None, "error": "none"}
    # Logged once as a warning naming the check, not as an ERROR for every probe.
    failures = [r for r in caplog.records if r.name == "core.api.health"]
    assert [(r.levelname, r.failed_checks) for r in failures] == [("WARNING", ["worker"])]
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_readyz_is_503_naming_the_worker_when_its_heartbeat_is_stale(anon, database_tasks, settings):
    beat(age_seconds=settings.WORKER_STALE_SECONDS + 5)
    body = assert_not_ready(anon.get("/readyz"), "worker", str(int(settings.WORKER_STALE_SECONDS)))
    assert body["checks"]["worker"]["ok"] is False and body["checks"]["worker"]["error"] == "stale"
    assert body["checks"]["worker"]["age_seconds"] >= settings.WORKER_STALE_SECONDS + 5


def test_readyz_needs_no_worker_where_tasks_do_not_wait_for_one(anon, settings, database_tasks):
    settings.READYZ_WORKER = False
    body = anon.get("/readyz").json()
    assert body["status"] == "ready" and "worker" not in body["checks"]
    settings.READYZ_WORKER = True
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    body = anon.get("/readyz").json()
    assert body["status"] == "ready" and "worker" not in body["checks"]


def test_readyz_is_503_naming_redis_when_it_refuses_and_says_nothing_of_its_address(anon, settings, database_tasks):
    beat()
    port = free_port()  # nothing listens there
    settings.REDIS_URL = f"redis://:hunter2@127.0.0.1:{port}/3"
    body = assert_not_ready(anon.get("/readyz"), "Redis")
    assert body["checks"]["redis"] == {"ok": False, "error": "unavailable"}
    assert body["checks"]["database"]["ok"] is True and body["checks"]["worker"]["ok"] is True
    text = json.dumps(body)
    assert str(port) not in text and "hunter2" not in text and "127.0.0.1" not in text and "refused" not in text


@pytest.fixture
def hung_redis():
    """A port that accepts connections (the kernel's backlog) and never answers: a hung Redis."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def test_readyz_answers_503_naming_redis_when_it_hangs(anon, settings, hung_redis):
    settings.REDIS_URL = hung_redis
    settings.READYZ_TIMEOUT_SECONDS = 0.5
    body = assert_not_ready(anon.get("/readyz"), "Redis")
    assert body["checks"]["redis"] == {"ok": False, "error": "timeout"}
    assert body["checks"]["database"]["ok"] is True


def test_a_working_redis_is_ready(anon, settings, tmp_path):
    from tests.redis_server import RedisServer

    try:
        server = RedisServer(tmp_path).start()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    try:
        settings.REDIS_URL = server.url(11)
        body = anon.get("/readyz").json()
    finally:
        server.stop()
    assert body["status"] == "ready" and body["checks"]["redis"]["ok"] is True


# -- the worker's heartbeat -----------------------------------------------------------------------------------------


def test_the_heartbeat_thread_stamps_its_worker_row_until_stopped(settings):
    settings.WORKER_HEARTBEAT_SECONDS = 0.05
    rows = WorkerHeartbeat.objects.filter(worker_id="worker-under-test")
    thread = HeartbeatThread("worker-under-test")
    thread.start()
    try:
        assert eventually(rows.exists, timeout=10)
        first = rows.get().seen_at
        assert eventually(lambda: rows.get().seen_at > first, timeout=10)
        assert rows.get().started_at <= first
    finally:
        thread.stop()
        thread.join(5)
    assert not thread.is_alive()
    assert heartbeat_latest() == WorkerHeartbeat.objects.get(worker_id="worker-under-test").seen_at


def test_rows_of_workers_long_gone_are_pruned_and_live_ones_kept(settings):
    heartbeat_stamp(worker_id="alive", pid=1, host="h")
    heartbeat_stamp(worker_id="gone", pid=2, host="h")
    long_ago = timezone.now() - datetime.timedelta(seconds=settings.WORKER_STALE_SECONDS * 11)
    WorkerHeartbeat.objects.filter(worker_id="gone").update(seen_at=long_ago)
    assert heartbeat_prune() == 1
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["alive"]
