"""Durable runs through real servers: an answer outlives the client that asked for it, is resumed
exactly where a client dropped (WebSocket, SSE, across server processes), stops on request, and is
marked `interrupted` when its server process is killed (docs/runs.md, docs/reliability.md E12)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import POSTGRES_CONFIGURED, REDIS_CONFIGURED
from tests.e2e_helpers import bot_with, frames_until_end, next_frame, open_socket, session_with, sign_up, socket_url
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.e2e
# 120 tokens 40 ms apart (about 5 s): still answering when a client drops after a few events.
SLOW = "fake-tokens-120-40"
SLOW_TEXT = "".join(f"t{i} " for i in range(120))
# About 12 s: the answer a killed process was writing.
LONG = "fake-tokens-300-40"
LONG_TEXT = "".join(f"t{i} " for i in range(300))
# Short leases, so a killed process's runs and slots lapse in seconds; one answer and two sockets per
# user, so a slot the killed process held and never gave back would refuse the user.
SERVER_SETTINGS = {
    "RUN_LEASE_SECONDS": "3",
    "RUN_LEASE_RENEW_SECONDS": "1",
    "CHAT_PARALLEL_STREAMS": "1",
    "WS_PER_USER": "2",
}


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("runs"), upstream_env(fake_openai_server, **SERVER_SETTINGS)).start()
    yield live
    live.stop()
    assert not live.tracebacks(), live.tracebacks()


def server_beside(server: LiveServer, fake_openai_server, data_dir: Path, **settings: str) -> LiveServer:
    """Another server process on the same database and Redis as `server` (and its secret key, so
    either accepts the other's access tokens), not started."""
    live = LiveServer(data_dir, upstream_env(fake_openai_server, **{**SERVER_SETTINGS, **settings}))
    live.env["SECRET_KEY"] = server.env["SECRET_KEY"]
    if not POSTGRES_CONFIGURED:
        live.env["DATABASE_URL"] = f"sqlite:///{Path(server.env['DATA_DIR']) / 'db.sqlite3'}"
    return live


@pytest.fixture
def second_server(server, fake_openai_server, tmp_path):
    live = server_beside(server, fake_openai_server, tmp_path).start()
    yield live
    live.stop()
    assert not live.tracebacks(), live.tracebacks()


@pytest.fixture
async def http(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        yield client


@pytest.fixture
def upstream(fake_openai_server):
    fake_openai_server.reset()
    return fake_openai_server


# -- helpers ---------------------------------------------------------------------------------------


class EventStream:
    """Server-Sent Events of one response as they arrive, {"id", "event", "data"}; heartbeats skipped."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def take(self, count: int | None = None) -> list[dict]:
        """The next `count` events (all of them, up to the run's `done` or `error`, when None)."""
        events: list[dict] = []
        fields: dict[str, str] = {}
        async with asyncio.timeout(15):
            while count is None or len(events) < count:
                line = await anext(self.lines)
                if line.startswith(":"):
                    continue
                if line:
                    name, _colon, value = line.partition(": ")
                    fields[name] = value
                    continue
                event, fields = fields, {}
                if "data" in event:
                    events.append({"id": event.get("id"), "event": event["event"], "data": json.loads(event["data"])})
                    if event["event"] in ("done", "error"):
                        break
        return events


async def take(response: httpx.Response, count: int | None = None) -> list[dict]:
    return await EventStream(response).take(count)


async def stored_answer(http: httpx.AsyncClient, auth: dict[str, str], chat_id: str) -> dict:
    history = (await http.get(f"/chat/sessions/{chat_id}/history", headers=auth)).json()["history"]
    assert history[-1]["role"] == "assistant", history
    return history[-1]


async def run_state(http: httpx.AsyncClient, auth: dict[str, str], run_id: str) -> dict:
    response = await http.get(f"/runs/{run_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def run_until_ended(http: httpx.AsyncClient, auth: dict[str, str], run_id: str, seconds: float = 15) -> dict:
    deadline = time.monotonic() + seconds
    while (state := await run_state(http, auth, run_id))["status"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return state


def chunk_text(events: list[dict]) -> str:
    """What a client shows: the chunks' text, a snapshot replacing what came before it."""
    text = ""
    for event in events:
        kind, body = (event["type"], event) if "type" in event else (event["event"], event["data"])
        if kind == "chunk":
            text += body["content"]
        elif kind == "snapshot":
            text = body["content"]
    return text


def assert_numbered(seqs: list[int]) -> None:
    """Every event once and in order: 1, 2, 3, ... with no gap or repeat."""
    assert seqs == list(range(1, len(seqs) + 1)), seqs


# -- 1. WebSocket -------------------------------------------------------------------------------------


async def test_a_socket_dropped_mid_answer_resumes_the_same_run_with_no_gap_or_repeat(http, upstream):
    _token, auth = await sign_up(http)
    session = await session_with(http, auth, SLOW)
    async with open_socket(session["websocket_url"]) as ws:
        assert (await next_frame(ws))["type"] == "system"
        await ws.send(json.dumps({"type": "message", "content": "tell me a long story"}))
        before = [await next_frame(ws) for _ in range(5)]
    run_id = before[0]["run_id"]
    assert [frame["type"] for frame in before] == ["chunk"] * 5
    async with open_socket(await socket_url(http, auth, session["session_id"])) as ws:
        greeting = await next_frame(ws)
        assert greeting["type"] == "system" and greeting["run_id"] == run_id  # the answer runs on without its client
        await ws.send(json.dumps({"type": "resume", "run_id": run_id, "after": before[-1]["seq"]}))
        after = await frames_until_end(ws)
    frames = before + after
    assert_numbered([frame["seq"] for frame in frames])
    assert {frame["run_id"] for frame in frames} == {run_id}
    assert [frame["type"] for frame in frames[:-1]] == ["chunk"] * (len(frames) - 1)
    assert frames[-1]["type"] == "done" and frames[-1]["content"] == SLOW_TEXT
    stored = await stored_answer(http, auth, session["session_id"])
    assert stored["status"] == "complete"
    assert chunk_text(frames) == stored["content"] == SLOW_TEXT
    assert len(upstream.requests) == 1
    assert await asyncio.to_thread(upstream.wait_for, lambda: upstream.completed == 1)


# -- 2. Server-Sent Events ----------------------------------------------------------------------------


async def test_an_event_source_resumes_with_last_event_id_on_004_and_on_the_runs_events(http, upstream):
    token, auth = await sign_up(http)
    bot_id = await bot_with(http, auth, SLOW)
    chat_id = (await http.post("/chats/create", json={"name": "Resumed", "bot_id": bot_id}, headers=auth)).json()["id"]
    question = {"chat_id": chat_id, "role": "Human", "message": "a long answer please"}
    assert (await http.post("/conversations/create", json=question, headers=auth)).status_code == 201
    inference = f"/conversations/inference/{chat_id}"
    with_token = {"token": token}

    async with http.stream("GET", inference, params=with_token) as response:
        assert response.status_code == 200
        run_id = response.headers["X-Run-Id"]
        events = await take(response, 3)
    # EventSource reconnects to the same URL, sending back the last id it saw.
    resume = {"Last-Event-ID": events[-1]["id"]}
    async with http.stream("GET", inference, params=with_token, headers=resume) as response:
        assert response.status_code == 200 and response.headers["X-Run-Id"] == run_id
        events += await take(response, 3)
    runs_events = f"/runs/{run_id}/events"
    async with http.stream("GET", runs_events, headers={**auth, "Last-Event-ID": events[-1]["id"]}) as response:
        assert response.status_code == 200
        events += await take(response, 3)
    async with http.stream("GET", runs_events, params={"after": events[-1]["data"]["seq"]}, headers=auth) as response:
        assert response.status_code == 200
        events += await take(response)

    assert_numbered([event["data"]["seq"] for event in events])
    assert [event["id"] for event in events] == [f"{run_id}:{event['data']['seq']}" for event in events]
    assert [event["event"] for event in events] == ["chunk"] * (len(events) - 1) + ["done"]
    stored = await stored_answer(http, auth, chat_id)
    assert stored["status"] == "complete"
    assert chunk_text(events) == stored["content"] == events[-1]["data"]["content"] == SLOW_TEXT
    assert len(upstream.requests) == 1  # every reconnection read the same run: one answer, one model call

    # A reader that has the end is told there is nothing left (EventSource stops reconnecting).
    last = events[-1]["id"]
    ended = await http.get(inference, params=with_token, headers={"Last-Event-ID": last})
    assert ended.status_code == 204 and ended.headers["X-Run-Id"] == run_id
    assert (await http.get(runs_events, headers={**auth, "Last-Event-ID": last})).status_code == 204
    assert (await http.get(runs_events, params={"after": events[-1]["data"]["seq"]}, headers=auth)).status_code == 204
    assert len(upstream.requests) == 1


# -- 3. 001: the client leaves, the answer goes on ---------------------------------------------------


async def test_a_001_answer_whose_client_left_runs_to_its_end_checkpointed_on_the_way(http, upstream):
    _token, auth = await sign_up(http)
    bot_id = await bot_with(http, auth, SLOW)
    headers = {**auth, "Accept": "text/event-stream"}
    async with http.stream("POST", f"/chat/{bot_id}", json={"query": "a long answer"}, headers=headers) as response:
        assert response.status_code == 200
        run_id, chat_id = response.headers["X-Run-Id"], response.headers["X-Chat-Id"]
        seen = await take(response, 2)
    assert [event["event"] for event in seen] == ["chunk", "chunk"]

    checkpoints = []
    deadline = time.monotonic() + 15
    while (state := await run_state(http, auth, run_id))["status"] == "running" and time.monotonic() < deadline:
        if not checkpoints or checkpoints[-1] != state["content"]:
            checkpoints.append(state["content"])
        await asyncio.sleep(0.1)
    assert state["status"] == "complete" and state["content"] == SLOW_TEXT
    assert state["finish_reason"] == "stop" and state["chat_id"] == chat_id
    # While it ran, its stored text grew checkpoint by checkpoint, each the start of the whole answer.
    growing = [text for text in checkpoints if text]
    assert len(growing) >= 2, checkpoints
    assert all(SLOW_TEXT.startswith(text) for text in growing)
    assert [len(text) for text in growing] == sorted({len(text) for text in growing})
    assert len(growing[-1]) < len(SLOW_TEXT)
    assert (await stored_answer(http, auth, chat_id))["content"] == SLOW_TEXT
    assert await asyncio.to_thread(upstream.wait_for, lambda: upstream.completed == 1)
    assert upstream.disconnects == 0  # the client that left did not close the model's stream


# -- 4. Someone else's run, and a malformed position ---------------------------------------------------


async def test_another_users_run_does_not_exist_for_them_and_a_malformed_last_event_id_is_a_400(http, upstream):
    owner_token, owner = await sign_up(http)
    bot_id = await bot_with(http, owner, "fake-echo")
    answered = await http.post(f"/chat/{bot_id}", json={"query": "hello"}, headers=owner)
    assert answered.status_code == 200 and answered.text == "Echo: hello"
    run_id, chat_id = answered.headers["X-Run-Id"], answered.headers["X-Chat-Id"]
    assert (await run_state(http, owner, run_id))["status"] == "complete"

    stranger_token, stranger = await sign_up(http)
    for response in (
        await http.get(f"/runs/{run_id}", headers=stranger),
        await http.get(f"/runs/{run_id}", params={"token": stranger_token}),
        await http.get(f"/runs/{run_id}/events", headers=stranger),
        await http.get(f"/runs/{run_id}/events", headers={**stranger, "Last-Event-ID": f"{run_id}:0"}),
        await http.post(f"/runs/{run_id}/stop", headers=stranger),
        await http.get(f"/runs/{uuid.uuid4()}", headers=owner),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "run_not_found"
    # Resuming the owner's run through 004: on the owner's chat it is not theirs, on their own chat no such run.
    stranger_chat = (await http.post("/chats/create", json={"name": "Mine"}, headers=stranger)).json()["id"]
    for target in (chat_id, stranger_chat):
        resumed = await http.get(
            f"/conversations/inference/{target}",
            params={"token": stranger_token},
            headers={"Last-Event-ID": f"{run_id}:1"},
        )
        assert resumed.status_code == 404, resumed.text

    events, inference = f"/runs/{run_id}/events", f"/conversations/inference/{chat_id}"
    for path, query, headers in (
        (events, {}, {**owner, "Last-Event-ID": "not-a-position"}),
        (events, {}, {**owner, "Last-Event-ID": f"{run_id}:-1"}),
        (events, {}, {**owner, "Last-Event-ID": f"{uuid.uuid4()}:1"}),  # another run's position on this run's URL
        (events, {"after": "x"}, owner),
        (inference, {"token": owner_token}, {"Last-Event-ID": "3"}),  # this URL names no run
        (inference, {"token": owner_token}, {"Last-Event-ID": "abc:1"}),
    ):
        refused = await http.get(path, params=query, headers=headers)
        assert refused.status_code == 400, (path, query, headers, refused.text)
        body = refused.json()
        assert body["code"] == "invalid_last_event_id" and "Last-Event-ID" in body["detail"]
    assert len(upstream.requests) == 1


# -- 5. Stop ----------------------------------------------------------------------------------------


async def test_stopping_a_run_ends_every_reader_with_cancelled_keeps_the_partial_and_frees_the_chat(
    http, server, upstream
):
    _token, auth = await sign_up(http)
    session = await session_with(http, auth, SLOW)
    async with open_socket(session["websocket_url"]) as ws:
        assert (await next_frame(ws))["type"] == "system"
        await ws.send(json.dumps({"type": "message", "content": "a long story"}))
        frames = [await next_frame(ws) for _ in range(3)]
        run_id = frames[0]["run_id"]
        async with http.stream("GET", f"/runs/{run_id}/events", headers=auth) as response:
            assert response.status_code == 200
            reader = EventStream(response)
            watched = await reader.take(2)
            stopped = await http.post(f"/runs/{run_id}/stop", headers=auth)
            assert stopped.status_code == 200, stopped.text
            watched += await reader.take()
        frames += await frames_until_end(ws)

        state = stopped.json()
        assert state["status"] == "cancelled" and state["finish_reason"] == "cancelled"
        partial = state["content"]
        assert partial.startswith("t0 t1 t2 ") and len(partial) < len(SLOW_TEXT)
        for seen in (frames, watched):
            last = seen[-1].get("data", seen[-1])
            assert last["finish_reason"] == "cancelled" and last["content"] == partial
            assert chunk_text(seen) == partial
        assert_numbered([frame["seq"] for frame in frames])
        assert_numbered([event["data"]["seq"] for event in watched])
        stored = await stored_answer(http, auth, session["session_id"])
        assert (stored["status"], stored["content"]) == ("cancelled", partial)
        assert await asyncio.to_thread(upstream.wait_for, lambda: upstream.disconnects == 1)

        # The chat takes a new question at once, on the same socket; its `stop` frame ends it too.
        await ws.send(json.dumps({"type": "message", "content": "another one"}))
        first = await next_frame(ws)
        assert first["type"] == "chunk" and first["run_id"] != run_id and first["seq"] == 1
        await ws.send(json.dumps({"type": "stop"}))
        rest = await frames_until_end(ws)
        assert rest[-1]["type"] == "done" and rest[-1]["finish_reason"] == "cancelled"
    assert len(upstream.requests) == 2


# -- 6 and 7. Two server processes on one database (and Redis) ---------------------------------------


async def test_a_run_whose_server_process_is_killed_is_interrupted_and_frees_chat_streams_and_sockets(
    http, server, second_server, upstream
):
    """docs/reliability.md E12: `server` survives; `second_server` runs the answer and is killed."""
    _token, auth = await sign_up(http)
    session = await session_with(http, auth, LONG)
    async with httpx.AsyncClient(base_url=second_server.url, timeout=15) as doomed:
        speaker_url = await socket_url(doomed, auth, session["session_id"])
        watcher_url = await socket_url(doomed, auth, session["session_id"])
    async with open_socket(speaker_url) as speaker, open_socket(watcher_url) as watcher:
        for ws in (speaker, watcher):
            assert (await next_frame(ws))["type"] == "system"
        await speaker.send(json.dumps({"type": "message", "content": "a very long story"}))
        frames = [await next_frame(speaker)]
        run_id = frames[0]["run_id"]
        # Until the surviving server reads a checkpoint of the text (written at least once a second).
        deadline = time.monotonic() + 10
        while not (await run_state(http, auth, run_id))["content"] and time.monotonic() < deadline:
            frames.append(await next_frame(speaker))
        # A client of the surviving server follows the run from where the socket is.
        position = frames[-1]["seq"]
        follow = {**auth, "Last-Event-ID": f"{run_id}:{position}"}
        async with http.stream("GET", f"/runs/{run_id}/events", headers=follow) as response:
            assert response.status_code == 200
            follower = EventStream(response)
            followed = await follower.take(1)
            second_server.process.kill()  # SIGKILL: nothing is stored, nothing given back
            second_server.process.wait(10)
            state = await run_until_ended(http, auth, run_id)
            followed += await follower.take()
    sent = chunk_text(frames)

    assert state["status"] == "interrupted" and state["error_code"] == "interrupted"
    kept = state["content"]
    assert kept and LONG_TEXT.startswith(kept) and len(kept) < len(LONG_TEXT), kept
    assert LONG_TEXT.startswith(sent)
    end = followed[-1]
    assert end["event"] == "error" and end["data"]["code"] == "interrupted" and end["data"]["partial"] == kept
    if REDIS_CONFIGURED:  # it read the killed process's events from their copy in Redis, each once
        assert [event["data"]["seq"] for event in followed] == list(range(position + 1, end["data"]["seq"] + 1))
        assert LONG_TEXT.startswith(sent + chunk_text(followed))
    stored = await stored_answer(http, auth, session["session_id"])
    assert (stored["status"], stored["content"]) == ("interrupted", kept)

    # A reader that comes later reads it from its start to the same end.
    async with http.stream("GET", f"/runs/{run_id}/events", headers=auth) as response:
        assert response.status_code == 200
        events = await take(response)
    assert events[-1] == end
    if REDIS_CONFIGURED:  # the killed process's events were copied to Redis as they were written
        assert_numbered([event["data"]["seq"] for event in events])
        assert chunk_text(events).startswith(kept)
    else:  # its log died with it: the stored text stands in for its events
        assert [(event["event"], event["data"].get("content")) for event in events[:-1]] == [("snapshot", kept)]
        assert events[0]["data"]["seq"] + 1 == end["data"]["seq"] == state["seq"]

    # The chat, the user's one stream and both socket slots are free on the surviving server at once.
    url_one = await socket_url(http, auth, session["session_id"])
    url_two = await socket_url(http, auth, session["session_id"])
    async with open_socket(url_one) as speaker, open_socket(url_two) as watcher:
        for ws in (speaker, watcher):
            greeting = await next_frame(ws)
            assert greeting["type"] == "system" and "run_id" not in greeting
        await speaker.send(json.dumps({"type": "message", "content": "are you back?"}))
        first = await next_frame(speaker)
        assert first["type"] == "chunk" and first["run_id"] != run_id, first
        await speaker.send(json.dumps({"type": "stop"}))
        assert (await frames_until_end(speaker))[-1]["finish_reason"] == "cancelled"


@pytest.mark.skipif(not REDIS_CONFIGURED, reason="a run's events reach another process through Redis (REDIS_URL)")
async def test_a_run_started_on_one_server_process_is_resumed_on_another(http, server, second_server, upstream):
    """The run's events are copied to Redis: a reader on any process resumes it exactly."""
    token, auth = await sign_up(http)
    bot_id = await bot_with(http, auth, SLOW)
    async with httpx.AsyncClient(base_url=second_server.url, timeout=15) as writer:
        headers = {**auth, "Accept": "text/event-stream"}
        async with writer.stream("POST", f"/chat/{bot_id}", json={"query": "long"}, headers=headers) as response:
            assert response.status_code == 200
            run_id, chat_id = response.headers["X-Run-Id"], response.headers["X-Chat-Id"]
            events = await take(response, 4)
    async with http.stream(
        "GET", f"/runs/{run_id}/events", params={"token": token}, headers={"Last-Event-ID": events[-1]["id"]}
    ) as response:
        assert response.status_code == 200
        events += await take(response)
    assert_numbered([event["data"]["seq"] for event in events])
    assert [event["event"] for event in events] == ["chunk"] * (len(events) - 1) + ["done"]
    stored = await stored_answer(http, auth, chat_id)
    assert stored["status"] == "complete"
    assert chunk_text(events) == stored["content"] == events[-1]["data"]["content"] == SLOW_TEXT
    assert len(upstream.requests) == 1


async def test_a_stop_asked_on_another_server_process_stops_the_run_where_it_runs(
    http, server, second_server, upstream
):
    """The writer reads the stop at its next checkpoint; every reader, on either process, gets `done`."""
    _token, auth = await sign_up(http)
    bot_id = await bot_with(http, auth, SLOW)
    async with httpx.AsyncClient(base_url=second_server.url, timeout=15) as writer:
        headers = {**auth, "Accept": "text/event-stream"}
        async with writer.stream("POST", f"/chat/{bot_id}", json={"query": "long"}, headers=headers) as response:
            assert response.status_code == 200
            run_id, chat_id = response.headers["X-Run-Id"], response.headers["X-Chat-Id"]
            asker = EventStream(response)
            asked = await asker.take(2)
            stopped = await http.post(f"/runs/{run_id}/stop", headers=auth)
            asked += await asker.take()
    assert stopped.status_code == 200, stopped.text
    state = stopped.json()
    assert state["status"] == "cancelled" and state["finish_reason"] == "cancelled"
    partial = state["content"]
    assert partial.startswith("t0 t1 ") and len(partial) < len(SLOW_TEXT)
    assert_numbered([event["data"]["seq"] for event in asked])
    assert asked[-1]["event"] == "done" and asked[-1]["data"]["finish_reason"] == "cancelled"
    assert chunk_text(asked) == asked[-1]["data"]["content"] == partial
    async with http.stream("GET", f"/runs/{run_id}/events", headers=auth) as response:
        watched = await take(response)
    assert watched[-1]["event"] == "done" and watched[-1]["data"]["finish_reason"] == "cancelled"
    assert chunk_text(watched) == watched[-1]["data"]["content"] == partial
    stored = await stored_answer(http, auth, chat_id)
    assert (stored["status"], stored["content"]) == ("cancelled", partial)
    assert await asyncio.to_thread(upstream.wait_for, lambda: upstream.disconnects == 1)


@pytest.fixture
def stopping_server(server, fake_openai_server, tmp_path):
    """Another server process on `server`'s database and Redis, whose runs' leases would last a minute:
    only its own shutdown can end them within the test."""
    live = server_beside(server, fake_openai_server, tmp_path, RUN_LEASE_SECONDS="60", DRAIN_SECONDS="0.5").start()
    yield live
    live.stop()
    assert not live.tracebacks(), live.tracebacks()


async def test_a_server_process_stopped_with_term_keeps_its_runs_as_interrupted_at_once(
    http, server, stopping_server, upstream
):
    """A deploy's TERM: the process ends the answers it still writes, with their text, before it exits."""
    _token, auth = await sign_up(http)
    session = await session_with(http, auth, LONG)
    async with httpx.AsyncClient(base_url=stopping_server.url, timeout=15) as stopping:
        url = await socket_url(stopping, auth, session["session_id"])
    async with open_socket(url) as socket:
        assert (await next_frame(socket))["type"] == "system"
        await socket.send(json.dumps({"type": "message", "content": "a very long story"}))
        frames = [await next_frame(socket) for _ in range(5)]
    run_id = frames[0]["run_id"]
    stopping_server.process.terminate()
    # uvicorn shuts down gracefully, then re-raises the TERM it caught: the exit status is -15 either way.
    stopping_server.process.wait(15)
    # At once, not a lease (a minute) later: the stopping process stored the end itself.
    state = await run_state(http, auth, run_id)
    assert (state["status"], state["error_code"]) == ("interrupted", "interrupted")
    kept = state["content"]
    assert kept.startswith(chunk_text(frames)) and LONG_TEXT.startswith(kept) and len(kept) < len(LONG_TEXT)
    stored = await stored_answer(http, auth, session["session_id"])
    assert (stored["status"], stored["content"]) == ("interrupted", kept)
    async with http.stream("GET", f"/runs/{run_id}/events", headers=auth) as response:
        end = (await take(response))[-1]
    assert end["event"] == "error" and end["data"]["code"] == "interrupted" and end["data"]["partial"] == kept
    assert "the server process is stopping" in stopping_server.log()
    # The chat takes the next question at once.
    async with open_socket(await socket_url(http, auth, session["session_id"])) as socket:
        greeting = await next_frame(socket)
        assert greeting["type"] == "system" and "run_id" not in greeting
        await socket.send(json.dumps({"type": "message", "content": "back?"}))
        assert (await next_frame(socket))["type"] == "chunk"
        await socket.send(json.dumps({"type": "stop"}))
        await frames_until_end(socket)
