"""Durable runs under load (issue 14). Run: .venv/bin/python -m bench.relay_resume [--quick]

Bytchat runs as bench/relay.py starts it (uvicorn in a subprocess, DEBUG off, a throwaway SQLite), its
default model the fake upstream's fake-tokens-200-10 (200 tokens 10 ms apart, so an answer is still
being written when its reader comes back); this process is the client. Three parts:

1. Resume latency. An answer is read for a few events, its connection dropped, and a new connection
   resumes it after the last seq seen: the 003 WebSocket (`resume` frame on a new socket), 004
   `GET /conversations/inference/{chat}` with Last-Event-ID, and `GET /runs/{id}/events` with
   Last-Event-ID. Timed from the start of the reconnection (new TCP connection included) to the first
   replayed event; the resumed answer is then read to its end.
2. Interrupted answers. n answers, c at a time, each started on a WebSocket or on 004 SSE, dropped
   once after a random number of events and resumed on one of the three surfaces. Counts events
   lost (seq gaps), duplicates, and answers whose joined text differs from their `done`, from the
   message stored (read via REST at the end) or from the 200 tokens the model wrote.
3. RUN_COALESCE_MS. For each value, a server of its own and bursts of WebSocket answers: chunk frames
   per answer, server CPU per 1,000 tokens, time to first token and the gaps between frames.

With --elsewhere (and REDIS_URL in --server-env), parts 1 and 2 run on two server processes sharing the
database and Redis, and every answer is resumed on the process that is not writing it, so its events
come from the run's Redis Stream. --keep keeps the servers' logs; an ERROR in them is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from bench.common import ServerProcess, pct
from bench.relay import fmt, machine_busy_seconds
from bench.relay_clients import QUESTION, Account, bounded, describe, http_session
from bench.relay_server import BytchatServer

MODEL = "fake-tokens-200-10"
TOKENS = 200
EXPECTED_TEXT = "".join(f"t{i} " for i in range(TOKENS))  # what tests/fake_openai.py writes for MODEL
TERMINAL = ("done", "error")
RUN_EVENTS = ("chunk", "snapshot", *TERMINAL)
# How an answer starts (before ">") and how it is resumed (after): the 003 socket, 004 SSE, /runs/{id}/events.
LATENCY_KINDS = {"003 WS resume": "ws>ws", "004 Last-Event-ID": "sse>sse", "/runs/{id}/events": "sse>runs"}
MIXED_KINDS = ["ws>ws", "ws>sse", "ws>runs", "sse>ws", "sse>sse", "sse>runs"]
ANSWER_TIMEOUT = 120.0


# -- reading a run's events ----------------------------------------------------------------------
@dataclass
class Event:
    type: str
    seq: int | None
    run_id: str | None
    content: str
    data: dict[str, Any]
    at: float
    sse_id: str | None = None


def event_of(body: dict[str, Any], kind: str, sse_id: str | None = None) -> Event:
    content = body.get("content", body.get("detail", ""))
    return Event(kind, body.get("seq"), body.get("run_id"), content, body, time.perf_counter(), sse_id)


async def ws_events(ws: ClientConnection) -> AsyncIterator[Event]:
    while True:
        frame = json.loads(await ws.recv())
        yield event_of(frame, frame.get("type", ""))


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """Bytchat's SSE, event by event (`id:` / `event:` / `data:` lines, a blank line ends one)."""
    kind, data, sse_id = "message", [], None
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield event_of(json.loads(b"\n".join(data)), kind, sse_id)
            kind, data, sse_id = "message", [], None
        elif line.startswith(b":"):
            continue  # a heartbeat comment
        elif line.startswith(b"event:"):
            kind = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data.append(line[5:].removeprefix(b" "))
        elif line.startswith(b"id:"):
            sse_id = line[3:].strip().decode()


