"""Untrusted input handled in a bounded child process: `python -m <module>` under CPU, memory and wall-clock limits.

Both sides live here and import no Django, so a child (exams.pdf, knowledge.readers) can use
`limit_resources` without paying for Django's start-up. The child limits its own address space and
CPU time before it reads its input; the parent kills it when the wall clock runs out. The child
gets only the environment the interpreter needs: it handles untrusted data and has no use for secrets.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


class SandboxTimeout(Exception):
    """The child ran past its wall-clock limit and was killed."""


def limit_resources(*, seconds: float, memory_mb: int) -> None:
    """In the child: cap its address space and CPU time (past the CPU limit the kernel ends it with SIGXCPU)."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = math.ceil(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


def child_environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(PROJECT_DIR), "LANG": "C.UTF-8"}


def run_bounded(
    module: str,
    args: Sequence[str],
    *,
    data: bytes,
    seconds: float,
    on_wait: Callable[[], None] | None = None,
    wait_step: float = 5.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m module *args` with `data` on stdin; raise SandboxTimeout past `seconds` of wall clock.

    `on_wait` is called every `wait_step` seconds while the child runs (a worker's heartbeat).
    OSError when the child cannot start.
    """
    command = [sys.executable, "-m", module, *args]
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module; the data goes to stdin)
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT_DIR,
        env=child_environment(),
    )
    try:
        stdout, stderr = _wait(process, data=data, seconds=seconds, on_wait=on_wait, wait_step=wait_step)
    finally:
        if process.poll() is None:  # a timeout, or on_wait raised: never leave the child running
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _wait(
    process: subprocess.Popen[bytes],
    *,
    data: bytes,
    seconds: float,
    on_wait: Callable[[], None] | None,
    wait_step: float,
) -> tuple[bytes, bytes]:
    deadline = time.monotonic() + seconds
    pending: bytes | None = data
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SandboxTimeout(f"killed after {seconds} s")
        try:
            # Retrying communicate() after a timeout loses no output; the input is sent only once.
            return process.communicate(pending, timeout=min(wait_step, remaining))
        except subprocess.TimeoutExpired:
            pending = None
        if on_wait is not None and time.monotonic() < deadline:
            on_wait()
