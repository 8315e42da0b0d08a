"""What the benchmarks share: the project's Django, the fake upstream in a process of its own, a
stream's timings and percentiles.

The benchmarks run as modules from the repository root (`.venv/bin/python -m bench.relay`), so the
project and `bench` import without any path set-up.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def django_setup(*, temp_prefix: str | None = None) -> Path:
    """Set Django up once; returns the project root. With `temp_prefix`, a throwaway SQLite database
    unless DATABASE_URL names one; without it, whatever the environment says."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if temp_prefix and not os.environ.get("DATABASE_URL"):
        os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix=temp_prefix)
    import django

    django.setup()
    return ROOT


# -- the fake upstream in its own process --------------------------------------------------------
def _serve(conn) -> None:
    """Child process: run FakeOpenAI on a free 127.0.0.1 port, report the port, stop when told."""
    from tests.fake_openai import FakeOpenAI

    # Streams cut off by a deadline make aiohttp log a traceback per connection; keep the report readable.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    server = FakeOpenAI(host=HOST, port=0).start()
    conn.send(server.port)
    with contextlib.suppress(EOFError):
        conn.recv()
    server.stop()


class ServerProcess:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child_conn,), name="fake-openai", daemon=True)
        self.port = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def start(self) -> ServerProcess:
        self._proc.start()
        try:
            if not self._conn.poll(20):
                raise EOFError("no port reported within 20 s")
            self.port = self._conn.recv()
        except EOFError as exc:
            self.stop()
            raise RuntimeError("fake OpenAI server process did not start") from exc
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)

    def cpu_seconds(self) -> float | None:
        """utime+stime of the server process (Linux /proc), to check the server is not the bottleneck."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- measurement -------------------------------------------------------------------------------
@dataclass
class StreamResult:
    """One stream's timings: time to the first token, the gaps between arrivals (a coalesced event holding
    several tokens is one arrival), the tokens received, and what went wrong."""

    ttft: float | None = None
    gaps: list[float] = field(default_factory=list)
    tokens: int = 0
    error: str | None = None
    last: float | None = None

    def token(self, start: float, now: float | None = None, count: int = 1) -> None:
        now = time.perf_counter() if now is None else now
        if self.last is None:
            self.ttft = now - start
        else:
            self.gaps.append(now - self.last)
        self.last = now
        self.tokens += count


def pct(values: list[float], p: float) -> float:
    """The nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