@dataclass
class Trace:
    """One answer as its client saw it, across the drop and the resume."""

    kind: str
    chat_id: str = ""
    run_id: str = ""
    events: list[Event] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    end: Event | None = None
    dropped_after: int | None = None  # the last seq seen when the connection was dropped
    reconnect_ms: float | None = None  # reconnection started -> first replayed event
    resume_ms: float | None = None  # WebSocket: `resume` frame sent -> first replayed event
    resumed_events: int = 0
    bad_ids: int = 0  # SSE `id:` lines that are not <run_id>:<seq> of their data
    error: str | None = None

    def add(self, event: Event) -> bool:
        """Record a run event; whether it ends the answer."""
        if event.seq is None:
            raise RuntimeError(f"{event.type} event without seq")
        if event.run_id and self.run_id and event.run_id != self.run_id:
            raise RuntimeError(f"an event of run {event.run_id} in run {self.run_id}")
        if event.sse_id is not None and event.sse_id != f"{event.run_id}:{event.seq}":
            self.bad_ids += 1
        self.run_id = self.run_id or event.run_id or ""
        self.events.append(event)
        if event.type == "chunk":
            self.text.append(event.content)
        elif event.type == "snapshot":
            self.text = [event.content]
        else:
            self.end = event
            return True
        return False

    @property
    def last_seq(self) -> int:
        return max((e.seq for e in self.events), default=0)

    def seq_problems(self) -> tuple[int, int, int]:
        """(events lost, duplicates, seqs bridged by a snapshot) in the order the events arrived."""
        lost = duplicates = bridged = 0
        seen: set[int] = set()
        previous = 0
        for event in self.events:
            if event.seq in seen or event.seq <= previous:
                duplicates += 1
                continue
            missing = event.seq - previous - 1
            if event.type == "snapshot":
                bridged += missing
            else:
                lost += missing
            seen.add(event.seq)
            previous = event.seq
        return lost, duplicates, bridged

    @property
    def joined(self) -> str:
        return "".join(self.text)


class Client:
    """One user of the server under test and the calls the parts make."""

    def __init__(self, account: Account, server: BytchatServer) -> None:
        self.account = account
        self.http = account.http
        self.url = server.url
        self.ws_url = server.ws_url

    async def session(self) -> str:
        return (await self.account.call("POST", "/chat/sessions", {}))["session_id"]

    async def chat_with_question(self) -> str:
        chat = await self.account.call("POST", "/chats/create", {"name": "bench"})
        body = {"chat_id": chat["id"], "role": "Human", "message": QUESTION}
        await self.account.call("POST", "/conversations/create", body)
        return chat["id"]

    async def ws_open(self, chat_id: str) -> ClientConnection:
        """A socket on the chat, authenticated with the access token (a reconnecting app may ask
        `POST /chat/sessions/{id}/websocket` for a ticket first: one more request, not counted here)."""
        url = f"{self.ws_url}/chat/ws/{chat_id}?token={self.account.access}"
        ws = await connect(url, proxy=None, open_timeout=30, max_size=1 << 20)
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if first.get("type") != "system":
                raise RuntimeError(f"first frame is {first.get('type')!r}, not system")
        except BaseException:
            await ws.close()
            raise
        return ws

    def inference_url(self, chat_id: str) -> str:
        return f"{self.url}/conversations/inference/{chat_id}"

    async def stored_message(self, chat_id: str, message_id: str) -> dict[str, Any] | None:
        for message in await self.account.call("GET", f"/chats/{chat_id}/conversations"):
            if message["id"] == message_id:
                return message
        return None


async def ws_drop(ws: ClientConnection) -> None:
    """The network goes away: no close frame, the TCP connection is cut."""
    ws.transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.wait_closed(), 5)


# -- one answer, interrupted once ----------------------------------------------------------------
async def read_until(trace: Trace, events: AsyncIterator[Event], drop_after: int | None) -> bool:
    """Read run events until the end (True) or until `drop_after` events were seen (False)."""
    seen = 0
    async for event in events:
        if event.type == "system":
            continue
        if event.type == "error" and event.seq is None:  # refused before any run (a frame error)
            raise RuntimeError(f"error {event.data.get('code')}: {event.content[:80]}")
        if event.type not in RUN_EVENTS:
            raise RuntimeError(f"unexpected {event.type!r} event")
        if trace.add(event):
            return True
        seen += 1
        if drop_after is not None and seen >= drop_after:
            return False
    raise RuntimeError("the stream ended without done or error")


