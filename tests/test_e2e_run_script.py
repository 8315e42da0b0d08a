"""scripts/run.sh (what `make run` starts) supervises its processes: a worker that dies is restarted, the web
server stays up; TERM, or the web server dying, stops everything."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live_server import ROOT, free_port, new_user_auth, server_env

pytestmark = pytest.mark.e2e


def group_processes(pgid: int) -> dict[int, str]:
    """The live processes of a process group: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z" or os.getpgid(int(entry.name)) != pgid:
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


def worker_pid(pgid: int) -> int | None:
    workers = [pid for pid, cmd in group_processes(pgid).items() if "run_worker" in cmd]
    return workers[0] if len(workers) == 1 else None


def answers(url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(url + "/", timeout=5).status_code == 200
    return False


@pytest.fixture
def run_sh(tmp_path):
    port = free_port()
    env = server_env(tmp_path, {"HOST": "127.0.0.1", "PORT": str(port), "LLM_LOCAL_WORD_DELAY": "0"})
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        # Its own process group, so that the test can find and, at the end, stop every process it started.
        process = subprocess.Popen(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.url = f"http://127.0.0.1:{port}"
    process.log = log_path
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def test_a_killed_worker_is_restarted_and_the_server_keeps_answering_until_term(run_sh):
    wait_for(lambda: answers(run_sh.url), 90, "the server did not answer")
    first = wait_for(lambda: worker_pid(run_sh.pid), 90, "no worker started")

    os.kill(first, signal.SIGKILL)

    assert answers(run_sh.url)
    second = wait_for(lambda: (pid := worker_pid(run_sh.pid)) and pid != first and pid, 90, "no new worker")
    assert run_sh.poll() is None
    assert "the worker exited (status 137); restarting it" in run_sh.log.read_text()

    # The new worker ingests: a document uploaded after the crash becomes ready.
    with httpx.Client(base_url=run_sh.url, timeout=30) as http:
        auth = new_user_auth(http)
        bot = http.post("/bots/", json={"name": "Survivor"}, headers=auth).json()
        upload = http.post(
            f"/bots/{bot['id']}/train",
            files={"file": ("after.txt", b"The worker came back after the crash and read this sentence.")},
            headers=auth,
        )
        assert upload.status_code == 202
        document_url = f"/bots/{bot['id']}/documents/{upload.json()['id']}"
        status = wait_for(
            lambda: (s := http.get(document_url, headers=auth).json()["status"]) in ("ready", "failed") and s,
            90,
            "the document was not ingested",
        )
    assert status == "ready"
    assert worker_pid(run_sh.pid) == second

    # TERM to run.sh alone (as a service manager sends it) stops every process it started.
    run_sh.send_signal(signal.SIGTERM)
    run_sh.wait(60)
    wait_for(lambda: not group_processes(run_sh.pid), 30, "processes were left running")


def test_when_the_web_server_dies_everything_stops(run_sh):
    wait_for(lambda: answers(run_sh.url), 90, "the server did not answer")
    wait_for(lambda: worker_pid(run_sh.pid), 90, "no worker started")
    server = next(pid for pid, cmd in group_processes(run_sh.pid).items() if "uvicorn" in cmd)

    os.kill(server, signal.SIGKILL)

    assert run_sh.wait(60) != 0
    wait_for(lambda: not group_processes(run_sh.pid), 30, "processes were left running")
    assert "the web server exited" in run_sh.log.read_text()
