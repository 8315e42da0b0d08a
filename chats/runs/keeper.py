"""This process's beat: it renews the lease of the runs it writes and of the slots it holds, and
interrupts other processes' runs whose lease lapsed (docs/reliability.md E12).

One task per event loop, started by the first run or socket that needs it; it ends once the
process holds nothing, so an idle process costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from django.conf import settings

logger = logging.getLogger(__name__)

_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = weakref.WeakKeyDictionary()


def keeper_ensure() -> None:
    """Start this loop's keeper unless it runs."""
    loop = asyncio.get_running_loop()
    task = _keepers.get(loop)
    if task is None or task.done():
        _keepers[loop] = loop.create_task(_keep(), name="run lease keeper")


def _beat() -> tuple[bool, list]:
    """Renew what this process holds and reconcile lapsed runs. Whether it still holds anything, and
    which of its runs were asked to stop through another process (a silent model writes no
    checkpoint that would tell it)."""
    from chats.runs.process import process_id
    from chats.runs.reconcile import runs_reconcile
    from chats.runs.selectors import runs_to_stop
    from chats.runs.services import runs_lease_renew
    from core.slots import slots_held, slots_renew

    slots_renew()  # first: a slot must not lapse before the run that holds it
    renewed = runs_lease_renew(holder=process_id())
    to_stop = runs_to_stop(holder=process_id()) if renewed else []
    runs_reconcile()
    return bool(renewed or slots_held()), to_stop


async def _keep() -> None:
    from chats.runs.runner import live_run, live_runs
    from chats.streaming import released

    while True:
        await asyncio.sleep(settings.RUN_LEASE_RENEW_SECONDS)
        try:
            holding, to_stop = await released(_beat)()
        except Exception:
            logger.warning("could not renew this process's leases; retrying", exc_info=True)
            continue
        for run_id in to_stop:
            if (live := live_run(run_id)) is not None:
                live.stop()
        if not holding and not live_runs():
            return