async def start_answer(client: Client, trace: Trace, start: str, drop_after: int) -> bool:
    """Ask on `start` ('ws' or 'sse') and read until the drop; whether the answer ended first."""
    if start == "ws":
        trace.chat_id = await client.session()
        ws = await client.ws_open(trace.chat_id)
        try:
            await ws.send(json.dumps({"type": "message", "content": QUESTION}))
            ended = await read_until(trace, ws_events(ws), drop_after)
        finally:
            await ws_drop(ws)
        return ended
    trace.chat_id = await client.chat_with_question()
    async with client.http.get(client.inference_url(trace.chat_id), params={"token": client.account.access}) as r:
        if r.status != 200:
            raise RuntimeError(f"004 start: HTTP {r.status} {(await r.text())[:120]}")
        trace.run_id = r.headers.get("X-Run-Id", "")
        ended = await read_until(trace, sse_events(r), drop_after)
        r.close()  # drop the connection, whatever is still in flight
    return ended


async def resume_answer(client: Client, trace: Trace, resume: str) -> None:
    """Resume after the last seq seen on `resume` ('ws', 'sse' or 'runs'), timed to the first event, then
    read to the end."""
    after = trace.last_seq
    t0 = time.perf_counter()
    if resume == "ws":
        ws = await client.ws_open(trace.chat_id)
        try:
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "resume", "run_id": trace.run_id, "after": after}))
            await _read_resumed(trace, ws_events(ws), t0, sent)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 10)
        return
    url = client.inference_url(trace.chat_id) if resume == "sse" else f"{client.url}/runs/{trace.run_id}/events"
    headers = {"Last-Event-ID": f"{trace.run_id}:{after}"}
    async with client.http.get(url, params={"token": client.account.access}, headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"{resume} resume: HTTP {r.status} {(await r.text())[:120]}")
        await _read_resumed(trace, sse_events(r), t0, None)


async def _read_resumed(trace: Trace, events: AsyncIterator[Event], t0: float, sent: float | None) -> None:
    before = len(trace.events)

    async def timed() -> AsyncIterator[Event]:
        async for event in events:
            if event.type in RUN_EVENTS and trace.reconnect_ms is None:
                trace.reconnect_ms = (event.at - t0) * 1000
                if sent is not None:
                    trace.resume_ms = (event.at - sent) * 1000
            yield event

    await read_until(trace, timed(), None)
    trace.resumed_events = len(trace.events) - before


async def interrupted_answer(client: Client, resumer: Client, kind: str, drop_after: int, pause: float) -> Trace:
    """Asked through `client`'s server, resumed through `resumer`'s (the same server, or another process)."""
    trace = Trace(kind)
    start, resume = kind.split(">")
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            if await start_answer(client, trace, start, drop_after):
                return trace  # the answer ended before the drop: nothing to resume
            trace.dropped_after = trace.last_seq
            await asyncio.sleep(pause)
            await resume_answer(resumer, trace, resume)
    except TimeoutError:
        trace.error = "timeout"
    except Exception as exc:
        trace.error = describe(exc)
    return trace


# -- the parts -----------------------------------------------------------------------------------
def drop_points(rng: random.Random, n: int, low: int, high: int) -> list[int]:
    return [rng.randint(low, high) for _ in range(n)]


async def in_lanes(n: int, lanes: int, one) -> list:
    """`one(i)` for i in 0..n-1, at most `lanes` at once (each lane takes the next index when it is free)."""
    results: list = [None] * n
    indexes = iter(range(n))

    async def lane() -> None:
        for i in indexes:
            results[i] = await one(i)

    await asyncio.gather(*(lane() for _ in range(min(lanes, n))))
    return results


async def resume_parts(
    upstream: ServerProcess, data_root: Path, args: argparse.Namespace, rng: random.Random
) -> tuple[dict[str, list[Trace]] | None, dict[str, Any] | None]:
    """Parts 1 and 2 on one server, or (--elsewhere) on two processes sharing the database and Redis, each
    answer resumed on the process that did not write it (its events read from the run's Redis Stream)."""
    data_dir = data_root / "main"
    data_dir.mkdir()
    env = {"LLM_MODEL": MODEL, "WS_MESSAGES_PER_MINUTE": "100000", **args.server_env}
    if args.elsewhere:
        env.setdefault("SECRET_KEY", secrets.token_urlsafe(48))  # one key: a token of one server opens the other
    servers = [BytchatServer(data_dir, upstream.base_url, env)]
    if args.elsewhere:
        servers.append(BytchatServer(data_dir, upstream.base_url, env))
        servers[1].log_path = data_dir / "server-b.log"
    latency = interrupted = None
    try:
        for server in servers:
            server.start()
            print(f"Bytchat (uvicorn) pid {server.pid} on {server.url}; fake upstream pid {upstream.pid}", flush=True)
        async with http_session() as http:
            account = await Account(http, servers[0].url).register()
            clients = [Client(account, server) for server in servers]
            for i in range(len(clients)):  # not measured
                warm = await interrupted_answer(*pair(clients, i), "sse>runs", 3, 0.0)
                if warm.error:
                    raise RuntimeError(f"warm-up answer failed: {warm.error}")
            if "latency" in args.parts:
                latency = await resume_latency(clients, args, rng)
            if "interrupted" in args.parts:
                interrupted = await interrupted_run(clients, args, rng)
    finally:
        for server in servers:
            server.stop()
            log_problems(server, server.log_path.name)
    return latency, interrupted


