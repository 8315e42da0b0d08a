"""A run's event log: numbered events (1, 2, 3 ...) that any number of readers read at their own pace.

The process writing a run keeps its log in memory (`LocalLog`), bounded to RUN_LOG_MAX_EVENTS and
kept RUN_LOG_TTL_SECONDS after the run ends; readers on that process read it there. With REDIS_URL
set, every event is also copied to a Redis Stream whose entry ids are the sequence numbers
(`<seq>-0`), so a reader on any process can resume it (`RedisLog`). The copy is made by a task of its
own, so the answer never waits on Redis. Neither log costs a reader more than a cursor: a reader
behind the log's start is told so (`Gap`) and moved to the stored message (docs/runs.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError, ResponseError

from bots.llm.types import ModelSpec
from chats.events import StreamEvent
from core.loop_local import LoopLocal
from core.redis_clients import async_redis, sync_redis

logger = logging.getLogger(__name__)
# Longest wait between attempts to copy a run's events to Redis while it is unreachable.
MIRROR_RETRY_MAX_SECONDS = 2.0
# How long the copier to Redis waits for events before it stops (the next event starts it again).
COPIER_IDLE_SECONDS = 1.0
# Events handed to a reader at once: what a reader holds is bounded whatever the log holds.
READ_BATCH = 256


@dataclass(frozen=True, slots=True)
class RunEvent:
    seq: int
    event: StreamEvent
    # Its encodings, made once and shared by every reader of this process (issue 15).
    _sse: bytes | None = field(default=None, compare=False, repr=False)
    _ws: str | None = field(default=None, compare=False, repr=False)

    @property
    def terminal(self) -> bool:
        return self.event.type in ("done", "error")

    def to_sse(self, run_id: str) -> bytes:
        """The event as SSE, naming its run and position (the log holds one run: `run_id` is always its own)."""
        if self._sse is None:
            object.__setattr__(self, "_sse", self.event.to_sse(run_id, self.seq))
        return self._sse  # type: ignore[return-value]

    def ws_frame(self, run_id: str) -> dict[str, Any]:
        """The event as a socket frame: its type and content, its data, the run and its position."""
        frame = {**self.event.to_ws(), "run_id": run_id, "seq": self.seq}
        if self.event.type == "error":
            frame.setdefault("partial", "")
        return frame

    def to_ws_text(self, run_id: str) -> str:
        """`ws_frame` as the text a socket sends."""
        if self._ws is None:
            object.__setattr__(self, "_ws", json.dumps(self.ws_frame(run_id), ensure_ascii=False))
        return self._ws  # type: ignore[return-value]


class Gap:
    """The reader's position is behind the oldest event the log still holds (or the log is gone)."""


GAP = Gap()


class LocalLog:
    """One run's events in this process's memory. Written from the event loop that runs the answer;
    readers in other loops or threads are woken through their own loop."""

    def __init__(self, run_id: str, after: int = 0) -> None:
        self.run_id = run_id
        # The newest RUN_LOG_MAX_EVENTS events (a little more between trims): events[i].seq == first + i.
        self.events: list[RunEvent] = []
        self.first = after + 1
        self.last_seq = after
        self.ended_at: float | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    def append(self, event: StreamEvent) -> RunEvent:
        self.last_seq += 1
        item = RunEvent(self.last_seq, event)
        self.events.append(item)
        excess = len(self.events) - settings.RUN_LOG_MAX_EVENTS
        if excess > settings.RUN_LOG_MAX_EVENTS // 4:
            del self.events[:excess]
            self.first += excess
        if item.terminal:
            self.ended_at = time.monotonic()
        self._wake()
        return item

    def since(self, after: int) -> list[RunEvent] | Gap:
        """The events after `after`; GAP if some of them were already dropped."""
        if after >= self.last_seq:
            return []
        if after + 1 < self.first:
            return GAP
        start = after + 1 - self.first
        return self.events[start : start + READ_BATCH]

    async def wait(self, after: int, seconds: float) -> None:
        """Until there is an event after `after`, or `seconds`."""
        if self.last_seq > after or self.ended_at is not None:
            return
        # A future and a timer, not wait_for: this runs once per batch per reader (issue 15).
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)

    def _wake(self) -> None:
        if not self._waiters:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for waiter in list(self._waiters):
            if waiter.get_loop() is running:
                _resolve(waiter)
                continue
            try:
                waiter.get_loop().call_soon_threadsafe(_resolve, waiter)
            except RuntimeError:  # the reader's loop is closed
                self._waiters.discard(waiter)

    def expired(self, now: float) -> bool:
        return self.ended_at is not None and now - self.ended_at > settings.RUN_LOG_TTL_SECONDS


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_local: dict[str, LocalLog] = {}


