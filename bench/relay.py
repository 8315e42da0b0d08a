"""Bytchat as a relay: each streaming surface against the upstream called directly. Run: .venv/bin/python -m bench.relay

A fake OpenAI-compatible upstream (tests/fake_openai.py, in its own process) streams 200 tokens
10 ms apart; Bytchat runs as scripts/run.sh starts it (uvicorn) in a subprocess (DEBUG off, a throwaway SQLite, the fake
upstream as its default model); this process is the client, on one asyncio loop. For each surface
and concurrency, the streams start together (a burst) and the table gives time to first token,
inter-token gaps, throughput, Bytchat's CPU (the server process, all threads) per 1,000 tokens and
errors. Then 1,000 WebSocket sessions are opened, left idle, and all asked at once; then the fixed
cost of a chat turn (server CPU with a 1-token model, and SQL queries counted in-process).
With --metrics-cost: the same bursts on a server with metrics off and one with them on (bench/relay_metrics.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path

import aiohttp

from bench.common import ROOT, ServerProcess, pct
from bench.relay_clients import (
    Account,
    BotChat,
    Direct,
    Inference,
    Session,
    StreamResult,
    bounded,
    describe,
    http_session,
    read_sse,
)
from bench.relay_metrics import metrics_cost
from bench.relay_server import SERVERS, BytchatServer, ClusterServer
from config.server import LOOPS

MODEL = "fake-tokens-200-10"
TOKENS = 200
TURN_MODEL = "fake-tokens-1-0"
SURFACES = {"direct": "direct", "001": "001 POST", "003": "003 WS", "004": "004 SSE"}
# Figures the issue gives for the same kind of upstream on these machines (TTFT added at 1/20/100 streams).
REFERENCES = [
    ("Open WebUI 0.12.4", "+25", "+422", "+2,708", "0.42", "208"),
    ("bare aiohttp relay", "+2", "+13", "+53", "0.96", "52"),
]
GOALS = {"throughput": 0.95, "cpu_1k": 100.0, "cpu_turn": 5.0}
# Issue 15's TTFT goals by streams: one process +250 ms at 100; make cluster +100 ms at 100 and the one
# process's +250 ms at 200.
TTFT_GOALS = {False: {1: 10.0, 100: 250.0}, True: {1: 10.0, 100: 100.0, 200: 250.0}}


@dataclass
class Run:
    surface: str
    level: int
    wall: float
    server_cpu: float | None
    streams: list[StreamResult]


@dataclass
class Row:
    surface: str
    level: int
    ttft_p50: float
    ttft_p95: float
    gap_p99: float
    tok_s: float
    cpu_1k: float | None
    streams: int
    errors: int
    error_kinds: Counter


def summarise(runs: list[Run]) -> Row:
    streams = [s for r in runs for s in r.streams]
    ttfts = [s.ttft * 1000 for s in streams if s.ttft is not None]
    gaps = [g * 1000 for s in streams for g in s.gaps]
    tokens = sum(s.tokens for s in streams)
    wall = sum(r.wall for r in runs)
    cpu = [r.server_cpu for r in runs if r.server_cpu is not None]
    return Row(
        surface=runs[0].surface,
        level=runs[0].level,
        ttft_p50=pct(ttfts, 50),
        ttft_p95=pct(ttfts, 95),
        gap_p99=pct(gaps, 99),
        tok_s=tokens / wall if wall else math.nan,
        cpu_1k=sum(cpu) / tokens * 1e6 if tokens and len(cpu) == len(runs) else None,
        streams=len(streams),
        errors=sum(1 for s in streams if s.error),
        error_kinds=Counter(s.error for s in streams if s.error),
    )


def machine_busy_seconds() -> float | None:
    """CPU seconds processes spent since boot, all cores (Linux /proc/stat user + nice + system; interrupt
    time is left out, since the loopback traffic of the benchmark itself is counted there)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system = (int(x) for x in fields[:3])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def check(result: StreamResult, expected: int) -> StreamResult:
    if result.error is None and result.tokens != expected:
        result.error = f"short ({result.tokens}/{expected} tokens)"
    return result