def pair(clients: list[Client], i: int) -> tuple[Client, Client]:
    """Who asks and who resumes answer i: with two servers, each answer is resumed on the other one."""
    return clients[i % len(clients)], clients[(i + 1) % len(clients)]


async def resume_latency(clients: list[Client], args: argparse.Namespace, rng: random.Random) -> dict[str, list[Trace]]:
    out: dict[str, list[Trace]] = {}
    for name, kind in LATENCY_KINDS.items():
        drops = drop_points(rng, args.resumes, *args.latency_drop)
        print(f"  resume latency, {name}: {args.resumes} resumes, {args.latency_lanes} at a time ...", flush=True)
        out[name] = await in_lanes(
            args.resumes,
            args.latency_lanes,
            lambda i, kind=kind, drops=drops: interrupted_answer(*pair(clients, i), kind, drops[i], args.latency_pause),
        )
    return out


async def interrupted_run(clients: list[Client], args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    n = args.answers
    drops = drop_points(rng, n, *args.drop)
    pauses = [rng.uniform(0, args.max_pause) for _ in range(n)]
    kinds = [MIXED_KINDS[i % len(MIXED_KINDS)] for i in range(n)]
    rng.shuffle(kinds)
    print(f"  {n} interrupted answers, {args.parallel} at a time ...", flush=True)
    t0 = time.perf_counter()
    traces = await in_lanes(
        n, args.parallel, lambda i: interrupted_answer(*pair(clients, i), kinds[i], drops[i], pauses[i])
    )
    wall = time.perf_counter() - t0
    # The stored answers, read after the last one ended (REST, as any client would).
    finished = [t for t in traces if t.end is not None and t.end.data.get("message_id")]
    stored = await bounded([clients[0].stored_message(t.chat_id, t.end.data["message_id"]) for t in finished])
    stored_by_trace = {id(t): s for t, s in zip(finished, stored, strict=True)}
    return {"traces": traces, "stored": stored_by_trace, "wall": wall}


@dataclass
class Burst:
    value: float
    streams: int
    wall: float
    server_cpu: float | None
    frames: list[int]
    tokens: list[int]
    ttfts: list[float]
    gaps: list[float]
    errors: Counter


async def ws_answer(ws: ClientConnection | BaseException) -> tuple[int, int, float | None, list[float], str | None]:
    """(chunk frames, tokens, TTFT ms, gaps between chunk frames in ms, error) of one answer on an open socket."""
    if isinstance(ws, BaseException):
        return 0, 0, None, [], f"setup: {describe(ws)}"
    frames = 0
    text: list[str] = []
    ttft, last, gaps = None, None, []
    start = time.perf_counter()
    try:
        await ws.send(json.dumps({"type": "message", "content": QUESTION}))
        async for event in ws_events(ws):
            if event.type == "chunk" and event.content:
                frames += 1
                text.append(event.content)
                if last is None:
                    ttft = (event.at - start) * 1000
                else:
                    gaps.append((event.at - last) * 1000)
                last = event.at
            elif event.type == "done":
                tokens = len("".join(text).split())
                return frames, tokens, ttft, gaps, None if tokens == TOKENS else f"short ({tokens}/{TOKENS})"
            elif event.type == "error":
                return frames, len("".join(text).split()), ttft, gaps, f"error {event.data.get('code')}"
    except Exception as exc:
        return frames, len("".join(text).split()), ttft, gaps, describe(exc)
    return frames, 0, ttft, gaps, "closed"


class CoalesceTarget:
    """A server started with one RUN_COALESCE_MS value, and its user."""

    def __init__(self, upstream: ServerProcess, data_root: Path, value: float, args: argparse.Namespace) -> None:
        self.value = value
        data_dir = Path(tempfile.mkdtemp(prefix=f"coalesce-{value:g}-", dir=data_root))
        env = {
            "LLM_MODEL": MODEL,
            "RUN_COALESCE_MS": f"{value:g}",
            "WS_MESSAGES_PER_MINUTE": "100000",
            **args.server_env,
        }
        self.server = BytchatServer(data_dir, upstream.base_url, env)
        self.client: Client | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        await asyncio.to_thread(self.server.start)
        self.client = Client(await Account(http, self.server.url).register(), self.server)
        warm = await self.open()  # one answer first, not measured
        await ws_answer(warm)
        await warm.close()

    async def open(self) -> ClientConnection:
        return await self.client.ws_open(await self.client.session())

    async def burst(self, streams: int) -> Burst:
        sockets = await bounded([self.open() for _ in range(streams)])
        await asyncio.sleep(0.2)
        cpu0, t0 = self.server.cpu_seconds(), time.perf_counter()
        results = await asyncio.gather(*(ws_answer(ws) for ws in sockets))
        wall, cpu1 = time.perf_counter() - t0, self.server.cpu_seconds()
        await asyncio.gather(
            *(asyncio.wait_for(ws.close(), 10) for ws in sockets if isinstance(ws, ClientConnection)),
            return_exceptions=True,
        )
        return Burst(
            value=self.value,
            streams=streams,
            wall=wall,
            server_cpu=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            frames=[r[0] for r in results if r[4] is None],
            tokens=[r[1] for r in results],
            ttfts=[r[2] for r in results if r[2] is not None],
            gaps=[g for r in results for g in r[3]],
            errors=Counter(r[4] for r in results if r[4]),
        )


async def coalesce_bursts(upstream: ServerProcess, data_root: Path, args: argparse.Namespace) -> list[Burst]:
    """Every value's server is up (idle between its bursts) and the bursts take turns, so a change in the
    machine's load meanwhile falls on every value alike."""
    targets = [CoalesceTarget(upstream, data_root, value, args) for value in args.coalesce]
    bursts: list[Burst] = []
    try:
        async with http_session() as http:
            for target in targets:
                await target.start(http)
            for streams in args.coalesce_streams:
                for repeat in range(args.coalesce_repeats):
                    shift = repeat % len(targets)
                    for target in targets[shift:] + targets[:shift]:
                        burst = await target.burst(streams)
                        bursts.append(burst)
                        print(
                            f"  RUN_COALESCE_MS={target.value:g} x{streams}: wall {burst.wall:.2f}s, "
                            f"server cpu {fmt(burst.server_cpu, 2)}s, errors {sum(burst.errors.values())}",
                            flush=True,
                        )
    finally:
        for target in targets:
            target.server.stop()
            log_problems(target.server, f"RUN_COALESCE_MS={target.value:g}")
    return bursts


# -- report --------------------------------------------------------------------------------------
LOG_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d |INFO:|ERROR:|WARNING:)")