def local_log_open(run_id: str, after: int = 0) -> LocalLog:
    now = time.monotonic()
    for key in [key for key, log in _local.items() if log.expired(now)]:
        del _local[key]
    replaced = _local.get(run_id)
    log = _local[run_id] = LocalLog(run_id, after)
    if replaced is not None:  # its readers move on to the new log (a run taken over: chats/runs/resume.py)
        replaced._wake()
    return log


def local_log_drop(run_id: str) -> None:
    """This process no longer writes the run (handed over): its readers look for its events elsewhere."""
    log = _local.pop(run_id, None)
    if log is not None:
        log._wake()


def local_log(run_id: str) -> LocalLog | None:
    log = _local.get(run_id)
    if log is not None and log.expired(time.monotonic()):
        del _local[run_id]
        return None
    return log


# -- Redis Streams -------------------------------------------------------------------------------


def _stream_key(run_id: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:run:{run_id}"


def encode(event: StreamEvent) -> str:
    body: dict[str, Any] = {"t": event.type, "c": event.content, "d": event.data}
    if event.status_code != 200:
        body["s"] = event.status_code
    if event.headers:
        body["h"] = event.headers
    if event.answered_by is not None:
        body["m"] = [event.answered_by.provider, event.answered_by.model]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode(raw: bytes | str) -> StreamEvent:
    body = json.loads(raw)
    answered_by = ModelSpec(provider=body["m"][0], model=body["m"][1]) if "m" in body else None
    return StreamEvent(
        body["t"], body.get("c", ""), body.get("d", {}), body.get("s", 200), body.get("h", {}), answered_by
    )


def _seq_of(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class RedisMirror:
    """Copies a run's events to its Redis Stream, from a task of its own that batches what queued meanwhile.

    The task is the event loop's `_Copier`, shared by every run of the loop: one pipeline carries the
    events of all the runs that wrote since the last one, so a process streaming many answers makes a
    round trip per beat of its loop rather than one per event per run (issue 15). If Redis fails, the
    copy is retried (backing off to MIRROR_RETRY_MAX_SECONDS) with what queued meanwhile, from the
    stream's last entry on: a blip delays readers elsewhere instead of leaving them the stored text.
    The queue keeps at most RUN_LOG_MAX_EVENTS events: readers too far behind get the stored text (a
    `snapshot`), as they would from a trimmed log. Readers on this process read its memory and never
    wait on Redis.
    """

    def __init__(self, run_id: str, running_ttl: int) -> None:
        self.key = _stream_key(run_id)
        self.running_ttl = running_ttl
        self.outbox: list[RunEvent] = []
        self.closed = False
        self.finished = asyncio.Event()  # the last event was copied, or the copy was given up
        self.retrying = False  # a copy failed: what landed of it is looked up before the next
        self.expiring = False  # the stream has its running TTL
        self.copier = _copiers.get()

    def put(self, item: RunEvent) -> None:
        if self.closed:
            return
        self.outbox.append(item)
        if len(self.outbox) > settings.RUN_LOG_MAX_EVENTS:
            del self.outbox[: len(self.outbox) - settings.RUN_LOG_MAX_EVENTS]
        self.copier.wake(self)

    def close(self) -> None:
        self.closed = True
        self.finished.set()

    async def drained(self, seconds: float) -> None:
        """Wait (briefly) until the last event was copied; a Redis that stays down is given up on then."""
        try:
            await asyncio.wait_for(self.finished.wait(), seconds)
        except TimeoutError:
            self.close()


class _Copier:
    """One event loop's copier of its runs' events to Redis: a task that runs while a run has events to copy."""

    def __init__(self) -> None:
        self.dirty: dict[str, RedisMirror] = {}
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task | None = None

    def wake(self, mirror: RedisMirror) -> None:
        self.dirty[mirror.key] = mirror
        self.wakeup.set()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="run log copier")

    async def _run(self) -> None:
        client = async_redis()
        delay = 0.0
        while True:
            if delay:
                await asyncio.sleep(delay)
            elif not self.dirty:
                try:
                    await asyncio.wait_for(self.wakeup.wait(), COPIER_IDLE_SECONDS)
                except TimeoutError:
                    if not self.dirty:
                        return  # nothing to copy for a while: wake() starts another
            self.wakeup.clear()
            mirrors = [mirror for mirror in self.dirty.values() if not mirror.closed and mirror.outbox]
            self.dirty = {}
            if not mirrors:
                continue
            batches = {mirror.key: mirror.outbox for mirror in mirrors}
            for mirror in mirrors:
                mirror.outbox = []
            try:
                await _skip_landed(client, mirrors, batches)
                results = await _copy(client, mirrors, batches)
            except (RedisError, OSError):
                if not delay:
                    logger.warning("could not copy run events to Redis; retrying")
                for mirror in mirrors:
                    mirror.outbox = batches[mirror.key] + mirror.outbox
                    mirror.retrying = True
                    self.dirty[mirror.key] = mirror
                delay = min(MIRROR_RETRY_MAX_SECONDS, max(0.1, delay * 2))
                continue
            delay = 0.0
            for mirror in mirrors:
                batch = batches[mirror.key]
                mirror.expiring = mirror.expiring or bool(batch)
                if any(isinstance(result, ResponseError) for result in results.get(mirror.key, [])):
                    # An id at or below the stream's last: another process ended this run (its lease lapsed).
                    logger.warning("run log %s was closed by another process; copy stopped", mirror.key)
                    mirror.close()
                elif batch and batch[-1].terminal:
                    mirror.close()


async def _skip_landed(client: Any, mirrors: list[RedisMirror], batches: dict[str, list[RunEvent]]) -> None:
    """After a failed copy, part of it may have landed: keep only what comes after each stream's last entry."""
    for mirror in mirrors:
        if mirror.retrying:
            entries = await client.xrevrange(mirror.key, count=1)
            stored = _seq_of(entries[0][0]) if entries else 0
            batches[mirror.key] = [item for item in batches[mirror.key] if item.seq > stored]
            mirror.retrying = False


async def _copy(client: Any, mirrors: list[RedisMirror], batches: dict[str, list[RunEvent]]) -> dict[str, list]:
    """Every batch in one pipeline; each stream's results (a ResponseError among them: refused)."""
    order: list[str] = []
    async with client.pipeline(transaction=False) as pipe:
        for mirror in mirrors:
            batch = batches[mirror.key]
            if not batch:
                continue
            for item in batch:
                pipe.xadd(
                    mirror.key,
                    {"e": encode(item.event)},
                    id=f"{item.seq}-0",
                    maxlen=settings.RUN_LOG_MAX_EVENTS,
                    approximate=True,
                )
            commands = len(batch)
            # The running TTL outlasts any run, so it is set with the first copy; the end shortens it.
            if batch[-1].terminal or not mirror.expiring:
                pipe.expire(mirror.key, settings.RUN_LOG_TTL_SECONDS if batch[-1].terminal else mirror.running_ttl)
                commands += 1
            order.extend([mirror.key] * commands)
        if not order:
            return {}
        results = await pipe.execute(raise_on_error=False)
    by_key: dict[str, list] = {}
    for key, result in zip(order, results, strict=True):
        by_key.setdefault(key, []).append(result)
    return by_key


_copiers: LoopLocal[_Copier] = LoopLocal(_Copier)


class RedisLog:
    """A run's events as copied to Redis, read from any process."""

    def __init__(self, run_id: str) -> None:
        self.key = _stream_key(run_id)

    async def since(self, after: int, *, block_seconds: float) -> list[RunEvent] | Gap | None:
        """Events after `after` (waiting up to `block_seconds` for one); None when the stream does not
        exist (not copied yet, or expired); GAP when events after `after` were trimmed."""
        client = async_redis()
        entries = await client.xrange(self.key, min=f"{after + 1}-0", max="+", count=READ_BATCH)
        if not entries:
            if not await client.exists(self.key):
                return None
            if block_seconds > 0:
                result = await client.xread({self.key: f"{after}-0"}, count=READ_BATCH, block=int(block_seconds * 1000))
                entries = result[0][1] if result else []
        if not entries:
            return []
        if _seq_of(entries[0][0]) != after + 1:
            return GAP
        return [RunEvent(_seq_of(entry_id), decode(fields[b"e"])) for entry_id, fields in entries]


def redis_log_last_seq(run_id: str) -> int:
    """The last position copied to a run's Redis Stream (0 for none, or when Redis cannot say)."""
    try:
        entries = sync_redis().xrevrange(_stream_key(run_id), count=1)
    except RedisError:
        return 0
    return _seq_of(entries[0][0]) if entries else 0


def redis_log_end(run_id: str, item: RunEvent) -> None:
    """The last event of a run, written by a process that is not the run's (an interrupted run); a log
    that already holds a later event (its writer was alive after all) keeps its own end."""
    key = _stream_key(run_id)
    try:
        sync_redis().xadd(key, {"e": encode(item.event)}, id=f"{item.seq}-0")
        sync_redis().expire(key, settings.RUN_LOG_TTL_SECONDS)
    except ResponseError:
        pass
    except RedisError:
        logger.warning("could not write the end of run %s to its log", run_id)
