"""This process's name as a lease holder: host, pid and a random part (a pid is reused after a restart)."""

from __future__ import annotations

import os
import secrets
import socket

_name: tuple[int, str] | None = None


def process_id() -> str:
    global _name
    if _name is None or _name[0] != os.getpid():  # recomputed in a forked child
        _name = (os.getpid(), f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}")
    return _name[1]