# -- the runs ----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, upstream: ServerProcess, server: BytchatServer) -> None:
        self.args = args
        self.upstream = upstream
        self.server = server
        self.surfaces: dict[str, object] = {}
        self.skipped: dict[str, str] = {}
        self.runs: dict[tuple[str, int], list[Run]] = {}
        self.upstream_cpu: dict[int, list[tuple[float, int]]] = {}
        # Machine CPU seconds during the bursts: all processes, and this benchmark's three.
        self.machine = {"busy": 0.0, "ours": 0.0, "wall": 0.0}
        self.sessions: dict | None = None
        self.turns: dict | None = None

    async def setup(self, http: aiohttp.ClientSession, direct_http: aiohttp.ClientSession) -> Account:
        account = await Account(http, self.server.url).register()
        wanted = self.args.surfaces
        if "direct" in wanted:
            self.surfaces["direct"] = Direct(direct_http, self.upstream.base_url, MODEL)
        if "001" in wanted:
            self.surfaces["001"] = await BotChat.create(account)
        if "004" in wanted:
            self.surfaces["004"] = await self._probe("004", Inference(account), "POST", "/chats/create")
        if "003" in wanted:
            self.surfaces["003"] = await self._probe("003", Session(account, self.server.url), "POST", "/chat/sessions")
        # Table order: direct, 001, 003, 004; a surface that could not start is left out.
        self.surfaces = {k: self.surfaces[k] for k in SURFACES if self.surfaces.get(k) is not None}
        return account

    async def _probe(self, key: str, surface, method: str, path: str):
        """A surface still being built answers 404 (the catch-all): skip it and say so."""
        try:
            handles = await surface.prepare(1)
            if isinstance(handles[0], BaseException):
                raise handles[0]
            result = check(await surface.stream(handles[0]), TOKENS)  # the warm-up stream, not measured
            await surface.cleanup(handles)
            if result.error:
                raise RuntimeError(result.error)
        except Exception as exc:
            self.skipped[key] = f"{method} {path}: {describe(exc)}"
            print(f"  skipping {SURFACES[key]}: {self.skipped[key]}", flush=True)
            return None
        return surface

    async def warm_up(self) -> None:
        for key in ("direct", "001"):
            surface = self.surfaces.get(key)
            if surface is not None:
                result = check(await surface.stream(None), TOKENS)
                if result.error:
                    raise RuntimeError(f"warm-up of {SURFACES[key]} failed: {result.error}")

    async def run_level(self, key: str, level: int) -> Run:
        surface = self.surfaces[key]
        handles = await surface.prepare(level)
        gc.collect()
        await asyncio.sleep(0.2)  # let the setup's last writes and closes settle before measuring
        busy0, mine0 = machine_busy_seconds(), time.process_time()
        cpu0, up0 = self.server.cpu_seconds(), self.upstream.cpu_seconds()
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(surface.stream(handle)) for handle in handles]
        _done, pending = await asyncio.wait(tasks, timeout=self.args.budget)
        wall = time.perf_counter() - t0
        cpu1, up1 = self.server.cpu_seconds(), self.upstream.cpu_seconds()
        busy1, mine1 = machine_busy_seconds(), time.process_time()
        if None not in (busy0, busy1, cpu0, cpu1, up0, up1):
            self.machine["busy"] += busy1 - busy0
            self.machine["ours"] += (cpu1 - cpu0) + (up1 - up0) + (mine1 - mine0)
            self.machine["wall"] += wall
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        streams = []
        for task in tasks:
            if task in pending or task.cancelled():
                streams.append(StreamResult(error="timeout"))
            else:
                streams.append(check(task.result(), TOKENS))
        await surface.cleanup(handles)
        server_cpu = None if key == "direct" or cpu0 is None or cpu1 is None else cpu1 - cpu0
        if key == "direct" and up0 is not None and up1 is not None:
            self.upstream_cpu.setdefault(level, []).append((up1 - up0, sum(s.tokens for s in streams)))
        return Run(SURFACES[key], level, wall, server_cpu, streams)

    async def levels(self) -> None:
        keys = list(self.surfaces)
        for level in self.args.concurrency:
            repeats = max(self.args.repeats, math.ceil(self.args.min_samples / level))
            for repeat in range(repeats):
                # Rotate the order so no surface always runs right after the same other one.
                shift = repeat % len(keys)
                for key in keys[shift:] + keys[:shift]:
                    run = await self.run_level(key, level)
                    self.runs.setdefault((key, level), []).append(run)
                    errors = sum(1 for s in run.streams if s.error)
                    cpu = f"{run.server_cpu:5.2f}s" if run.server_cpu is not None else "    - "
                    print(
                        f"  {SURFACES[key]:<8} x{level:<4} run {repeat + 1}/{repeats}  wall {run.wall:6.2f}s  "
                        f"server cpu {cpu}  errors {errors}",
                        flush=True,
                    )

    async def idle_then_active(self, account: Account) -> None:
        """n WebSocket sessions opened (untimed), idle, then each asks one question (or in batches)."""
        n, batch = self.args.sessions, self.args.sessions_batch or self.args.sessions
        surface: Session = self.surfaces["003"]
        print(f"  opening {n} WebSocket sessions ...", flush=True)
        t0 = time.perf_counter()
        rss0 = self.server.rss_mb()
        handles = await bounded([surface.open() for _ in range(n)], parallel=self.args.setup_parallel)
        open_s = time.perf_counter() - t0
        open_errors = Counter(describe(h) for h in handles if isinstance(h, BaseException))
        print(f"  opened {n - sum(open_errors.values())}/{n} in {open_s:.1f}s; idle {self.args.sessions_idle:g}s")
        idle_cpu0 = self.server.cpu_seconds()
        await asyncio.sleep(self.args.sessions_idle)
        idle_cpu = self.server.cpu_seconds() - idle_cpu0
        rss_idle = self.server.rss_mb()
        results: list[StreamResult] = []
        cpu0 = self.server.cpu_seconds()
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            part = handles[start : start + batch]
            tasks = [asyncio.create_task(surface.stream(h)) for h in part]
            _done, pending = await asyncio.wait(tasks, timeout=self.args.sessions_budget)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in tasks:
                timed_out = task in pending or task.cancelled()
                results.append(StreamResult(error="timeout") if timed_out else check(task.result(), TOKENS))
        wall = time.perf_counter() - t0
        cpu = self.server.cpu_seconds() - cpu0
        await surface.cleanup(handles)
        tokens = sum(r.tokens for r in results)
        ttfts = [r.ttft * 1000 for r in results if r.ttft is not None]
        gaps = [g * 1000 for r in results for g in r.gaps]
        self.sessions = {
            "n": n,
            "batch": batch,
            "open_s": open_s,
            "open_errors": open_errors,
            "idle_s": self.args.sessions_idle,
            "idle_cpu_ms": idle_cpu * 1000,
            "rss0": rss0,
            "rss_idle": rss_idle,
            "completed": sum(1 for r in results if r.error is None),
            "answer_errors": Counter(r.error for r in results if r.error),
            "ttft_p50": pct(ttfts, 50),
            "ttft_p95": pct(ttfts, 95),
            "gap_p99": pct(gaps, 99),
            "wall": wall,
            "tok_s": tokens / wall if wall else math.nan,
            "cpu_1k": cpu / tokens * 1e6 if tokens else math.nan,
        }


