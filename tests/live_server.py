"""Runs the real ASGI server in a subprocess for end-to-end tests, as `make run` starts it (config/server.py)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from config.server import DRAIN_SECONDS_DEFAULT, command

ROOT = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("PATH", "HOME", "LANG", "DATABASE_URL", "REDIS_URL", "TMPDIR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live_database_url() -> str | None:
    """On PostgreSQL, the database the live servers share: the configured one's name with `_live`, made afresh
    for each test session (conftest.py), so that nothing an earlier run left (a demo bot's configs, say)
    leaks into this one, and the configured database itself is never written by a live server."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return None
    parsed = urlsplit(url)
    return urlunsplit(parsed._replace(path=f"/{parsed.path.lstrip('/')}_live"))


def live_database_recreate() -> None:
    """Drops and creates the live servers' PostgreSQL database (see live_database_url)."""
    import psycopg

    url = live_database_url()
    if url is None:
        return
    parsed = urlsplit(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(urlunsplit(parsed._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def server_env(data_dir: Path, extra_env: dict[str, str]) -> dict[str, str]:
    """A production-like environment (DEBUG off) on a throwaway DATA_DIR, plus the caller's settings."""
    env = {key: os.environ[key] for key in PASSTHROUGH if key in os.environ}
    if (live_url := live_database_url()) is not None:
        env["DATABASE_URL"] = live_url
    env.update(
        DATA_DIR=str(data_dir),
        DEBUG="False",
        SECRET_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="False",
        SECURE_HSTS_SECONDS="0",
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    return env


class LiveServer:
    def __init__(self, data_dir: Path, extra_env: dict[str, str], *, with_worker: bool = False) -> None:
        self.with_worker = with_worker
        self.worker: subprocess.Popen | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.env = server_env(data_dir, extra_env)
        self.process: subprocess.Popen | None = None

    def start(self) -> LiveServer:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)
        log = self.log_path.open("w")
        drain = float(self.env.get("DRAIN_SECONDS", DRAIN_SECONDS_DEFAULT))
        self.process = subprocess.Popen(
            command(host="127.0.0.1", port=self.port, drain_seconds=drain),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if self.with_worker:
            self.worker = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--interval", "0.2", "--no-startup-delay"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # Generous: on a busy 2-core machine importing Django alone can take 15 s.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        # A server that did not come up is not left running (the fixture's teardown never runs).
        self.stop()
        raise RuntimeError(f"server did not start in 60 s: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        for process in (self.process, self.worker):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()

    def log(self) -> str:
        return self.log_path.read_text()

    def tracebacks(self) -> str:
        """The log lines that hold a traceback (empty when none): short enough for an assertion's message."""
        return log_tracebacks(self.log())


def log_tracebacks(log: str) -> str:
    return "\n".join(line[:6000] for line in log.splitlines() if "Traceback" in line)


def upstream_env(fake_openai_server, **settings: str) -> dict[str, str]:
    """A live server's environment with the fake OpenAI server as the `custom` provider (no retries),
    plus the suite's own settings."""
    return {
        "CUSTOM_LLM_BASE_URL": fake_openai_server.base_url,
        "CUSTOM_LLM_API_KEY": "e2e-provider-key",
        "LLM_MAX_RETRIES": "0",
        **settings,
    }


def new_user_auth(http: httpx.Client) -> dict[str, str]:
    """Register a fresh user on the live server and return its Authorization header."""
    email = f"live-{uuid.uuid4().hex[:10]}@example.com"
    assert http.post("/users/", json={"email": email, "password": "una-clave-segura"}).status_code == 200
    token = http.post("/token", data={"username": email, "password": "una-clave-segura"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
