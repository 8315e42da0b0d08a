"""AsyncOpenAI stream relay speed, aiohttp vs httpx2 transport. Run: .venv/bin/python -m bench.provider_transport"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import openai

from bench.common import ServerProcess, StreamResult, pct

TRANSPORTS: dict[str, Callable[..., object]] = {
    "aiohttp": openai.DefaultAioHttpClient,
    "httpx2": openai.DefaultAsyncHttpxClient,
}
CLIENT_TIMEOUT = openai.Timeout(30.0, connect=5.0)


# -- measurement -------------------------------------------------------------------------------
@dataclass
class RunResult:
    transport: str
    level: int
    wall: float
    cpu: float
    server_cpu: float | None
    streams: list[StreamResult]


async def one_stream(client: openai.AsyncOpenAI, model: str, expected: int) -> StreamResult:
    result = StreamResult()
    usage_tokens = None
    start = time.perf_counter()
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "bench"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                now = time.perf_counter()
                if chunk.usage is not None:
                    usage_tokens = chunk.usage.completion_tokens
                if chunk.choices and chunk.choices[0].delta.content:
                    result.token(start, now)
    except asyncio.CancelledError:
        result.error = "timeout"
        raise
    except Exception as exc:
        result.error = type(exc).__name__
        return result
    if result.tokens != expected or usage_tokens != expected:
        result.error = f"short({result.tokens}/{usage_tokens})"
    return result


async def run_level(
    transport: str, level: int, tokens: int, gap_ms: int, server: ServerProcess, budget: float
) -> RunResult:
    http_client = TRANSPORTS[transport](trust_env=False)
    client = openai.AsyncOpenAI(
        api_key="x", base_url=server.base_url, timeout=CLIENT_TIMEOUT, max_retries=0, http_client=http_client
    )
    model = f"fake-tokens-{tokens}-{gap_ms}"
    try:
        # One unmeasured request: opens a pooled connection and warms the SDK's parsing caches.
        warm = await one_stream(client, "fake-tokens-1-0", 1)
        if warm.error:
            raise RuntimeError(f"{transport} warm-up failed: {warm.error}")
        gc.collect()
        holders = [StreamResult() for _ in range(level)]

        async def tracked(i: int) -> None:
            holders[i] = await one_stream(client, model, tokens)

        server_cpu0 = server.cpu_seconds()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(tracked(i)) for i in range(level)]
        _done, pending = await asyncio.wait(tasks, timeout=budget)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        server_cpu1 = server.cpu_seconds()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for i, task in enumerate(tasks):
            if task in pending:
                holders[i].error = "timeout"
        server_cpu = None if server_cpu0 is None or server_cpu1 is None else server_cpu1 - server_cpu0
        return RunResult(transport, level, wall, cpu, server_cpu, holders)
    finally:
        await client.close()


# -- report ------------------------------------------------------------------------------------
@dataclass
class Row:
    transport: str
    level: int
    ttft_p50: float
    ttft_p95: float
    gap_p99: float
    wall: float
    tok_s: float
    cpu_per_1k: float
    server_pct: float
    errors: int


def summarise(runs: list[RunResult]) -> Row:
    streams = [s for r in runs for s in r.streams]
    ttfts = [s.ttft * 1000 for s in streams if s.ttft is not None]
    gaps = [g * 1000 for s in streams for g in s.gaps]
    tokens = sum(s.tokens for s in streams)
    walls = sorted(r.wall for r in runs)
    total_wall = sum(walls)
    server = [r.server_cpu for r in runs if r.server_cpu is not None]
    return Row(
        transport=runs[0].transport,
        level=runs[0].level,
        ttft_p50=pct(ttfts, 50),
        ttft_p95=pct(ttfts, 95),
        gap_p99=pct(gaps, 99),
        wall=walls[len(walls) // 2],
        tok_s=tokens / total_wall if total_wall else math.nan,
        cpu_per_1k=sum(r.cpu for r in runs) / tokens * 1000 if tokens else math.nan,
        server_pct=sum(server) / total_wall * 100 if server and len(server) == len(runs) else math.nan,
        errors=sum(1 for s in streams if s.error),
    )


def print_table(results: dict[tuple[str, int], list[RunResult]], levels: list[int]) -> None:
    header = (
        f"{'transport':<9} {'streams':>7} {'TTFT p50':>9} {'TTFT p95':>9} {'gap p99':>8} {'wall s':>7} "
        f"{'tok/s':>8} {'CPU s/1k tok':>12} {'srv CPU%':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    rows: dict[tuple[str, int], Row] = {}
    for level in levels:
        for transport in TRANSPORTS:
            runs = results.get((transport, level))
            if not runs:
                continue
            row = rows[(transport, level)] = summarise(runs)
            print(
                f"{row.transport:<9} {row.level:>7} {row.ttft_p50:>9.1f} {row.ttft_p95:>9.1f} {row.gap_p99:>8.1f} "
                f"{row.wall:>7.2f} {row.tok_s:>8.0f} {row.cpu_per_1k:>12.4f} {row.server_pct:>8.0f} {row.errors:>6}"
            )
    print("(times in ms unless noted; wall s = median per run; tok/s, CPU and srv CPU% pooled over runs)")
    print()
    print("aiohttp relative to httpx2 (negative = aiohttp lower):")
    for level in levels:
        a, h = rows.get(("aiohttp", level)), rows.get(("httpx2", level))
        if not a or not h:
            continue

        def rel(x: float, y: float) -> str:
            return f"{(x / y - 1) * 100:+.0f}%" if y else "n/a"

        print(
            f"  {level:>3} streams: CPU/1k tok {rel(a.cpu_per_1k, h.cpu_per_1k)}, "
            f"TTFT p50 {rel(a.ttft_p50, h.ttft_p50)}, gap p99 {rel(a.gap_p99, h.gap_p99)}, "
            f"tok/s {rel(a.tok_s, h.tok_s)}"
        )


# -- main --------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 tokens per stream, one repeat")
    parser.add_argument("--levels", default="1,20,100", help="comma-separated concurrent stream counts")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per stream (default 200, quick 50)")
    parser.add_argument("--gap-ms", type=int, default=10, help="server delay between tokens")
    parser.add_argument("--repeats", type=int, default=None, help="runs per transport and level (default 3)")
    parser.add_argument("--deadline", type=float, default=170.0, help="overall time limit in seconds")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if args.tokens is None:
        args.tokens = 50 if args.quick else 200
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


async def bench(args: argparse.Namespace, server: ServerProcess, results: dict) -> None:
    budget = args.tokens * args.gap_ms / 1000 * 4 + 15
    names = list(TRANSPORTS)
    for repeat in range(args.repeats):
        for level in args.levels:
            # Alternate which transport goes first so neither always runs on a "warmer" machine.
            order = names if (repeat + level) % 2 == 0 else names[::-1]
            for transport in order:
                run = await run_level(transport, level, args.tokens, args.gap_ms, server, budget)
                results.setdefault((transport, level), []).append(run)
                errors = sum(1 for s in run.streams if s.error)
                print(
                    f"  run {repeat + 1}/{args.repeats} {transport:<7} x{level:<3} wall {run.wall:5.2f}s "
                    f"cpu {run.cpu:5.2f}s errors {errors}",
                    flush=True,
                )


async def amain(args: argparse.Namespace, server: ServerProcess) -> int:
    results: dict[tuple[str, int], list[RunResult]] = {}
    status = 0
    try:
        async with asyncio.timeout(args.deadline):
            await bench(args, server, results)
    except TimeoutError:
        print(f"!! overall deadline of {args.deadline:g}s hit; partial results below")
        status = 1
    print()
    print_table(results, args.levels)
    return status


def main() -> int:
    args = parse_args()
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("openai", "httpx2", "aiohttp"))
    print(
        f"Python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs; "
        f"{args.tokens} tokens x {args.gap_ms} ms per stream, levels {args.levels}, {args.repeats} repeat(s)"
    )
    server = ServerProcess().start()
    print(f"fake server pid {server.pid} on {server.base_url}")
    try:
        return asyncio.run(amain(args, server))
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
