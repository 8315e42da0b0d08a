"""The openai SDK's own CPU per streamed call, as bots/llm/openai.py uses it, against reading the same stream raw.

Run: .venv/bin/python -m bench.relay_sdk. A companion of bench/relay.py: the fake upstream sends its
tokens 0 ms apart, so the figures are the client's parsing and request building, not waiting. With
1 token the cost is the request (the SDK transforms `messages` against its TypedDicts first); with 200,
the per-chunk parsing on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp
import openai

from bench.common import ServerProcess


def history(n: int) -> list[dict[str, str]]:
    """A system prompt and n turns, as the engine sends them (CHAT_HISTORY_MESSAGES caps n at 20, plus the question)."""
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hello there " * 5} for i in range(n)]
    return [{"role": "system", "content": "You are a helpful assistant."}, *turns]


async def bench(base_url: str, sizes: list[int], calls: int) -> None:
    client = openai.AsyncOpenAI(
        api_key="x",
        base_url=base_url,
        max_retries=2,
        http_client=openai.DefaultAioHttpClient(timeout=openai.Timeout(60, connect=5)),
    )
    session = aiohttp.ClientSession()
    options = {"stream": True, "stream_options": {"include_usage": True}}

    async def sdk(messages, model):  # what OpenAICompatibleProvider.astream does
        stream = await client.chat.completions.create(model=model, messages=messages, **options)
        async for _chunk in stream:
            pass
        await stream.close()

    async def sdk_untransformed(messages, model):  # the same call, `messages` sent as extra_body
        stream = await client.chat.completions.create(
            model=model, messages=[], extra_body={"messages": messages}, **options
        )
        async for _chunk in stream:
            pass
        await stream.close()

    async def sdk_raw(messages, model):  # the SDK's request (retries, timeouts, errors), chunks read as JSON
        create = client.chat.completions.with_streaming_response.create
        async with create(model=model, messages=[], extra_body={"messages": messages}, **options) as response:
            async for line in response.iter_lines():
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    json.loads(line[5:])

    async def plain(messages, model):  # no SDK at all
        body = {"model": model, "messages": messages, **options}
        async with session.post(f"{base_url}/chat/completions", json=body) as response:
            async for line in response.content:
                if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                    json.loads(line[5:])

    ways = [
        ("openai SDK, as bots/llm/openai.py calls it", sdk),
        ("openai SDK, messages passed as extra_body", sdk_untransformed),
        ("openai SDK raw response, chunks json.loads", sdk_raw),
        ("aiohttp, chunks json.loads", plain),
    ]
    print("| messages | way | CPU ms per call, 1 token | CPU ms per call, 200 tokens | µs per chunk |")
    print("|---|---|---|---|---|")
    try:
        for size in sizes:
            messages = history(size)
            for name, way in ways:
                cost = {}
                for tokens in (1, 200):
                    model = f"fake-tokens-{tokens}-0"
                    for _ in range(5):  # warm: connections, caches
                        await way(messages, model)
                    n = calls if tokens == 1 else max(1, calls // 10)
                    t0 = time.process_time()
                    for _ in range(n):
                        await way(messages, model)
                    cost[tokens] = (time.process_time() - t0) / n * 1000
                per_chunk = (cost[200] - cost[1]) / 199 * 1000
                print(f"| {len(messages)} | {name} | {cost[1]:.2f} | {cost[200]:.2f} | {per_chunk:.0f} |", flush=True)
    finally:
        await client.close()
        await session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", default="1,21", help="comma-separated turns of history before the question")
    parser.add_argument("--calls", type=int, default=100, help="1-token calls per measurement (200-token: a tenth)")
    args = parser.parse_args()
    server = ServerProcess().start()
    try:
        asyncio.run(bench(server.base_url, [int(x) for x in args.history.split(",")], args.calls))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
