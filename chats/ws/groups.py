"""One answer's frames fanned out to the session's other sockets (the session's channel-layer group)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from channels.layers import BaseChannelLayer

logger = logging.getLogger(__name__)


class GroupRelay:
    """One answer's frames for the session's other sockets, sent by a task of their own.

    channels-redis drops group messages past a channel's capacity (docs/reliability.md E9), so frames
    are numbered (`seq` 1, 2, 3... per answer: a gap means frames were lost) and `done` carries the
    full text. Chunk text is coalesced into at most one group message per `interval` seconds (and
    chunks still waiting when Redis is slow are merged), so a fast model does not flood Redis. The
    answer only queues frames and never awaits the layer: its stream does not wait on Redis, and a
    cancellation (stop, disconnect) always reaches the engine, which a `group_send` in progress can
    swallow. The sender's channel name lets the generating socket skip its own frames.
    """

    def __init__(self, layer: BaseChannelLayer | None, group: str, sender: str, interval: float) -> None:
        self.layer = layer
        self.group = group
        self.sender = sender
        self.interval = interval
        self.seq = 0
        self.pending: list[str] = []
        self.last_flush = float("-inf")
        self.outbox: deque[dict[str, Any] | None] = deque()
        self.wakeup = asyncio.Event()
        self.failed = False

    def start(self) -> asyncio.Task:
        return asyncio.create_task(self._run())

    def chunk(self, text: str) -> None:
        self.pending.append(text)
        if time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self._put({"type": "chunk", "content": "".join(self.pending)})
            self.pending = []
            self.last_flush = time.monotonic()

    def finish(self, frame: dict[str, Any]) -> None:
        """The answer's last frame, after any chunk text still pending; the sending task then ends."""
        self.flush()
        self._put(frame)
        self._put(None)

    def _put(self, frame: dict[str, Any] | None) -> None:
        self.outbox.append(frame)
        self.wakeup.set()

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.outbox:
                frame = self.outbox.popleft()
                if frame is None:
                    return
                while frame["type"] == "chunk" and self.outbox and (self.outbox[0] or {}).get("type") == "chunk":
                    frame = {"type": "chunk", "content": frame["content"] + self.outbox.popleft()["content"]}
                await self._send(frame)

    async def _send(self, frame: dict[str, Any]) -> None:
        # Numbered even when the send fails, so watchers see the gap.
        self.seq += 1
        if self.layer is None:
            return
        try:
            await self.layer.group_send(
                self.group, {"type": "session.frame", "sender": self.sender, "frame": {**frame, "seq": self.seq}}
            )
        except Exception:
            # The requesting socket keeps its direct stream; only the watchers miss frames (logged once).
            if not self.failed:
                logger.warning("could not fan out frames to %s", self.group, exc_info=True)
            self.failed = True
