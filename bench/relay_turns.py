"""SQL queries per chat turn, counted in-process; bench/relay.py runs this with its environment and reads the last line.

Every database connection any thread opens gets an execute wrapper (installed from the
`connection_created` signal), so queries made in sync_to_async threads count too, as well as
the connections opened. Turns run one at a time in one conversation; the first turn of a chat
is reported apart (it creates the chat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time

from bench.common import django_setup

django_setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.test import AsyncClient  # noqa: E402

_lock = threading.Lock()
_counters = {"queries": 0, "connects": 0}
_statements: list[str] = []  # with --sql: each statement of the turn being measured


def _count_query(execute, sql, params, many, context):
    with _lock:
        _counters["queries"] += 1
        _statements.append(sql)
    return execute(sql, params, many, context)


def _on_connect(sender, connection, **kwargs) -> None:
    with _lock:
        _counters["connects"] += 1
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


connection_created.connect(_on_connect)
SHOW_SQL = "--sql" in sys.argv


def snapshot() -> tuple[int, int]:
    with _lock:
        return _counters["queries"], _counters["connects"]


async def measure(turn, turns: int, name: str) -> dict:
    """`turn()` once (a chat's first turn), then `turns` more; queries and connects per turn."""
    q0, _c0 = snapshot()
    await turn()
    q1, _c1 = snapshot()
    counts, connects = [], []
    cpu0 = time.process_time()
    for _ in range(turns):
        qa, ca = snapshot()
        _statements.clear()
        await turn()
        qb, cb = snapshot()
        counts.append(qb - qa)
        connects.append(cb - ca)
    cpu = time.process_time() - cpu0
    if SHOW_SQL:
        print(f"{name}: the last turn's statements", file=sys.stderr)
        print("\n".join(f"  {sql[:160]}" for sql in _statements), file=sys.stderr)
    later = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    return {
        "first": q1 - q0,
        "per_turn": later,
        "queries": max(counts),
        "connects": sum(connects) / len(connects),
        "cpu_ms": cpu / turns * 1000,
    }


async def read_all(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


async def main(turns: int) -> dict:
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from bots.models import Bot
    from chats.runs.reader import run_to_end
    from chats.runs.runner import run_launch
    from chats.services import turn_start
    from chats.streaming import released

    user = await sync_to_async(User.objects.create_user)(email="turns@example.com", password="x-turns-password-1")  # noqa: S106
    bot = await Bot.objects.acreate(owner=user, name="turns")
    token = str(AccessToken.for_user(user))
    results: dict[str, dict] = {}

    # The engine alone: chats.services.turn_start, then the run (chats/runs) read to its `done`.
    state: dict = {}

    async def engine_turn() -> None:
        reply, _task_type = await released(turn_start)(user=user, prompt="bench turn", chat=state.get("chat"), bot=bot)
        state["chat"] = reply.chat
        await run_to_end(run_launch(reply).run)

    results["engine (turn_start + run)"] = await measure(engine_turn, turns, "engine")

    client = AsyncClient()
    auth = {"Authorization": f"Bearer {token}"}
    chat_001: dict = {}

    async def bot_chat_turn() -> None:
        body = {"query": "bench turn", **chat_001}
        response = await client.post(
            f"/chat/{bot.pk}", body, content_type="application/json", headers={**auth, "Accept": "text/event-stream"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"001: HTTP {response.status_code} {response.content[:200]!r}")
        await read_all(response)
        chat_001["chat_id"] = response["X-Chat-Id"]

    results["001 POST /chat/{bot_id}"] = await measure(bot_chat_turn, turns, "001")

    response = await client.post("/chats/create", {"name": "turns"}, content_type="application/json", headers=auth)
    if response.status_code == 201:
        chat_id = response.json()["id"]

        async def inference_turn() -> None:
            body = {"chat_id": chat_id, "role": "Human", "message": "bench turn"}
            created = await client.post("/conversations/create", body, content_type="application/json", headers=auth)
            if created.status_code != 201:
                raise RuntimeError(f"004 create: HTTP {created.status_code}")
            answer = await AsyncClient().get(f"/conversations/inference/{chat_id}", {"token": token})
            if answer.status_code != 200:
                raise RuntimeError(f"004 inference: HTTP {answer.status_code}")
            await read_all(answer)

        results["004 conversations/create + inference"] = await measure(inference_turn, turns, "004")

    session = await client.post("/chat/sessions", {}, content_type="application/json", headers=auth)
    if session.status_code in (200, 201):
        from channels.testing import WebsocketCommunicator

        from config.asgi import application

        url = session.json()["websocket_url"]
        path = "/" + url.split("/", 3)[3]
        if "?" not in path:
            path += f"?token={token}"
        communicator = WebsocketCommunicator(
            application, path, headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")]
        )
        connected, _subprotocol = await communicator.connect(timeout=10)
        if connected:
            await communicator.receive_json_from(timeout=10)  # the system frame

            async def session_turn() -> None:
                await communicator.send_json_to({"type": "message", "content": "bench turn"})
                while True:
                    frame = await communicator.receive_json_from(timeout=30)
                    if frame["type"] == "done":
                        return
                    if frame["type"] == "error":
                        raise RuntimeError(f"003: {frame}")

            results["003 WebSocket message"] = await measure(session_turn, turns, "003")
            await communicator.disconnect()
    return {
        "results": results,
        "method": (
            "in-process Django (SQLite file, DEBUG off); an execute wrapper on every connection any thread opens "
            f"counts queries; {turns} turns in one conversation after its first; surfaces through Django's "
            "AsyncClient / Channels' WebsocketCommunicator; CPU is this whole process (client included)"
        ),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--sql", action="store_true", help="print each surface's last turn's SQL on stderr")
    args = parser.parse_args()
    call_command("migrate", verbosity=0, interactive=False)
    connections.close_all()
    out = asyncio.run(main(args.turns))
    print(json.dumps(out))
