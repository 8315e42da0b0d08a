"""`make cluster` for real: nginx in front of two server processes (scripts/cluster.py, deploy/nginx/) on PostgreSQL
and Redis. Sockets and streams through nginx, a session's frames on both processes, an answer resumed through the
other process after its own was killed, and a rolling restart under load that fails nothing (docs/scaling.md)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from conftest import POSTGRES_CONFIGURED, REDIS_CONFIGURED
from tests.e2e_helpers import (
    bot_with,
    eventually,
    frames_until_end,
    next_frame,
    open_socket,
    session_with,
    sign_up,
    socket_url,
    sse_events,
)
from tests.live_server import ROOT, free_port, log_tracebacks, server_env, upstream_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (POSTGRES_CONFIGURED and REDIS_CONFIGURED),
        reason="make cluster needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)",
    ),
]
# About 2.4 s: still streaming when a restart begins.
SLOW = "fake-tokens-60-40"
SLOW_TEXT = "".join(f"t{i} " for i in range(60))
# About 3 s, all of it less than one of nginx's buffers (4 KiB): a buffering proxy would send it whole at the end.
DRIP = "fake-tokens-20-150"
DRIP_TEXT = "".join(f"t{i} " for i in range(20))
# About 12 s: the answer a killed process was writing.
LONG = "fake-tokens-300-40"
LONG_TEXT = "".join(f"t{i} " for i in range(300))
SETTINGS = {
    # Short leases, so a killed process's run is interrupted within seconds.
    "RUN_LEASE_SECONDS": "3",
    "RUN_LEASE_RENEW_SECONDS": "1",
    # Every client of these tests comes from 127.0.0.1, through nginx (NUM_PROXIES=1).
    "LOGIN_RATE": "1000/min",
    "REGISTER_RATE": "1000/hour",
    "WEB_PROCESSES": "2",
    "DRAIN_SECONDS": "20",
    "CLUSTER_UPSTREAM_HEADER": "1",
    # The rolling restart asks questions for as long as the restart takes: a fast machine passes the
    # free plan's 100 a day per user before it ends (quotas have tests of their own, test_e2e_quotas).
    "QUOTA_DAILY_FREE": "100000",
}


def nginx_installed() -> bool:
    return bool(shutil.which("nginx")) or Path("/usr/sbin/nginx").exists()


class Cluster:
    """scripts/cluster.py, as `make cluster` runs it, on a throwaway DATA_DIR and a free port."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Unix socket paths are short: pytest's tmp paths can be too long.
        self.runtime = Path(f"/tmp/bytchat-cluster-{uuid.uuid4().hex[:8]}")  # noqa: S108
        self.env = server_env(data_dir, {**extra_env, "PORT": str(self.port), "CLUSTER_DIR": str(self.runtime)})
        self.log_path = data_dir / "cluster.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Cluster:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "scripts/cluster.py"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        if not eventually(lambda: "Bytchat on" in self.log() or self.process.poll() is not None, timeout=90):
            self.stop()
            raise RuntimeError(f"the cluster did not start in 90 s: {self.log()[-3000:]}")
        if self.process.poll() is not None:
            raise RuntimeError(f"the cluster exited: {self.log()[-3000:]}")
        assert eventually(lambda: self.answers(), timeout=10), self.log()[-3000:]
        return self

    def answers(self) -> bool:
        try:
            return httpx.get(self.url + "/", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def pids(self) -> dict[str, int]:
        """The server process serving each slot (web-1, web-2)."""
        return {
            path.stem: int(path.read_text())
            for path in sorted(self.runtime.glob("web-*.pid"))
            if path.read_text().strip().isdigit()
        }

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.kill()
        shutil.rmtree(self.runtime, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text()


def slot_of(response_headers) -> str:
    """web-1 or web-2: the server process that answered (nginx's X-Upstream, unix:/…/web-1.sock)."""
    return Path(response_headers["X-Upstream"].split(",")[-1].strip()).stem


@pytest.fixture(scope="module")
def cluster(fake_openai_server, tmp_path_factory):
    if not nginx_installed():
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: scripts/system-packages.sh installs it")
        pytest.skip("nginx is not installed (scripts/system-packages.sh installs it)")
    live = Cluster(tmp_path_factory.mktemp("cluster"), upstream_env(fake_openai_server, **SETTINGS)).start()
    yield live
    live.stop()
    log = live.log()
    assert not log_tracebacks(log), log_tracebacks(log)
    assert "stopped." in log


@pytest.fixture
async def http(cluster):
    async with httpx.AsyncClient(base_url=cluster.url, timeout=20) as client:
        yield client


@pytest.fixture
def upstream(fake_openai_server):
    fake_openai_server.reset()
    return fake_openai_server


# -- helpers ---------------------------------------------------------------------------------------


def text_of(items: list[dict]) -> str:
    text = ""
    for item in items:
        kind, body = (item["type"], item) if "type" in item else (item["event"], item["data"])
        if kind == "chunk":
            text += body["content"]
        elif kind == "snapshot":
            text = body["content"]
    return text


def assert_numbered(seqs: list[int]) -> None:
    assert seqs == list(range(1, len(seqs) + 1)), seqs


# -- through nginx -----------------------------------------------------------------------------------


async def test_a_socket_answers_through_nginx(http, upstream):
    _token, auth = await sign_up(http)
    session = await session_with(http, auth, SLOW)
    # The application built the socket's address from what nginx forwarded: its host, port and scheme.
    assert session["websocket_url"].startswith(f"ws://127.0.0.1:{http.base_url.port}/")
    async with open_socket(session["websocket_url"]) as ws:
        assert (await next_frame(ws))["type"] == "system"
        await ws.send(json.dumps({"type": "message", "content": "hello through nginx"}))
        frames = await frames_until_end(ws)
    assert_numbered([frame["seq"] for frame in frames])
    assert frames[-1]["type"] == "done" and frames[-1]["content"] == text_of(frames) == SLOW_TEXT


async def test_a_stream_through_nginx_sends_its_first_chunk_while_the_model_is_still_writing(http, upstream):
    _token, auth = await sign_up(http)
    bot_id = await bot_with(http, auth, DRIP)
    question = f"stream {uuid.uuid4().hex[:6]}"
    headers = {**auth, "Accept": "text/event-stream"}
    async with http.stream(
        "POST", f"/chat/{bot_id}", json={"query": question}, headers={**headers, "Accept-Encoding": "gzip"}
    ) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        first = await sse_events(lines, 1)
        # Nothing held back by nginx: the model has seconds of answer left to write.
        assert first[0]["event"] == "chunk"
        assert upstream.outcome_of(question) == [""], "first chunk only after the upstream finished: buffered"
        rest = await sse_events(lines)
    assert rest[-1]["event"] == "done" and text_of(first + rest) == DRIP_TEXT


async def test_a_sessions_frames_reach_its_sockets_on_both_server_processes(http, upstream):
    _token, auth = await sign_up(http)
    session = await session_with(http, auth, SLOW)
    sockets: dict[str, object] = {}
    opened = []
    try:
        # nginx takes turns between the processes (round robin): two sockets opened one after the other
        # (their tickets first) land on both. Whichever process a socket lands on, it is the same session.
        for _ in range(4):
            urls = [await socket_url(http, auth, session["session_id"]) for _ in range(2)]
            for url in urls:
                ws = await open_socket(url)
                opened.append(ws)
                assert (await next_frame(ws))["type"] == "system"
                sockets.setdefault(slot_of(ws.response.headers), ws)
            if len(sockets) == 2:
                break
        assert sorted(sockets) == ["web-1", "web-2"]
        speaker, watcher = sockets["web-1"], sockets["web-2"]
        await speaker.send(json.dumps({"type": "message", "content": "heard on both"}))
        spoken = await frames_until_end(speaker)
        watched = await frames_until_end(watcher)
    finally:
        for ws in opened:
            await ws.close()
    run_id = spoken[0]["run_id"]
    for frames in (spoken, watched):
        assert frames[-1]["type"] == "done" and frames[-1]["run_id"] == run_id
        assert text_of(frames) == frames[-1]["content"] == SLOW_TEXT


async def test_an_answer_is_resumed_through_the_other_process_after_its_own_was_killed(http, cluster, upstream):
    token, auth = await sign_up(http)
    bot_id = await bot_with(http, auth, LONG)
    headers = {**auth, "Accept": "text/event-stream"}
    async with http.stream("POST", f"/chat/{bot_id}", json={"query": "a long story"}, headers=headers) as response:
        assert response.status_code == 200
        run_id, writer = response.headers["X-Run-Id"], slot_of(response.headers)
        events = await sse_events(response.aiter_lines(), 5)
        await asyncio.sleep(1.5)  # past the first checkpoint of its text (RUN_CHECKPOINT_SECONDS)
        doomed = cluster.pids()[writer]
        os.kill(doomed, signal.SIGKILL)  # nothing stored, nothing given back
    # Whichever process nginx would pick (it takes turns), a request is served: the dead one is skipped.
    for _ in range(2):
        assert (await http.get(f"/runs/{run_id}", headers=auth)).status_code == 200
    position = {"Last-Event-ID": events[-1]["id"]}
    async with http.stream("GET", f"/runs/{run_id}/events", params={"token": token}, headers=position) as response:
        assert response.status_code == 200
        # The killed process's slot refuses connections until its replacement is up: nginx went to the other.
        assert slot_of(response.headers) != writer
        events += await sse_events(response.aiter_lines())
    assert_numbered([event["data"]["seq"] for event in events])
    end = events[-1]
    assert end["event"] == "error" and end["data"]["code"] == "interrupted"
    kept = end["data"]["partial"]
    assert kept and LONG_TEXT.startswith(kept) and LONG_TEXT.startswith(text_of(events))
    # The supervisor replaced the killed process; both slots serve again.
    assert eventually(lambda: cluster.pids().get(writer) not in (None, doomed), timeout=10), cluster.log()[-2000:]
    assert f"{writer} exited (status -9)" in cluster.log()
    served = set()
    for _ in range(30):
        served.add(slot_of((await http.get("/")).headers))
        if len(served) == 2:
            break
        await asyncio.sleep(0.3)
    assert served == {"web-1", "web-2"}


# -- a rolling restart under load ------------------------------------------------------------------


async def test_a_rolling_restart_under_a_stream_of_requests_fails_none_and_loses_no_answer(http, cluster, upstream):
    users = [await sign_up(http) for _ in range(4)]
    echo_bots = [await bot_with(http, auth, "fake-echo") for _token, auth in users]
    slow_bot = await bot_with(http, users[0][1], SLOW)
    session = await session_with(http, users[1][1], SLOW)
    before = cluster.pids()
    restarted = asyncio.Event()
    failures: list[str] = []
    done = {"turns": 0, "gets": 0, "streams": 0, "socket answers": 0, "socket reconnects": 0}

    async def turns(index: int) -> None:
        """Questions (POST, never retried by nginx) and reads, one after the other."""
        _token, auth = users[index]
        async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as client:
            while not restarted.is_set():
                question = f"q{index}-{done['turns']}"
                answer = await client.post(f"/chat/{echo_bots[index]}", json={"query": question}, headers=auth)
                if answer.status_code != 200 or answer.text != f"Echo: {question}":
                    failures.append(f"turn {answer.status_code} {answer.text[:200]}")
                done["turns"] += 1
                listed = await client.get("/chat/sessions", headers=auth)
                if listed.status_code != 200:
                    failures.append(f"GET /chat/sessions {listed.status_code} {listed.text[:200]}")
                done["gets"] += 1

    async def streams() -> None:
        """Answers of a few seconds over SSE: a draining process finishes the one it is sending."""
        _token, auth = users[0]
        async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as client:
            while not restarted.is_set():
                headers = {**auth, "Accept": "text/event-stream"}
                async with client.stream("POST", f"/chat/{slow_bot}", json={"query": "go"}, headers=headers) as sse:
                    events = await sse_events(sse.aiter_lines()) if sse.status_code == 200 else []
                if sse.status_code != 200 or not events or events[-1]["event"] != "done":
                    failures.append(f"stream {sse.status_code} {events[-1:] if events else ''}")
                elif text_of(events) != SLOW_TEXT:
                    failures.append("stream text")
                done["streams"] += 1

    async def socket_answers() -> None:
        """A socket's answers: closed by a draining process (1012), it reconnects and resumes where it was."""
        _token, auth = users[1]
        session_id = session["session_id"]
        while not restarted.is_set():
            frames: list[dict] = []
            asked = False
            while not frames or frames[-1]["type"] not in ("done", "error"):
                try:
                    async with open_socket(await socket_url(http, auth, session_id)) as ws:
                        greeting = await next_frame(ws)
                        if not asked:
                            await ws.send(json.dumps({"type": "message", "content": "go on"}))
                            asked = True
                        elif frames:
                            resume = {"type": "resume", "run_id": frames[0]["run_id"], "after": frames[-1]["seq"]}
                            await ws.send(json.dumps(resume))
                        elif greeting.get("run_id"):
                            await ws.send(json.dumps({"type": "resume", "run_id": greeting["run_id"], "after": 0}))
                        while not frames or frames[-1]["type"] not in ("done", "error"):
                            frames.append(await next_frame(ws))
                except ConnectionClosed as closed:
                    if closed.rcvd is None or closed.rcvd.code != 1012:
                        failures.append(f"socket closed {closed!r}")
                        return
                    done["socket reconnects"] += 1
            if frames[-1]["type"] != "done" or text_of(frames) != SLOW_TEXT:
                failures.append(f"socket answer {frames[-1]}")
            assert_numbered([frame["seq"] for frame in frames])
            done["socket answers"] += 1

    load = [asyncio.create_task(turns(index)) for index in range(4)]
    load += [asyncio.create_task(streams()), asyncio.create_task(socket_answers())]
    await asyncio.sleep(2)
    os.kill(cluster.process.pid, signal.SIGHUP)
    finished = await asyncio.to_thread(eventually, lambda: "rolling restart done" in cluster.log(), 120)
    await asyncio.sleep(1)  # and a little more load on the new processes
    restarted.set()
    await asyncio.wait_for(asyncio.gather(*load), 60)

    assert finished, cluster.log()[-3000:]
    after = cluster.pids()
    assert set(after) == set(before) and not set(after.values()) & set(before.values())
    assert not failures, (failures, done)
    assert done["turns"] >= 20 and done["streams"] >= 2 and done["socket answers"] >= 2, done
    # No request failed at nginx either (a 502 would be a request it could not place).
    statuses = [line.split('" ')[1].split()[0] for line in (cluster.runtime / "access.log").read_text().splitlines()]
    assert not [status for status in statuses if status.startswith("5")]
