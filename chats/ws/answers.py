"""One answer a socket relays: a task that reads the run's events and sends them as frames.

A socket follows the runs it started, the runs other sockets of its session started (it is told
through the session's channel-layer group, which carries no tokens) and the runs it asks to
resume. Stopping a follower never stops the run (docs/runs.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing

from django.utils.translation import gettext as _

from chats.models import Run
from chats.runs.log import RunEvent
from chats.runs.reader import run_batches
from chats.visitors import visitor_run_event

logger = logging.getLogger(__name__)
SendText = Callable[[str], Awaitable[None]]


def frame_text(item: RunEvent, run_id: str, *, visitor: bool) -> str:
    """A run event as the text of a socket frame; an owner's is encoded once for all of its sockets (issue 15)."""
    return (visitor_run_event(item) if visitor else item).to_ws_text(run_id)


class AnswerFollower:
    def __init__(self, run: Run, *, after: int, send_text: SendText, visitor: bool) -> None:
        self.run = run
        self.run_id = str(run.pk)
        self.send_text = send_text
        self.visitor = visitor
        self.task = asyncio.create_task(self._relay(after), name=f"follow run {self.run_id}")

    async def _relay(self, after: int) -> None:
        try:
            async with aclosing(run_batches(self.run, after=after)) as batches:
                async for batch in batches:
                    for item in batch:
                        try:
                            await self.send_text(frame_text(item, self.run_id, visitor=self.visitor))
                        except OSError:
                            # The client left before the consumer heard of it (uvicorn's ClientDisconnected).
                            return
        except Exception:
            # Reading the run failed (its row, say): the run goes on, and the client can resume it.
            logger.exception("could not relay run %s", self.run_id)
            with contextlib.suppress(Exception):
                await self.send_text(
                    json.dumps(
                        {
                            "type": "error",
                            "content": _("The server could not relay this answer; it goes on: resume it to read on."),
                            "code": "relay_failed",
                            "run_id": self.run_id,
                        },
                        ensure_ascii=False,
                    )
                )

    async def finished(self, seconds: float) -> None:
        await asyncio.wait({self.task}, timeout=seconds)

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
