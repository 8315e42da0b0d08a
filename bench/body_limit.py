"""Oversized request bodies, daphne vs uvicorn (config/server.py). Run: .venv/bin/python -m bench.body_limit

Each server in turn (DEBUG off, a throwaway SQLite) gets an unauthenticated 200 MB multipart POST to
`/bots/x/train`, sent as fast as the loopback takes it, and then a request declaring
`Content-Length: 2000000000` followed by 1 MB. For each: the time from the end of the headers to the
status line, the server's peak RSS, and the slowest `GET /` that another client made meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import ROOT
from config.server import command
from tests.live_server import free_port, server_env

# scripts/run.sh's daphne flags before issue 12.
DAPHNE_FLAGS = [
    "--access-log", os.devnull, "--websocket_timeout", "3600", "--ping-interval", "20", "--ping-timeout", "30",
    "--websocket-max-message-size", "262144", "--websocket-max-frame-size", "262144",
    "--application-close-timeout", "10",
]  # fmt: skip
MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watch:
    """Samples the server's RSS and times `GET /` from another client until stopped."""

    def __init__(self, pid: int, url: str) -> None:
        self.pid, self.url = pid, url
        self.peak_rss = rss_mb(pid)
        self.slowest_get = 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rss), threading.Thread(target=self._gets)]

    def _rss(self) -> None:
        while not self._stop.wait(0.01):
            with contextlib.suppress(OSError):
                self.peak_rss = max(self.peak_rss, rss_mb(self.pid))

    def _gets(self) -> None:
        with httpx.Client(timeout=60, trust_env=False) as http:
            while not self._stop.wait(0.05):
                started = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    http.get(self.url + "/")
                self.slowest_get = max(self.slowest_get, time.perf_counter() - started)

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)
        self._stop.set()
        for thread in self._threads:
            thread.join()


def oversized(port: int, *, head: bytes, body_bytes: int, tail: bytes, wait: float) -> str:
    """Send `head`, then `body_bytes` zeros and `tail` from another thread; the time to the status line."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(wait)
    chunk = b"\0" * MB

    def send_body() -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while sent < body_bytes:
                sock.sendall(chunk[: body_bytes - sent])
                sent += len(chunk)
            sock.sendall(tail)

    sock.sendall(head)
    started = time.perf_counter()
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        line = sock.makefile("rb").readline().decode(errors="replace").strip()
        took = time.perf_counter() - started
        answer = f"{line or 'closed'} after {took * 1000:.1f} ms"
    except TimeoutError:
        answer = f"no answer in {wait:.0f} s"
    except OSError as exc:
        answer = f"{type(exc).__name__} after {(time.perf_counter() - started) * 1000:.1f} ms"
    sock.close()
    sender.join(30)
    return answer


def measure(name: str, argv: list[str], env: dict[str, str], port: int, wait: float) -> None:
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/", timeout=1, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.2)
        size = 200 * MB
        opening = (
            b'--bench\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n"
        )
        closing = b"\r\n--bench--\r\n"
        multipart = (
            b"POST /bots/x/train HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=bench\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (size, opening)
        )
        huge = (
            b"POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2000000000\r\n\r\n"
        )
        cases = (
            ("200 MB multipart", multipart, size - len(opening) - len(closing), closing),
            ("2 GB declared, 1 MB sent", huge, MB, b""),
        )
        for case, head, body, tail in cases:
            before = rss_mb(process.pid)
            with Watch(process.pid, url) as watch:
                answer = oversized(port, head=head, body_bytes=body, tail=tail, wait=wait)
            print(
                f"| {name} | {case} | {answer} | {before:.0f} -> {watch.peak_rss:.0f} MB "
                f"| {watch.slowest_get * 1000:.0f} ms |",
                flush=True,
            )
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", default="daphne,uvicorn", help="comma-separated: daphne, uvicorn")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for each answer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bytchat-body-") as tmp:
        env = server_env(Path(tmp), {})
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        print("| server | request | answer (after the headers) | server RSS before -> peak | slowest GET / meanwhile |")
        print("|---|---|---|---|---|")
        for name in args.servers.split(","):
            port = free_port()
            if name == "daphne":
                argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *DAPHNE_FLAGS]
                argv.append("config.asgi:application")
            else:
                argv = command(host="127.0.0.1", port=port)
            measure(name, argv, env, port, args.wait)


if __name__ == "__main__":
    main()