def log_problems(server: BytchatServer, name: str) -> None:
    """The server log's ERROR lines counted by message, and the exception each traceback ends with."""
    lines = server.log_tail(20_000_000).splitlines()
    errors = Counter(line.split("ERROR", 1)[1].strip(" :")[:100] for line in lines if "ERROR" in line[:40])
    raised: Counter = Counter()
    last = None
    for line in [*lines, "2000-01-01 end"]:
        if LOG_RECORD.match(line):
            if last:
                raised[last[:100]] += 1
            last = None
        elif line and not line[0].isspace() and not line.startswith(("Traceback", "The above", "During handling")):
            last = line  # the exception line of a traceback (the last one wins for chained ones)
    if errors:
        print(f"  !! server log ({name}): {sum(errors.values())} ERROR lines: {dict(errors.most_common(3))}")
        if raised:
            print(f"     their tracebacks end with: {dict(raised.most_common(3))}")


def seq_totals(traces: list[Trace]) -> tuple[int, int, int]:
    lost = duplicates = bridged = 0
    for trace in traces:
        a, b, c = trace.seq_problems()
        lost, duplicates, bridged = lost + a, duplicates + b, bridged + c
    return lost, duplicates, bridged


def report_latency(results: dict[str, list[Trace]], args: argparse.Namespace) -> int:
    """Prints the table; returns the number of resumed answers with a lost or duplicated event or an error."""
    print()
    print(
        f"### Resume latency ({MODEL}; dropped after {args.latency_drop[0]}-{args.latency_drop[1]} events, "
        f"reconnected {args.latency_pause * 1000:g} ms later; {args.latency_lanes} answers at a time"
        + ("; resumed on the other server process" if args.elsewhere else "")
        + ")"
    )
    print()
    print(
        "| resumed with | resumes | reconnect → first replayed event p50 | p95 | resume frame → first event p50 "
        "| p95 | events replayed p50 | lost | duplicates | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, traces in results.items():
        resumed = [t for t in traces if t.reconnect_ms is not None]
        reconnect = [t.reconnect_ms for t in resumed]
        frame = [t.resume_ms for t in resumed if t.resume_ms is not None]
        lost, duplicates, _bridged = seq_totals(traces)
        errors = [t for t in traces if t.error or (t.end is not None and t.end.type == "error")]
        print(
            f"| {name} | {len(resumed)}/{len(traces)} | {fmt(pct(reconnect, 50))} | {fmt(pct(reconnect, 95))} | "
            f"{fmt(pct(frame, 50)) if frame else '—'} | {fmt(pct(frame, 95)) if frame else '—'} | "
            f"{fmt(pct([t.resumed_events for t in resumed], 50), 0)} | {lost} | {duplicates} | {len(errors)} |"
        )
        kinds = Counter(t.error or f"error event {t.end.data.get('code')}" for t in errors)
        if kinds:
            print(f"  errors ({name}): {dict(kinds.most_common(4))}")
    print()
    print("Times in ms, from the start of the reconnection (a new TCP connection; 003: the socket's handshake and")
    print("`system` frame, then the `resume` frame) to the first event after the last seq seen.")
    traces = [t for group in results.values() for t in group]
    return sum(1 for t in traces if t.error or t.end is None or t.end.type != "done" or t.seq_problems()[:2] != (0, 0))


def report_interrupted(run: dict[str, Any], args: argparse.Namespace) -> dict[str, int]:
    traces: list[Trace] = run["traces"]
    stored: dict[int, dict | None] = run["stored"]
    interrupted = [t for t in traces if t.dropped_after is not None]
    ended = [t for t in traces if t.end is not None and t.end.type == "done"]
    failed = [t for t in traces if t.error]
    error_ends = [t for t in traces if t.end is not None and t.end.type == "error"]
    lost, duplicates, bridged = seq_totals(traces)
    same_done = sum(1 for t in ended if t.joined == t.end.content)
    same_stored = sum(1 for t in ended if (s := stored.get(id(t))) is not None and s["message"] == t.joined)
    same_model = sum(1 for t in ended if t.joined == EXPECTED_TEXT)
    missing = sum(1 for t in ended if stored.get(id(t)) is None)
    snapshots = sum(1 for t in traces for e in t.events if e.type == "snapshot")
    bad_ids = sum(t.bad_ids for t in traces)
    by_kind = Counter(t.kind for t in interrupted)
    reconnect = [t.reconnect_ms for t in interrupted if t.reconnect_ms is not None]
    print()
    print(
        f"### {len(traces)} answers, each interrupted once and resumed ({args.parallel} at a time, "
        f"dropped after {args.drop[0]}-{args.drop[1]} events, reconnected 0-{args.max_pause * 1000:g} ms later"
        + ("; resumed on the other server process" if args.elsewhere else "")
        + ")"
    )
    print()
    print(
        f"- interrupted mid-stream and resumed: {len(interrupted)} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(by_kind.items()))}); ended before the drop: "
        f"{len(traces) - len(interrupted) - len(failed)}; events per answer p50 "
        f"{fmt(pct([t.end.seq for t in ended], 50), 0)}; {run['wall']:.1f} s"
    )
    print(
        f"- events lost (seq gaps): {lost}; duplicates: {duplicates}; snapshot events: {snapshots} "
        f"(seqs they stood in for: {bridged}); SSE ids not <run_id>:<seq>: {bad_ids}"
    )
    print(
        f"- answers ended with done: {len(ended)}/{len(traces)}; error events: {len(error_ends)}; "
        f"client errors: {len(failed)}"
        + (f" ({dict(Counter(t.error for t in failed).most_common(4))})" if failed else "")
        + (f"; error codes {dict(Counter(t.end.data.get('code') for t in error_ends))}" if error_ends else "")
    )
    print(
        f"- joined text equal to its done: {same_done}/{len(ended)}; to the stored message (REST): "
        f"{same_stored}/{len(ended)} (not found: {missing}); to the model's {TOKENS} tokens: {same_model}/{len(ended)}"
    )
    if reconnect:
        print(f"- reconnect → first replayed event: p50 {fmt(pct(reconnect, 50))} ms, p95 {fmt(pct(reconnect, 95))} ms")
    for t in [t for t in ended if t.joined != EXPECTED_TEXT or t.seq_problems()[:2] != (0, 0)][:5]:
        print(
            f"  !! {t.kind} run {t.run_id} chat {t.chat_id}: dropped after seq {t.dropped_after}, "
            f"seqs {[e.seq for e in t.events][:12]}..., problems {t.seq_problems()}, {len(t.joined)} chars"
        )
    for t in failed[:5]:
        print(f"  !! {t.kind} run {t.run_id or '?'} chat {t.chat_id}: {t.error} (dropped after {t.dropped_after})")
    return {
        "lost": lost,
        "duplicates": duplicates,
        "unequal": len(traces) - min(same_done, same_stored, same_model),
        "errors": len(failed) + len(error_ends),
    }


def report_coalesce(bursts: list[Burst]) -> None:
    print()
    print(f"### RUN_COALESCE_MS on the 003 WebSocket ({MODEL}, bursts of n answers)")
    print()
    print(
        "| RUN_COALESCE_MS | streams | chunk frames per answer | tokens per frame | server CPU ms / 1k tokens "
        "| TTFT p50 | TTFT p95 | frame gap p50 | frame gap p99 | tokens/s | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    groups: dict[tuple[float, int], list[Burst]] = {}
    for burst in bursts:
        groups.setdefault((burst.value, burst.streams), []).append(burst)
    for (value, streams), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        frames = [f for b in group for f in b.frames]
        tokens = sum(t for b in group for t in b.tokens)
        wall = sum(b.wall for b in group)
        cpus = [b.server_cpu for b in group if b.server_cpu is not None]
        cpu_1k = sum(cpus) / tokens * 1e6 if tokens and len(cpus) == len(group) else None
        per_answer = sum(frames) / len(frames) if frames else math.nan
        ttfts = [t for b in group for t in b.ttfts]
        gaps = [g for b in group for g in b.gaps]
        errors = Counter()
        for b in group:
            errors.update(b.errors)
        answers = sum(b.streams for b in group)
        print(
            f"| {value:g} | {streams} | {fmt(per_answer)} | {fmt(TOKENS / per_answer if frames else None, 2)} | "
            f"{fmt(cpu_1k, 0)} | {fmt(pct(ttfts, 50))} | {fmt(pct(ttfts, 95))} | "
            f"{fmt(pct(gaps, 50))} | {fmt(pct(gaps, 99))} | "
            f"{fmt(tokens / wall if wall else None, 0)} | {sum(errors.values())}/{answers} |"
        )
        if errors:
            print(f"  errors at RUN_COALESCE_MS={value:g} x{streams}: {dict(errors.most_common(3))}")
    print()
    print(
        "Each value on a fresh server; times in ms; server CPU is the server process's (all threads) during the bursts."
    )


# -- main ----------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 resumes a surface, 120 answers 20 at a time, 0/15 ms")
    parser.add_argument("--parts", default="latency,interrupted,coalesce", help="comma-separated parts to run")
    parser.add_argument("--resumes", type=int, default=None, help="resumes per surface (default 100, quick 30)")
    parser.add_argument("--latency-lanes", type=int, default=5, help="answers at a time while timing resumes")
    parser.add_argument("--latency-pause", type=float, default=0.1, help="seconds between the drop and the reconnect")
    parser.add_argument("--latency-drop", default="5-30", help="drop after this many events (a random number in)")
    parser.add_argument("--answers", type=int, default=None, help="interrupted answers (default 1000, quick 120)")
    parser.add_argument(
        "--parallel", type=int, default=None, help="interrupted answers at a time (default 50, quick 20)"
    )
    parser.add_argument("--drop", default="1-60", help="drop after this many events (a random number in)")
    parser.add_argument("--max-pause", type=float, default=0.5, help="at most this many seconds before the reconnect")
    parser.add_argument("--coalesce", default=None, help="RUN_COALESCE_MS values (default 0,5,15,30, quick 0,15)")
    parser.add_argument("--coalesce-streams", default="100", help="comma-separated burst sizes")
    parser.add_argument("--coalesce-repeats", type=int, default=None, help="bursts per value (default 2, quick 1)")
    parser.add_argument("--seed", type=int, default=14, help="random seed (drop points, pauses, surfaces)")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="extra server setting (repeatable)"
    )
    parser.add_argument(
        "--elsewhere",
        action="store_true",
        help="two server processes (needs --server-env REDIS_URL=...; DATABASE_URL or a shared SQLite): "
        "every answer is resumed on the process that is not writing it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data and logs (path printed)")
    parser.add_argument("--deadline", type=float, default=1800.0, help="overall time limit in seconds")
    args = parser.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - {"latency", "interrupted", "coalesce"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    def span(text: str) -> tuple[int, int]:
        low, _dash, high = text.partition("-")
        return int(low), int(high or low)

    args.latency_drop, args.drop = span(args.latency_drop), span(args.drop)
    if args.resumes is None:
        args.resumes = 30 if args.quick else 100
    if args.answers is None:
        args.answers = 120 if args.quick else 1000
    if args.parallel is None:
        args.parallel = 20 if args.quick else 50
    args.coalesce = [float(x) for x in (args.coalesce or ("0,15" if args.quick else "0,5,15,30")).split(",")]
    args.coalesce_streams = [int(x) for x in args.coalesce_streams.split(",") if x.strip()]
    if args.coalesce_repeats is None:
        args.coalesce_repeats = 1 if args.quick else 2
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    if args.elsewhere and not args.server_env.get("REDIS_URL"):
        parser.error("--elsewhere needs --server-env REDIS_URL=redis://...: runs are read across processes from Redis")
    return args


async def amain(args: argparse.Namespace, upstream: ServerProcess, data_root: Path) -> int:
    rng = random.Random(args.seed)
    status = 0
    latency = interrupted = None
    bursts: list[Burst] = []
    busy0, wall0 = machine_busy_seconds(), time.perf_counter()
    try:
        async with asyncio.timeout(args.deadline):
            if {"latency", "interrupted"} & set(args.parts):
                latency, interrupted = await resume_parts(upstream, data_root, args, rng)
            if "coalesce" in args.parts:
                bursts = await coalesce_bursts(upstream, data_root, args)
    except TimeoutError:
        print(f"!! overall deadline of {args.deadline:g}s hit; partial results below")
        status = 1
    busy1, wall = machine_busy_seconds(), time.perf_counter() - wall0
    print()
    print(f"## Durable runs: resume and coalescing; {os.cpu_count()} cores, {date.today().isoformat()}")
    if busy0 is not None and busy1 is not None:
        share = (busy1 - busy0) / (wall * (os.cpu_count() or 1)) * 100
        print(f"(the machine's cores were {share:.0f}% busy over the {wall:.0f} s, this benchmark included)")
    if latency and report_latency(latency, args):
        status = 1
    if interrupted:
        verdict = report_interrupted(interrupted, args)
        print()
        print(
            f"Correctness: {'as expected' if not any(verdict.values()) else 'PROBLEMS'} ({verdict['lost']} lost, "
            f"{verdict['duplicates']} duplicates, {verdict['unequal']} answers whose text differs, "
            f"{verdict['errors']} errors; expected 0 of each)"
        )
        if any(verdict.values()):
            status = 1
    if bursts:
        report_coalesce(bursts)
    return status


def main() -> int:
    args = parse_args()
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("Django", "uvicorn", "channels", "aiohttp", "websockets")
    )
    print(f"Python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs; parts {args.parts}", flush=True)
    upstream = ServerProcess().start()
    try:
        if args.keep:  # the servers' data and logs stay for a look afterwards
            data_root = Path(tempfile.mkdtemp(prefix="bytchat-resume-"))
            print(f"data and server logs in {data_root}")
            return asyncio.run(amain(args, upstream, data_root))
        with tempfile.TemporaryDirectory(prefix="bytchat-resume-") as data_root:
            return asyncio.run(amain(args, upstream, Path(data_root)))
    finally:
        with contextlib.suppress(Exception):
            upstream.stop()


if __name__ == "__main__":
    sys.exit(main())