# -- per-turn fixed cost -----------------------------------------------------------------------
async def turn_costs(server: BytchatServer, keys: list[str], turns: int) -> dict[str, dict]:
    """Server CPU per turn with a 1-token model: `turns` turns in one conversation per surface, one at a time."""
    out: dict[str, dict] = {}
    async with http_session() as http:
        account = await Account(http, server.url).register()
        bot = await account.call("POST", "/bots/", {"name": "turns"})

        async def sse_turn(method: str, url: str, **kwargs) -> StreamResult:
            result = StreamResult()
            start = time.perf_counter()
            async with http.request(method, url, **kwargs) as response:
                if response.status != 200:
                    result.error = f"HTTP {response.status}"
                    return result
                await read_sse(response, result, start)
            return result

        async def measure(key: str, one_turn) -> None:
            await one_turn()  # the conversation's first turn, not measured
            await asyncio.sleep(0.2)
            cpu0, t0 = server.cpu_seconds(), time.perf_counter()
            errors = 0
            for _ in range(turns):
                result = await one_turn()
                errors += result.error is not None
            wall, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
            out[key] = {"cpu_ms": cpu / turns * 1000, "wall_ms": wall / turns * 1000, "errors": errors}

        if "001" in keys:
            state: dict[str, str] = {}

            async def bot_turn() -> StreamResult:
                body = {"query": QUESTION_TURN, **({"chat_id": state["chat"]} if state else {})}
                headers = {**account.auth, "Accept": "text/event-stream"}
                result = StreamResult()
                start = time.perf_counter()
                async with http.post(f"{server.url}/chat/{bot['id']}", json=body, headers=headers) as response:
                    state["chat"] = response.headers.get("X-Chat-Id", "")
                    if response.status != 200:
                        result.error = f"HTTP {response.status}"
                        return result
                    await read_sse(response, result, start)
                return result

            await measure("001", bot_turn)
        if "004" in keys:
            chat = await account.call("POST", "/chats/create", {"name": "turns"})

            async def inference_turn() -> StreamResult:
                body = {"chat_id": chat["id"], "role": "Human", "message": QUESTION_TURN}
                await account.call("POST", "/conversations/create", body)
                url = f"{server.url}/conversations/inference/{chat['id']}"
                return await sse_turn("GET", url, params={"token": account.access})

            await measure("004", inference_turn)
        if "003" in keys:
            session = Session(account, server.url)
            ws = await session.open()
            try:
                await measure("003", lambda: session.stream(ws))
            finally:
                await session.cleanup([ws])
    return out


