"""Deletion notices for open chat-session sockets, and the channel-layer groups they go to."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
# Notices sent from async code; kept referenced until they finish.
_background: set[asyncio.Task] = set()


def session_group(chat_id: uuid.UUID | str) -> str:
    """Every socket open on one session (tabs, devices, server processes)."""
    return f"chat.{uuid.UUID(str(chat_id)).hex}"


def user_group(user_id: int) -> str:
    """Every chat-session socket of one user (told when all their chats are deleted at once)."""
    return f"chats.user.{user_id}"


def _notify(group: str, event: dict[str, Any]) -> None:
    """Best effort: a deletion is committed whether or not the layer (Redis) can tell open sockets."""
    layer = get_channel_layer()
    if layer is None:
        return

    async def send() -> None:
        try:
            await layer.group_send(group, event)
        except Exception:
            logger.warning("could not tell the sockets of %s about %s", group, event["type"], exc_info=True)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(send)()
    else:  # called from async code: a task on its loop, since AsyncToSync refuses to run there
        task = loop.create_task(send())
        _background.add(task)
        task.add_done_callback(_background.discard)


def session_deleted_notify(*, chat_id: uuid.UUID | str) -> None:
    """Open sockets of the chat send an error frame and close (called after the delete commits)."""
    _notify(session_group(chat_id), {"type": "session.deleted", "session_id": str(chat_id)})


def sessions_deleted_notify(*, user_id: int) -> None:
    """Every open chat-session socket of the user closes: all of their chats were deleted."""
    _notify(user_group(user_id), {"type": "session.deleted", "session_id": None})
