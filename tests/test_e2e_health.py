"""`/healthz` and `/readyz` on a real server (docs/reliability.md L1): ready once its worker (`run_worker`, as
`make run` starts it) beats, not ready once the worker is killed; with Redis unreachable, not ready naming Redis
while `/healthz` still answers."""

import signal
import subprocess
import sys

import httpx
import pytest

from tests.e2e_helpers import eventually
from tests.live_server import ROOT, LiveServer, free_port

pytestmark = pytest.mark.e2e
# A beat a second and gone after three: the test waits seconds, not the minute of the defaults.
HEARTBEAT = {"WORKER_HEARTBEAT_SECONDS": "1", "WORKER_STALE_SECONDS": "3"}


@pytest.fixture
def server(tmp_path):
    live = LiveServer(tmp_path, HEARTBEAT).start()
    yield live
    live.stop()


def readyz(server: LiveServer) -> httpx.Response:
    return httpx.get(server.url + "/readyz", timeout=15)


def test_readyz_follows_the_worker_heartbeat_from_none_to_fresh_to_stale(server):
    body = readyz(server).json()
    assert body["status"] == "not_ready" and "worker" in body["detail"]
    # "none" on a fresh database; "stale" where earlier live servers' killed workers left their rows (the
    # PostgreSQL pass shares one database between them). tests/test_health.py checks "none" itself.
    assert body["checks"]["worker"]["error"] in ("none", "stale") and body["checks"]["database"]["ok"] is True
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--interval", "0.5", "--no-startup-delay"],
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert eventually(lambda: readyz(server).status_code == 200, timeout=60), readyz(server).text
        ready = readyz(server).json()
        assert ready["status"] == "ready" and ready["checks"]["worker"]["ok"] is True
    finally:
        worker.send_signal(signal.SIGKILL)  # no goodbye: only the heartbeat's age tells
        worker.wait(10)
    assert eventually(lambda: readyz(server).status_code == 503, timeout=30)
    stale = readyz(server).json()
    assert stale["checks"]["worker"]["error"] == "stale" and "worker" in stale["detail"]
    assert httpx.get(server.url + "/healthz", timeout=15).json() == {"status": "ok"}


def test_with_redis_unreachable_readyz_is_503_naming_redis_and_healthz_is_200(tmp_path):
    port = free_port()  # nothing listens there
    live = LiveServer(tmp_path, {**HEARTBEAT, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}, with_worker=True).start()
    try:
        assert eventually(lambda: readyz(live).json()["checks"]["worker"]["ok"], timeout=60), readyz(live).text
        response = readyz(live)
        health = httpx.get(live.url + "/healthz", timeout=15)
    finally:
        live.stop()
    assert response.status_code == 503
    body = response.json()
    assert "Redis" in body["detail"] and body["checks"]["redis"] == {"ok": False, "error": "unavailable"}
    assert body["checks"]["database"]["ok"] is True
    assert str(port) not in response.text
    assert health.status_code == 200 and health.json() == {"status": "ok"}
