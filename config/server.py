"""The ASGI server that `make run`, the end-to-end tests and the benchmark start: uvicorn and its flags, in one place.

`python -m config.server` becomes that server (HOST, PORT, NUM_PROXIES and DRAIN_SECONDS from the environment
or `.env`); scripts/cluster.py starts several on sockets it holds (`fd`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import environ

APPLICATION = "config.asgi:application"
# A stopping process's budget for its answers (settings.DRAIN_SECONDS reads the same variable): uvicorn
# waits this long for open requests (streams), config/lifespan.py gives the runs what is left of it.
DRAIN_SECONDS_DEFAULT = 30.0


# The event loop (SERVER_LOOP): uvloop (libuv) by default, which spent 4 ms less server CPU per chat turn
# than asyncio's own loop and as much per relayed token (bench/relay.py, docs/benchmarks.md);
# SERVER_LOOP=asyncio goes back to it.
LOOPS = ("uvloop", "asyncio")


def uvicorn_args(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    num_proxies: int = 0,
    fd: int | None = None,
    drain_seconds: float = DRAIN_SECONDS_DEFAULT,
    loop: str | None = None,
) -> list[str]:
    """uvicorn's arguments for Bytchat (daphne's former flags, same meaning); on a listening socket
    inherited as `fd` instead of HOST:PORT when given."""
    loop = loop or os.environ.get("SERVER_LOOP") or LOOPS[0]
    if loop not in LOOPS:
        raise SystemExit(f"SERVER_LOOP must be one of {', '.join(LOOPS)}, not {loop!r}")
    return [
        APPLICATION,
        *(["--fd", str(fd)] if fd is not None else ["--host", host, "--port", str(port)]),
        # httptools hands the body to the app as it arrives, so config/body_limit.py refuses an oversized
        # one before it is read; daphne reads and parses it whole first (issue 12). The subclass answers a
        # request its parser refuses with the JSON 400.
        "--http", "config.http_protocol:HttpToolsProtocol", "--ws", "websockets-sansio", "--loop", loop,
        "--ws-max-size", "262144", "--ws-ping-interval", "20", "--ws-ping-timeout", "30",
        "--ws-per-message-deflate", "false",
        # uvicorn rounds down to whole seconds; at least one.
        "--timeout-graceful-shutdown", str(max(1, int(drain_seconds))),
        # uvicorn's default of 5 s idle closes pooled client connections just as they are reused (a reset
        # in bench/relay.py); a proxy's upstream keep-alive (deploy/nginx: 4 s) must stay below this.
        "--timeout-keep-alive", "75",
        # config/lifespan.py: on stop, the runs this process still writes end `interrupted`.
        "--lifespan", "on",
        # config/request_log.py logs each request without its query string (tokens travel there).
        "--no-access-log",
        # Behind NUM_PROXIES proxies: X-Forwarded-For/-Proto, trusted from FORWARDED_ALLOW_IPS (uvicorn reads it).
        "--proxy-headers" if num_proxies else "--no-proxy-headers",
    ]  # fmt: skip


def command(**options: Any) -> list[str]:
    """The command line that starts the server with this interpreter (`options`: uvicorn_args')."""
    return [sys.executable, "-m", "uvicorn", *uvicorn_args(**options)]


def main() -> None:
    env = environ.Env()
    dotenv = Path(__file__).resolve().parent.parent / ".env"
    if dotenv.exists():
        env.read_env(dotenv, overwrite=False)
    argv = command(
        host=env.str("HOST", default="127.0.0.1"),
        port=env.int("PORT", default=8000),
        num_proxies=env.int("NUM_PROXIES", default=0),
        drain_seconds=env.float("DRAIN_SECONDS", default=DRAIN_SECONDS_DEFAULT),
    )
    # Replace this process, so a supervisor's pid and signals reach the server itself.
    os.execv(argv[0], argv)  # noqa: S606


if __name__ == "__main__":
    main()
