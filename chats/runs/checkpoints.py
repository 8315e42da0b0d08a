"""This process's run checkpoints, written together: the runs due at the same time share one thread
hop and one database connection (a transaction each), however many stream at once (issue 15)."""

from __future__ import annotations

import asyncio

from chats.runs.services import Checkpoint, runs_checkpoint
from chats.streaming import released
from core.loop_local import LoopLocal


class _Writer:
    """One event loop's queue of checkpoints, written by a task that runs while the queue holds any."""

    def __init__(self) -> None:
        self.queue: dict[str, tuple[Checkpoint, asyncio.Future[bool]]] = {}
        self.task: asyncio.Task | None = None

    def put(self, checkpoint: Checkpoint) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        kept = loop.create_future()
        self.queue[str(checkpoint.run_id)] = (checkpoint, kept)  # a run has one checkpoint at a time
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._write(), name="run checkpoints")
        return kept

    async def _write(self) -> None:
        while self.queue:
            batch, self.queue = list(self.queue.values()), {}
            try:
                refused = await released(runs_checkpoint)(checkpoints=[checkpoint for checkpoint, _kept in batch])
            except Exception as exc:
                for _checkpoint, kept in batch:
                    if not kept.done():
                        kept.set_exception(exc)
                continue
            for checkpoint, kept in batch:
                if not kept.done():
                    kept.set_result(checkpoint.run_id not in refused)


_writers: LoopLocal[_Writer] = LoopLocal(_Writer)


async def checkpoint_write(checkpoint: Checkpoint) -> bool:
    """Store a run's text so far with the other runs due now; False when the run must stop here (see
    `runs_checkpoint`)."""
    return await _writers.get().put(checkpoint)
