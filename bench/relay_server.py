"""Bytchat in a subprocess for bench/relay.py: a throwaway SQLite, the fake upstream as the model.

Started as scripts/run.sh starts it (config/server.py's command line, DEBUG off), minus the worker,
which relaying does not use; or, with --cluster, as `make cluster` starts it (ClusterServer).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import ROOT
from config.server import APPLICATION, uvicorn_args
from tests.live_server import free_port

# The embedded defaults (SQLite, in-memory channel layer and cache) unless --server-env says otherwise.
PASSTHROUGH = ("PATH", "HOME", "LANG", "TMPDIR")


# The ASGI servers bench/relay.py --server can measure on the same workload: Bytchat's own command line
# (config/server.py) on either event loop, and two others. granian is not a dependency of Bytchat:
# `.venv/bin/pip install -r bench/requirements-servers.txt` first.
SERVERS = ("uvicorn", "uvicorn-uvloop", "daphne", "granian")


def server_command(server: str, *, port: int) -> list[str]:
    """`python <these>` serves config.asgi on 127.0.0.1:port with `server`."""
    if server in ("uvicorn", "uvicorn-uvloop"):
        loop = "uvloop" if server == "uvicorn-uvloop" else "asyncio"
        return ["-m", "uvicorn", *uvicorn_args(host="127.0.0.1", port=port, loop=loop)]
    if server == "daphne":
        return ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APPLICATION]
    if server == "granian":
        return [
            "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--no-access-log", APPLICATION,
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


def _process_tree(pid: int) -> list[int]:
    """`pid` and its living descendants."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").glob("*"):
            with contextlib.suppress(OSError):
                tree += [int(child) for child in (task / "children").read_text().split()]
        index += 1
    return tree


class BytchatServer:
    def __init__(
        self,
        data_dir: Path,
        upstream_base_url: str,
        extra_env: dict[str, str],
        profile: Path | None = None,
        server: str = "uvicorn",
    ):
        self.server = server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        self.profile = profile
        self.env = {key: os.environ[key] for key in PASSTHROUGH if key in os.environ}
        self.env.update(
            DATA_DIR=str(data_dir),
            DEBUG="False",
            SECRET_KEY=secrets.token_urlsafe(48),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="False",
            SECURE_HSTS_SECONDS="0",
            PYTHONUNBUFFERED="1",
            # The platform default model is the fake upstream's 200 tokens, 10 ms apart.
            LLM_PROVIDER="custom",
            LLM_MODEL="fake-tokens-200-10",
            CUSTOM_LLM_BASE_URL=upstream_base_url,
            CUSTOM_LLM_API_KEY="bench-key",
            # Limits that protect a real deployment from one user would refuse the benchmark's load.
            CHAT_PARALLEL_STREAMS="5000",
            WS_PER_USER="5000",
            CONVERSATIONS_RATE="1000000/hour",
            LOGIN_RATE="1000/min",
            REGISTER_RATE="1000/hour",
            JWT_ACCESS_MINUTES="240",
            # The benchmark's one user asks thousands of questions; the daily quota would refuse them.
            QUOTA_DAILY_FREE="10000000",
            # relay.py and relay_resume.py read ERROR lines and tracebacks from the log as text.
            LOG_FORMAT="plain",
        )
        self.env.update(extra_env)
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> BytchatServer:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)
        self._log = self.log_path.open("w")
        command = [sys.executable]
        if self.profile is not None:
            command += ["-m", "cProfile", "-o", str(self.profile)]
        command += server_command(self.server, port=self.port)
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter running the server)
            command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/", timeout=1, trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    def cpu_seconds(self) -> float | None:
        """utime + stime of the server process and the processes it started (granian serves from a
        child), all of their threads (Linux /proc)."""
        if self.pid is None:
            return None
        total = 0.0
        for pid in _process_tree(self.pid):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                if pid == self.pid:
                    return None
                continue
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (OSError, TypeError):
            return None
        return None

    def stop(self) -> None:
        process = self.process
        if process and process.poll() is None:
            # SIGINT stops the server cleanly, so a cProfile wrapper gets to write its output.
            process.send_signal(signal.SIGINT if self.profile is not None else signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._log:
            self._log.close()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""


class ClusterServer(BytchatServer):
    """`make cluster` for bench/relay.py --cluster: scripts/cluster.py, nginx in front of `processes` server
    processes, on DATABASE_URL (PostgreSQL) and REDIS_URL from the environment. Measured through nginx; the
    server CPU is the sum of the server processes' (nginx and the worker are not included)."""

    def __init__(self, data_dir: Path, upstream_base_url: str, extra_env: dict[str, str], processes: int) -> None:
        super().__init__(data_dir, upstream_base_url, extra_env)
        for key in ("DATABASE_URL", "REDIS_URL"):
            if key in os.environ:
                self.env[key] = os.environ[key]
        # Unix socket paths are short: the bench's data directory can be too long.
        self.runtime = Path(tempfile.mkdtemp(prefix="bytchat-bench-"))
        self.env.update(PORT=str(self.port), WEB_PROCESSES=str(processes), CLUSTER_DIR=str(self.runtime))

    def start(self) -> ClusterServer:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "scripts/cluster.py"], cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make cluster exited: {self.log_path.read_text()[-3000:]}")
            if "Bytchat on" in self.log_path.read_text():
                return self
            time.sleep(0.2)
        raise RuntimeError("make cluster did not start in 120 s")

    def server_pids(self) -> list[int]:
        return [int(path.read_text()) for path in self.runtime.glob("web-*.pid") if path.read_text().strip()]

    def cpu_seconds(self) -> float | None:
        """utime + stime of every server process (not nginx)."""
        total = 0.0
        for pid in self.server_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rss_mb(self) -> float | None:
        total = 0.0
        for pid in self.server_pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                return None
            total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:"))
        return total

    def stop(self) -> None:
        super().stop()  # TERM: the supervisor drains the servers, then stops nginx
        shutil.rmtree(self.runtime, ignore_errors=True)
