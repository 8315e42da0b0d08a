"""Limits on chat-session sockets: open sockets per user, frames per minute per socket (docs/reliability.md C7, E6)."""

from __future__ import annotations

import time
from collections import deque

from django.conf import settings
from django.utils.translation import gettext as _

from accounts.quotas import RateLimited
from core.slots import slot_give_back, slot_take


def _socket_key(user_id: int | str) -> str:
    return f"ws-sockets:{user_id}"


def socket_slot_acquire(*, user_id: int | str, socket: str) -> bool:
    """Take one of the user's WS_PER_USER socket slots for `socket`; False when all are taken.

    Renewed while the process holding the socket lives (core/slots.py): the slots of a process
    that died are free within seconds (docs/reliability.md E12).
    """
    return slot_take(_socket_key(user_id), socket, limit=settings.WS_PER_USER)


def socket_slot_release(*, user_id: int | str, socket: str) -> None:
    slot_give_back(_socket_key(user_id), socket)


class FrameRate:
    """At most `per_minute` frames in any sliding minute on one socket; extra frames are refused."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.times: deque[float] = deque()

    def take(self) -> None:
        now = time.monotonic()
        while self.times and now - self.times[0] >= 60:
            self.times.popleft()
        if len(self.times) >= self.per_minute:
            retry_after = max(1, int(60 - (now - self.times[0])) + 1)
            raise RateLimited(
                _("Too many frames: at most %(n)d a minute on one connection. Try again in %(seconds)d seconds.")
                % {"n": self.per_minute, "seconds": retry_after},
                headers={"Retry-After": str(retry_after)},
            )
        self.times.append(now)
