"""`make cluster`: nginx on PORT in front of WEB_PROCESSES server processes and the background worker, supervised.

Every server process (config/server.py's command line, NUM_PROXIES=1) serves a unix socket that this script
creates and holds, `web-N.sock` under CLUSTER_DIR ($DATA_DIR/cluster): nginx's upstreams. Holding it lets a
replacement accept on the very socket its predecessor drains, so a rolling restart never refuses a connection.

  INT, TERM  stop everything: each server process drains (DRAIN_SECONDS), then nginx stops.
  HUP        rolling restart (`make cluster-restart`): one slot at a time, a new server process starts on the
             slot's socket; once it is ready the old one is sent TERM and drains while the new one serves.

A server process that dies is restarted (its socket is closed, so nginx skips the slot until then), as is the
worker (after a backoff, as scripts/run.sh does). If nginx exits, everything stops. Needs PostgreSQL
(DATABASE_URL) and Redis (REDIS_URL): the processes share tickets, locks, quotas, slots and runs through them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import environ  # noqa: E402

from config.server import DRAIN_SECONDS_DEFAULT, command  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
# A new server process that is not ready in this long is given up (the old one keeps its slot).
READY_SECONDS = 120
# The worker's restart delay doubles after each quick exit, up to the maximum; a worker that ran a minute resets it.
BACKOFF_FIRST, BACKOFF_MAX = 1, 30
# Beyond DRAIN_SECONDS: a stopping process stores its late runs (chats/runs/runner.py STOP_WAIT_SECONDS) and exits.
STOP_MARGIN_SECONDS = 15


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    log(message)
    sys.exit(2)


def child_setup() -> None:
    """In the child: a process group of its own (the terminal's Ctrl-C reaches only this script, which stops
    them in order) and TERM should this script die without stopping them."""
    os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, pass_fds=pass_fds, preexec_fn=child_setup)  # noqa: S603 (our programs)


class Slot:
    """One server process's place behind nginx: its socket, held here, and the process serving it."""

    def __init__(self, index: int, runtime: Path) -> None:
        self.name = f"web-{index}"
        self.path = runtime / f"{self.name}.sock"
        self.pid_file = runtime / f"{self.name}.pid"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.backoff = BACKOFF_FIRST
        self.retry_at: float | None = None
        self.fresh_socket()

    def fresh_socket(self) -> None:
        """Bound but not listening: a connection is refused (nginx tries another process) until a server
        process listens on it."""
        self.sock.close()
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.set_inheritable(True)

    def start(self, env: dict[str, str], drain: float) -> tuple[subprocess.Popen, int]:
        """A server process on this slot's socket, and the pipe on which it says it is ready."""
        ready_read, ready_write = os.pipe()
        argv = command(fd=self.sock.fileno(), num_proxies=1, drain_seconds=drain)
        argv[0] = PYTHON
        process = spawn(argv, {**env, "READY_FD": str(ready_write)}, (self.sock.fileno(), ready_write))
        os.close(ready_write)
        return process, ready_read


def wait_ready(process: subprocess.Popen, ready_read: int, abort: Callable[[], bool]) -> bool:
    """Whether the process said it is ready (config/lifespan.py) before dying, READY_SECONDS passing or `abort`."""
    deadline = time.monotonic() + READY_SECONDS
    try:
        while time.monotonic() < deadline and process.poll() is None and not abort():
            readable, _, _ = select.select([ready_read], [], [], 0.2)
            if readable:
                return os.read(ready_read, 1) == b"1"
        return False
    finally:
        os.close(ready_read)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        fail("nginx is not installed: scripts/system-packages.sh installs Debian's (apt-get install nginx).")
    return found  # type: ignore[return-value]


def fresh_metrics_dir(path: str | Path) -> Path:
    directory = Path(path).resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory


def metrics_process_gone(pid: int, env: dict[str, str]) -> None:
    """A reaped server process's live gauges (answers streaming, sockets open) leave the sums."""
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid, env["PROMETHEUS_MULTIPROC_DIR"])