QUESTION_TURN = "bench turn"


def query_counts(upstream_base_url: str, turns: int) -> dict:
    """SQL queries and CPU per turn, counted in-process by bench/relay_turns.py (its own Django, its own DB)."""
    with tempfile.TemporaryDirectory(prefix="bytchat-turns-") as data_dir:
        env = {
            **{k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ},
            "DATA_DIR": data_dir,
            "DEBUG": "False",
            "SECRET_KEY": os.urandom(40).hex(),
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "False",
            "SECURE_HSTS_SECONDS": "0",
            "LLM_PROVIDER": "custom",
            "LLM_MODEL": TURN_MODEL,
            "CUSTOM_LLM_BASE_URL": upstream_base_url,
            "CUSTOM_LLM_API_KEY": "bench-key",
            "WS_MESSAGES_PER_MINUTE": "100000",
            "LOG_LEVEL": "WARNING",
        }
        done = subprocess.run(  # noqa: S603 (this interpreter, our own script)
            [sys.executable, "-m", "bench.relay_turns", "--turns", str(turns)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- report ------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def table(bench: Bench) -> tuple[list[str], dict[tuple[str, int], Row]]:
    rows: dict[tuple[str, int], Row] = {k: summarise(v) for k, v in bench.runs.items()}
    lines = [
        "| surface | streams | TTFT p50 | TTFT p95 | +TTFT p50 vs direct | gap p99 | tokens/s | vs direct "
        "| server CPU ms / 1k tokens | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in bench.args.concurrency:
        direct = rows.get(("direct", level))
        for key in bench.surfaces:
            row = rows.get((key, level))
            if row is None:
                continue
            plus = rel = "—"
            if direct and key != "direct":
                plus = f"{row.ttft_p50 - direct.ttft_p50:+,.1f}"
                rel = f"{row.tok_s / direct.tok_s:.2f}" if direct.tok_s else "—"
            elif key == "direct":
                rel = "1.00"
            lines.append(
                f"| {row.surface} | {level} | {fmt(row.ttft_p50)} | {fmt(row.ttft_p95)} | {plus} | "
                f"{fmt(row.gap_p99)} | {fmt(row.tok_s, 0)} | {rel} | {fmt(row.cpu_1k, 0)} | "
                f"{row.errors}/{row.streams} |"
            )
    return lines, rows


def goals(bench: Bench, rows: dict[tuple[str, int], Row]) -> list[str]:
    """Each goal of the issue against this run. TTFT is compared at p50; CPU per 1k tokens is judged at the
    highest concurrency measured (at 1 stream every token is a wake-up of its own, for any relay)."""
    out = []
    levels = bench.args.concurrency

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "MISSED")

    for key in bench.surfaces:
        if key == "direct":
            continue
        name = SURFACES[key]
        parts = []
        for level, limit in TTFT_GOALS[bool(bench.args.cluster)].items():
            row, direct = rows.get((key, level)), rows.get(("direct", level))
            if row and direct:
                plus = row.ttft_p50 - direct.ttft_p50
                parts.append(f"+TTFT p50 at {level} {plus:+,.1f} ms (goal ≤ {limit:g}) {verdict(plus <= limit)}")
        ratios = {
            lvl: rows[(key, lvl)].tok_s / rows[("direct", lvl)].tok_s
            for lvl in levels
            if (key, lvl) in rows and ("direct", lvl) in rows
        }
        if ratios:
            shown = "/".join(f"{r:.2f}" for r in ratios.values())
            ok = min(ratios.values()) >= GOALS["throughput"]
            parts.append(f"throughput {shown} of direct at {'/'.join(map(str, ratios))} (goal ≥ 0.95) {verdict(ok)}")
        cpus = {lvl: rows[(key, lvl)].cpu_1k for lvl in levels if (key, lvl) in rows}
        cpus = {lvl: c for lvl, c in cpus.items() if c is not None}
        if cpus:
            shown = "/".join(f"{c:,.0f}" for c in cpus.values())
            top = max(cpus)
            parts.append(
                f"CPU {shown} ms per 1k tokens at {'/'.join(map(str, cpus))} "
                f"(goal ≤ 100, judged at {top}) {verdict(cpus[top] <= GOALS['cpu_1k'])}"
            )
        errors = sum(rows[(key, lvl)].errors for lvl in levels if (key, lvl) in rows)
        parts.append(f"stream errors {errors}")
        out.append(f"- {name}: " + "; ".join(parts))
    if bench.turns:
        for key in (k for k in SURFACES if k in bench.turns):
            turn = bench.turns[key]
            ok = turn["cpu_ms"] <= GOALS["cpu_turn"]
            out.append(f"- {SURFACES[key]} turn: {turn['cpu_ms']:.1f} CPU ms (goal ≤ 5) {verdict(ok)}")
        for name, q in bench.turns.get("queries", {}).get("results", {}).items():
            constant = "-" not in str(q["per_turn"])
            out.append(
                f"- {name}: {q['queries']} queries per turn, "
                f"{'constant' if constant else 'NOT constant'} over the turns of one chat (first turn {q['first']})"
            )
    if bench.sessions:
        s = bench.sessions
        errors = sum(s["open_errors"].values()) + sum(s["answer_errors"].values())
        out.append(f"- {s['n']} WebSocket sessions without an error: {errors} errors {verdict(errors == 0)}")
    return out


def print_profile(path: Path, top: int) -> None:
    if not path.exists():
        print(f"(no profile written at {path})")
        return
    print(f"\nServer profile ({path}), top {top} by own time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    print(f"top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


# -- main --------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="concurrency 1 and 20, 100 sessions, 10 turns")
    parser.add_argument("--surfaces", default="direct,001,003,004", help="comma-separated: direct,001,003,004")
    parser.add_argument("--concurrency", default=None, help="comma-separated stream counts (default 1,20,100)")
    parser.add_argument("--repeats", type=int, default=None, help="bursts per surface and level (default 3, quick 2)")
    parser.add_argument(
        "--min-samples", type=int, default=None, help="at least this many streams per surface and level (default 10)"
    )
    parser.add_argument("--sessions", type=int, default=None, help="idle-then-active WebSocket sessions (default 1000)")
    parser.add_argument("--sessions-idle", type=float, default=5.0, help="seconds the sessions stay idle")
    parser.add_argument("--sessions-batch", type=int, default=0, help="ask in batches of this many (0: all at once)")
    parser.add_argument("--turns", type=int, default=None, help="turns per surface for the fixed cost (default 20)")
    parser.add_argument("--setup-parallel", type=int, default=16, help="untimed setup calls in flight at once")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds one burst may take")
    parser.add_argument("--sessions-budget", type=float, default=300.0, help="seconds the sessions' answers may take")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the server under cProfile (its main thread only; py-spy sees all) and write the stats here",
    )
    parser.add_argument("--profile-top", type=int, default=30, help="functions to print from the profile")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="extra server setting (repeatable)"
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=None,
        help="the ASGI server of the one process (default: SERVER_LOOP's loop under uvicorn, as make run)",
    )
    parser.add_argument(
        "--cluster",
        type=int,
        default=0,
        metavar="N",
        help="measure `make cluster` (nginx, N server processes) instead of one process; needs DATABASE_URL"
        " (PostgreSQL) and REDIS_URL",
    )
    parser.add_argument("--deadline", type=float, default=1500.0, help="overall time limit in seconds")
    parser.add_argument(
        "--metrics-cost",
        action="store_true",
        help="compare server CPU per 1k tokens with metrics off (METRICS_ENABLED=False) and on (multiprocess mode)"
        " in one run, the two servers taking each burst together (bench/relay_metrics.py); default 4 repeats"
        " (quick), 8",
    )
    parser.add_argument(
        "--scrape-every", type=float, default=15.0, help="with --metrics-cost: seconds between scrapes (0: none)"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="with --metrics-cost: metrics off on both servers (an A/A run: the difference the harness alone gives)",
    )
    args = parser.parse_args()
    args.surfaces = [s.strip() for s in args.surfaces.split(",") if s.strip()]
    unknown = set(args.surfaces) - set(SURFACES)
    if unknown:
        parser.error(f"unknown surfaces: {', '.join(sorted(unknown))}")
    args.surfaces = [s for s in SURFACES if s in args.surfaces]
    default_levels = "1,20" if args.quick else "1,20,100"
    args.concurrency = [int(x) for x in (args.concurrency or default_levels).split(",") if x.strip()]
    if args.repeats is None:
        # A difference of a few % needs more bursts than a figure on its own.
        args.repeats = (4 if args.quick else 8) if args.metrics_cost else (2 if args.quick else 3)
    if args.min_samples is None:
        args.min_samples = 5 if args.quick else 10
    if args.sessions is None:
        args.sessions = 100 if args.quick else 1000
    if args.turns is None:
        args.turns = 10 if args.quick else 20
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    if args.cluster and not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")):
        parser.error("--cluster needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    if args.cluster and args.profile:
        parser.error("--profile profiles one process; not with --cluster")
    if args.metrics_cost and (args.cluster or args.profile):
        parser.error("--metrics-cost compares two single processes; not with --cluster or --profile")
    return args


def bytchat(args: argparse.Namespace, data_dir: Path, upstream: ServerProcess, env: dict[str, str]) -> BytchatServer:
    """One server process, or make cluster's nginx and N of them (--cluster N)."""
    data_dir.mkdir()
    if args.cluster:
        return ClusterServer(data_dir, upstream.base_url, env, args.cluster)
    loop = os.environ.get("SERVER_LOOP") or LOOPS[0]  # make run's loop, as config/server.py chooses it
    server = args.server or ("uvicorn-uvloop" if loop == "uvloop" else "uvicorn")
    return BytchatServer(data_dir, upstream.base_url, env, args.profile, server)


async def amain(args: argparse.Namespace, upstream: ServerProcess, data_root: Path) -> int:
    status = 0
    server = bytchat(args, data_root / "main", upstream, {"WS_MESSAGES_PER_MINUTE": "100000", **args.server_env})
    server.start()
    shape = f"make cluster, nginx and {args.cluster} server processes" if args.cluster else server.server
    print(f"Bytchat ({shape}) pid {server.pid} on {server.url}; fake upstream pid {upstream.pid}", flush=True)
    bench = Bench(args, upstream, server)
    try:
        async with asyncio.timeout(args.deadline):
            async with http_session() as http, http_session() as direct_http:
                account = await bench.setup(http, direct_http)
                await bench.warm_up()
                idle0 = server.cpu_seconds()
                await asyncio.sleep(2)
                print(f"  server idle CPU: {(server.cpu_seconds() - idle0) / 2 * 1000:.1f} ms/s", flush=True)
                await bench.levels()
                if args.sessions and "003" in bench.surfaces:
                    await bench.idle_then_active(account)
    except TimeoutError:
        print(f"!! overall deadline of {args.deadline:g}s hit; partial results below")
        status = 1
    finally:
        server.stop()
    log_lines = server.log_tail(200_000).splitlines()
    errors_in_log = [line for line in log_lines if " ERROR " in line or "Traceback" in line]
    if errors_in_log:  # the first error with what follows it (its traceback), for the report
        first = log_lines.index(errors_in_log[0])
        errors_in_log[0] = "\n".join(log_lines[first : first + 25])
    if args.turns:
        keys = [k for k in bench.surfaces if k != "direct"]
        turn_env = {"LLM_MODEL": TURN_MODEL, "WS_MESSAGES_PER_MINUTE": "100000", **args.server_env}
        turn_server = bytchat(args, data_root / "turns", upstream, turn_env)
        turn_server.start()
        try:
            print(f"  measuring the fixed cost of a turn ({args.turns} turns per surface, {TURN_MODEL}) ...")
            bench.turns = await turn_costs(turn_server, keys, args.turns)
        except Exception as exc:
            print(f"!! per-turn CPU failed: {describe(exc)}")
            status = 1
        finally:
            turn_server.stop()
        bench.turns = bench.turns or {}
        bench.turns["queries"] = await asyncio.to_thread(query_counts, upstream.base_url, min(args.turns, 10))
    report(bench, errors_in_log)
    if args.profile:
        print_profile(args.profile, args.profile_top)
    return status


def report(bench: Bench, errors_in_log: list[str]) -> None:
    args = bench.args
    lines, rows = table(bench)
    print()
    print(
        f"## Relay: {TOKENS} tokens {MODEL.rsplit('-', 1)[1]} ms apart, burst of n streams; "
        f"{os.cpu_count()} cores, {date.today().isoformat()}"
    )
    print()
    print("\n".join(lines))
    print()
    print("TTFT and gaps in ms. tokens/s = all tokens / summed burst wall time; vs direct = that ratio to direct")
    if args.cluster:
        print(
            f"at the same concurrency; server CPU = the {args.cluster} server processes of make cluster (all threads),"
        )
        print("summed, during the bursts; nginx (in front of them) is not included.")
    else:
        print("at the same concurrency; server CPU = the server process (all threads) during the bursts.")
    m = bench.machine
    if m["wall"]:
        others = max(0.0, m["busy"] - m["ours"])
        share = others / (m["wall"] * (os.cpu_count() or 1)) * 100
        print(
            f"  other processes on the machine used {others:.1f} CPU s during the {m['wall']:.0f} s of bursts "
            f"({share:.0f}% of its cores)" + (": figures disturbed, rerun on a quiet machine" if share > 10 else "")
        )
    for level, samples in sorted(bench.upstream_cpu.items()):
        cpu = sum(c for c, _ in samples)
        tokens = sum(t for _, t in samples)
        if tokens:
            print(f"  (the fake upstream itself used {cpu / tokens * 1e6:.0f} CPU ms per 1k tokens at {level} streams)")
    for (key, level), row in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if row.error_kinds:
            kinds = ", ".join(f"{n}x {kind}" for kind, n in row.error_kinds.most_common(4))
            print(f"  errors {SURFACES[key]} x{level}: {kinds}")
    for key, why in bench.skipped.items():
        print(f"  not measured: {SURFACES[key]} ({why})")
    print()
    print("Reference, same kind of upstream on these machines (from the issue): TTFT added at 1 / 20 / 100 streams,")
    print("throughput vs direct at 100, CPU ms per 1k tokens:")
    for name, a, b, c, thr, cpu in REFERENCES:
        print(f"  {name}: {a} / {b} / {c} ms, {thr}, {cpu}")
    if bench.sessions:
        s = bench.sessions
        mode = "all at once" if s["batch"] >= s["n"] else f"in batches of {s['batch']}"
        print()
        print(f"### {s['n']} idle-then-active WebSocket sessions (asked {mode})")
        print()
        print(
            f"- opened in {s['open_s']:.1f} s ({args.setup_parallel} in flight), "
            f"errors opening: {sum(s['open_errors'].values())}"
            + (f" ({dict(s['open_errors'].most_common(3))})" if s["open_errors"] else "")
        )
        rss = (
            f"; server RSS {s['rss0']:.0f} -> {s['rss_idle']:.0f} MB"
            if s["rss0"] is not None and s["rss_idle"] is not None
            else ""
        )
        print(f"- idle {s['idle_s']:g} s: server CPU {s['idle_cpu_ms']:.0f} ms{rss}")
        print(
            f"- answers completed {s['completed']}/{s['n']}, errors {sum(s['answer_errors'].values())}"
            + (f" ({dict(s['answer_errors'].most_common(3))})" if s["answer_errors"] else "")
        )
        print(
            f"- TTFT p50 {fmt(s['ttft_p50'])} ms, p95 {fmt(s['ttft_p95'])} ms, gap p99 {fmt(s['gap_p99'])} ms; "
            f"{fmt(s['tok_s'], 0)} tokens/s over {s['wall']:.1f} s; server CPU {fmt(s['cpu_1k'], 0)} ms / 1k tokens"
        )
    if bench.turns:
        print()
        print(f"### Fixed cost of a chat turn ({TURN_MODEL}: one token, so the turn's own work dominates)")
        print()
        for key in (k for k in SURFACES if k in bench.turns):
            turn = bench.turns[key]
            print(
                f"- {SURFACES[key]}: server CPU {turn['cpu_ms']:.1f} ms per turn, "
                f"{turn['wall_ms']:.1f} ms wall per turn, errors {turn['errors']}"
            )
        print(
            "  (the server's CPU over sequential turns in one conversation, divided by the turns; a 004 turn is its "
            "two documented calls, conversations/create + inference)"
        )
        queries = bench.turns.get("queries", {})
        if "error" in queries:
            print(f"- query count failed: {queries['error']}")
        else:
            for name, q in queries.get("results", {}).items():
                print(
                    f"- {name}: {q['queries']} SQL queries per turn (first turn of a chat {q['first']}, "
                    f"then {q['per_turn']}), {q['connects']:g} database connections opened per turn, "
                    f"{q['cpu_ms']:.1f} ms CPU in-process"
                )
            if queries.get("method"):
                print(f"  ({queries['method']})")
    print()
    print("### Goals")
    print()
    print("\n".join(goals(bench, rows)))
    if errors_in_log:
        print()
        print(f"Server log: {len(errors_in_log)} ERROR/Traceback lines, the first:\n{errors_in_log[0][:3000]}")


def main() -> int:
    args = parse_args()
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("Django", "uvicorn", "channels", "openai", "aiohttp"))
    print(
        f"Python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs; surfaces {args.surfaces}, "
        f"concurrency {args.concurrency}, {args.repeats} burst(s) (at least {args.min_samples} streams) each",
        flush=True,
    )
    upstream = ServerProcess().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bytchat-relay-") as data_root:
            if args.metrics_cost:
                return asyncio.run(metrics_cost(args, upstream, Path(data_root)))
            return asyncio.run(amain(args, upstream, Path(data_root)))
    finally:
        with contextlib.suppress(Exception):
            upstream.stop()


if __name__ == "__main__":
    sys.exit(main())
