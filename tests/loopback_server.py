"""An aiohttp app on 127.0.0.1, served from a thread with its own event loop: the suite's fake upstreams."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from aiohttp import web


class LoopbackServer:
    """Subclasses (dataclasses with `host` and `port` fields) build the app; this runs and stops it."""

    host: str
    port: int
    thread_name = "fake-server"
    runner_options: dict[str, Any] = {}

    def _loopback_init(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    def build_app(self) -> web.Application:
        raise NotImplementedError

    async def started(self) -> None:
        """Extra listeners, once the app is served."""

    async def stopping(self) -> None:
        """Close the extra listeners."""

    def start(self):
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    async def _shutdown(self) -> None:
        await self.stopping()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._runner.cleanup(), 3)
        # Stalled handlers are cancelled rather than awaited.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.build_app(), access_log=None, **self.runner_options)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._loop.run_until_complete(self.started())
        self._ready.set()
        self._loop.run_forever()