class Cluster:
    def __init__(self, *, check_only: bool = False) -> None:
        env = environ.Env()
        if (ROOT / ".env").exists():
            env.read_env(ROOT / ".env", overwrite=False)
        database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
        if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")) or not redis_url:
            fail(
                "make cluster needs PostgreSQL and Redis, shared by its server processes (tickets, locks, quotas,"
                " stream slots, runs): set DATABASE_URL=postgres://… and REDIS_URL=redis://…, e.g.\n"
                "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/bytchat REDIS_URL=redis://127.0.0.1:6379/0"
                " make cluster"
            )
        if check_only:  # make cluster installs nginx next (scripts/system-packages.sh nginx) when missing
            return
        self.nginx_bin = nginx_binary()
        self.host = env.str("HOST", default="127.0.0.1")
        self.port = env.int("PORT", default=8000)
        self.count = env.int("WEB_PROCESSES", default=os.cpu_count() or 1)
        if self.count < 1:
            fail("WEB_PROCESSES must be 1 or more.")
        self.drain = env.float("DRAIN_SECONDS", default=DRAIN_SECONDS_DEFAULT)
        self.reconcile_every = env.int("RECONCILE_EVERY", default=300)

        from django.conf import settings

        self.runtime = Path(env.str("CLUSTER_DIR", default=str(settings.DATA_DIR / "cluster"))).resolve()
        if len(str(self.runtime / f"web-{self.count}.sock")) > 100:
            fail(f"{self.runtime} is too long a path for unix sockets (about 100 bytes at most): set CLUSTER_DIR.")
        self.runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The servers trust the forwarded headers of whoever reaches their sockets: only this user can.
        self.web_env = {
            **os.environ,
            "NUM_PROXIES": "1",
            "FORWARDED_ALLOW_IPS": "*",
            "SERVE_STATIC": "False",
            "DRAIN_SECONDS": str(self.drain),
            "PYTHONUNBUFFERED": "1",
            # Every server process and the worker report /metrics together (core/metrics.py), from a
            # directory emptied here: figures of an earlier cluster's processes would add to this one's.
            "PROMETHEUS_MULTIPROC_DIR": str(
                fresh_metrics_dir(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or self.runtime / "metrics")
            ),
        }
        self.slots = [Slot(index, self.runtime) for index in range(1, self.count + 1)]
        self.draining: list[subprocess.Popen] = []
        self.nginx: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.worker_started = 0.0
        self.worker_backoff = BACKOFF_FIRST
        self.worker_retry_at: float | None = None
        self.reconcile: subprocess.Popen | None = None
        self.next_reconcile = time.monotonic() + self.reconcile_every
        self.stop_signal: int | None = None
        self.restart_asked = False
        self.write_nginx_conf(settings)

    def write_nginx_conf(self, settings) -> None:
        from config.nginx import main_conf, site

        upstreams = [f"unix:{slot.path}" for slot in self.slots]
        (self.runtime / "bytchat.conf").write_text(
            site(
                upstreams=upstreams,
                listen=f"{self.host}:{self.port}",
                access_log=str(self.runtime / "access.log"),
                upstream_header=os.environ.get("CLUSTER_UPSTREAM_HEADER") == "1",
            )
        )
        (self.runtime / "nginx.conf").write_text(main_conf(runtime_dir=self.runtime))

    # -- signals ----------------------------------------------------------------------------------------
    def stopping(self) -> bool:
        return self.stop_signal is not None

    def on_stop(self, signum: int, _frame: object) -> None:
        self.stop_signal = signum

    def on_hup(self, _signum: int, _frame: object) -> None:
        self.restart_asked = True

    # -- processes --------------------------------------------------------------------------------------
    def serve(self, slot: Slot, process: subprocess.Popen) -> None:
        slot.process, slot.started_at = process, time.monotonic()
        slot.pid_file.write_text(f"{process.pid}\n")

    def start_worker(self) -> None:
        # Documents a dead worker left half-ingested go back to the queue, then the worker starts.
        subprocess.run([PYTHON, "manage.py", "reconcile_documents"], env=os.environ, check=False)  # noqa: S603
        metrics_env = {"PROMETHEUS_MULTIPROC_DIR": self.web_env["PROMETHEUS_MULTIPROC_DIR"]}
        self.worker = spawn(
            [PYTHON, "manage.py", "run_worker", "--interval", "1", "--no-reload"], {**os.environ, **metrics_env}
        )
        self.worker_started = time.monotonic()

    def start(self) -> None:
        starting = [(slot, *slot.start(self.web_env, self.drain)) for slot in self.slots]
        for slot, process, ready_read in starting:
            if not wait_ready(process, ready_read, self.stopping):
                process.kill()
                self.stop(1, f"{slot.name} did not start (its output is above).")
            self.serve(slot, process)
        argv = [self.nginx_bin, "-p", str(self.runtime), "-c", str(self.runtime / "nginx.conf"), "-e", "stderr"]
        self.nginx = spawn(argv, dict(os.environ))
        self.start_worker()
        (self.runtime / "cluster.pid").write_text(f"{os.getpid()}\n")
        log(
            f"Bytchat on http://{self.host}:{self.port}/ : nginx in front of {self.count} server processes"
            f" ({', '.join(str(slot.process.pid) for slot in self.slots if slot.process)}) and the worker."
            f" Ctrl-C stops; `kill -HUP {os.getpid()}` (make cluster-restart) restarts the servers one at a time."
        )

    def rolling_restart(self) -> None:
        """Each slot in turn: a new process on its socket; when it is ready, the old one drains."""
        log("rolling restart: one server process at a time")
        for slot in self.slots:
            if self.stop_signal is not None:
                return
            process, ready_read = slot.start(self.web_env, self.drain)
            if not wait_ready(process, ready_read, self.stopping):
                process.kill()
                log(f"rolling restart stopped: the new {slot.name} did not start; the old ones keep serving.")
                return
            old = slot.process
            self.serve(slot, process)
            if old is not None and old.poll() is None:
                old.send_signal(signal.SIGTERM)
                self.draining.append(old)
            log(f"{slot.name}: pid {process.pid} serves; pid {old.pid if old else '-'} drains")
        log("rolling restart done")

    def check_children(self) -> None:
        now = time.monotonic()
        if self.nginx is not None and self.nginx.poll() is not None:
            self.stop(1, f"nginx exited (status {self.nginx.returncode}); stopping everything.")
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is not None:
                status = slot.process.returncode
                metrics_process_gone(slot.process.pid, self.web_env)
                slot.process = None
                # Its socket may hold connections nobody will accept: a new one refuses them instead.
                slot.fresh_socket()
                if now - slot.started_at >= 60:
                    slot.backoff = BACKOFF_FIRST
                slot.retry_at = now + slot.backoff
                log(f"{slot.name} exited (status {status}); restarting it in {slot.backoff}s.")
                slot.backoff = min(slot.backoff * 2, BACKOFF_MAX)
            if slot.process is None and slot.retry_at is not None and now >= slot.retry_at:
                slot.retry_at = None
                process, ready_read = slot.start(self.web_env, self.drain)
                os.close(ready_read)  # not waited for: the socket refuses connections until it listens
                self.serve(slot, process)
                log(f"{slot.name} restarted (pid {process.pid}).")
        for process in list(self.draining):
            if process.poll() is not None:
                self.draining.remove(process)
                metrics_process_gone(process.pid, self.web_env)
                log(f"pid {process.pid} drained and exited (status {process.returncode}).")
        if self.worker is not None and self.worker.poll() is not None:
            if now - self.worker_started >= 60:
                self.worker_backoff = BACKOFF_FIRST
            log(f"the worker exited (status {self.worker.returncode}); restarting it in {self.worker_backoff}s.")
            self.worker, self.worker_retry_at = None, now + self.worker_backoff
            self.worker_backoff = min(self.worker_backoff * 2, BACKOFF_MAX)
        if self.worker is None and self.worker_retry_at is not None and now >= self.worker_retry_at:
            self.worker_retry_at = None
            self.start_worker()
            log(f"worker restarted (pid {self.worker.pid}).")
        if now >= self.next_reconcile and (self.reconcile is None or self.reconcile.poll() is not None):
            # And every few minutes while running, for documents a killed worker left `processing`.
            self.next_reconcile = now + self.reconcile_every
            self.reconcile = spawn([PYTHON, "manage.py", "reconcile_documents"], dict(os.environ))

    def stop(self, status: int, reason: str = "") -> None:
        """Server processes drain first (nginx still passes their streams on), then nginx and the rest stop."""
        if reason:
            log(reason)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        servers = [slot.process for slot in self.slots if slot.process is not None] + self.draining
        others = [process for process in (self.worker, self.reconcile) if process is not None]
        for process in servers + others:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.drain + STOP_MARGIN_SECONDS
        for process in servers + others:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"pid {process.pid} did not stop in time; killing it.")
                process.kill()
                process.wait()
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: what it still sends, it finishes
            try:
                self.nginx.wait(5)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for slot in self.slots:
            slot.path.unlink(missing_ok=True)
            slot.pid_file.unlink(missing_ok=True)
        (self.runtime / "cluster.pid").unlink(missing_ok=True)
        log("stopped.")
        sys.exit(status)

    def run(self) -> None:
        signal.signal(signal.SIGINT, self.on_stop)
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGHUP, self.on_hup)
        self.start()
        while True:
            if self.stop_signal is not None:
                self.stop(128 + self.stop_signal)
            if self.restart_asked:
                self.restart_asked = False
                self.rolling_restart()
            self.check_children()
            time.sleep(0.2)


def main() -> None:
    check_only = sys.argv[1:] == ["--check"]  # make cluster: refuse before migrating anything
    cluster = Cluster(check_only=check_only)
    if not check_only:
        cluster.run()


if __name__ == "__main__":
    main()
