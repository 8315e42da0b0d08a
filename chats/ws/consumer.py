"""The 003 chat-session socket: a thin adapter from WebSocket frames to the one conversation engine.

The answer runs in a task this consumer owns and streams to its socket directly; the channel layer
only fans numbered copies out to other sockets watching the session (docs/reliability.md E7-E10).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from functools import cached_property
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import aclose_old_connections, database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import User
from chats.exceptions import ChatNotFound
from chats.models import Surface
from chats.notifications import session_group, user_group
from chats.services import (
    chat_context_update,
    context_merge,
    context_validate,
    turn_lease_release,
    turn_start,
)
from chats.streaming import reply_stream
from chats.types import ReplyRequest
from chats.visitors import visitor_citations
from chats.ws.auth import SocketIdentity, identity_chat_get, socket_identity_check
from chats.ws.frames import ClientFrame, parse_frame
from chats.ws.groups import GroupRelay
from chats.ws.limits import FrameRate, socket_slot_acquire, socket_slot_release
from core.errors import Conflict, DomainError

logger = logging.getLogger(__name__)

# Application close codes (4000-4999 are the application's, RFC 6455 section 7.4.2).
CLOSE_EXPIRED = 4000
CLOSE_UNAUTHORIZED = 4401
CLOSE_DELETED = 4404
CLOSE_TOO_MANY = 4429
# The server's shared state (Redis) was lost: try again later (autobahn, under daphne, refuses 1013).
CLOSE_UNAVAILABLE = 4503
# How long a cancelled answer may take to store its partial text before the consumer moves on;
# under daphne's application_close_timeout (10 s).
CANCEL_WAIT_SECONDS = 5.0
RELAY_WAIT_SECONDS = 2.0


def language_of(scope: dict[str, Any]) -> str:
    """The handshake's Accept-Language, read as Django's LocaleMiddleware reads it."""
    request = HttpRequest()
    for name, value in scope.get("headers", []):
        if name.lower() == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin1")
    return translation.get_language_from_request(request)


def close_code_for(exc: DomainError) -> int | None:
    """Errors after which the socket cannot go on: revoked credentials and a deleted session."""
    if exc.status_code == 401:
        return CLOSE_UNAUTHORIZED
    if isinstance(exc, ChatNotFound):
        return CLOSE_DELETED
    return None


class ChatSessionConsumer(AsyncWebsocketConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_id: uuid.UUID | None = None
        self.identity: SocketIdentity | None = None
        self.slot_taken = False
        self.joined: list[str] = []
        self.rate = FrameRate(settings.WS_MESSAGES_PER_MINUTE)
        # The current answer, and every answer task still running (one may be finishing its fan-out).
        self.answer: asyncio.Task | None = None
        self.reply: ReplyRequest | None = None
        self.layer_failed = False
        self.answering = False
        self.tasks: set[asyncio.Task] = set()
        # Tasks fanning answers out to the session's group; each ends after its answer's last frame.
        self.relays: set[asyncio.Task] = set()
        self.stop_requested = False
        self.closing = False
        self.expiry: asyncio.TimerHandle | None = None
        self.expiry_task: asyncio.Task | None = None
        self.entered: set[uuid.UUID] = set()
        self.background: set[asyncio.Task] = set()

    # channels' AsyncConsumer.__call__ assigns the layer's receive here and awaits it next to the
    # socket's: through this property a failure of the layer (Redis gone) becomes one event for this
    # consumer (channel_layer_failed) instead of an exception that drops the socket with 1011 and
    # leaves the answer running unseen.
    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._layer_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._layer_receive_raw = receive

    async def _layer_receive(self) -> dict[str, Any]:
        if self.layer_failed:  # told once; the socket is closing
            await asyncio.Event().wait()
        try:
            return await self._layer_receive_raw()
        except Exception:
            logger.warning("chat session %s: the channel layer failed", self.session_id, exc_info=True)
            self.layer_failed = True
            return {"type": "channel_layer.failed"}

    @property
    def slot_holder(self) -> int | str:
        """Whose sockets this one counts against: the user's, or a widget visitor's."""
        return self.identity.stream_holder or self.identity.user_id

    @cached_property
    def language(self) -> str:
        return language_of(self.scope)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Frames, errors and the stored partial all speak the handshake's language.
        with translation.override(self.language):
            await super().dispatch(message)

    # -- handshake -----------------------------------------------------------------------------
    async def connect(self) -> None:
        """The handshake was authenticated (chats.ws.auth.SessionHandshakeMiddleware); take a socket slot."""
        self.identity = self.scope["chat_session"]
        self.session_id = uuid.UUID(self.scope["url_route"]["kwargs"]["session_id"])
        try:
            self.slot_taken = await sync_to_async(socket_slot_acquire)(user_id=self.slot_holder)
        except Exception:
            logger.exception("could not count the sockets of %s; refused", self.slot_holder)
            await self.close()
            return
        await self.accept()
        if not self.slot_taken:
            await self._end(
                DomainError(
                    _("Too many open connections: at most %(n)d per user. Close one and try again.")
                    % {"n": settings.WS_PER_USER},
                    code="too_many_connections",
                    status_code=429,
                ),
                CLOSE_TOO_MANY,
            )
            return
        groups = [session_group(self.session_id)]
        if self.identity.visitor_id is None:  # the owner's "delete all" closes the owner's sockets, not visitors'
            groups.append(user_group(self.identity.user_id))
        for group in groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                # Without the layer this socket still answers; it misses other sockets' answers.
                logger.warning("could not join %s", group, exc_info=True)
            else:
                self.joined.append(group)
        await self._send_json(
            {
                "type": "system",
                "content": _("Connection established. How can I help you today?"),
                "session_id": str(self.session_id),
            }
        )
        self.expiry = asyncio.get_running_loop().call_later(settings.WS_MAX_AGE_SECONDS, self._expire)

    def _expire(self) -> None:
        async def expire() -> None:
            with translation.override(self.language):
                await self._end(
                    DomainError(
                        _("This connection reached its maximum age; open a new one with a fresh URL."),
                        code="connection_expired",
                    ),
                    CLOSE_EXPIRED,
                )

        self.expiry_task = asyncio.ensure_future(expire())

    # -- frames from the client ----------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.identity is None:
            return
        try:
            self.rate.take()
            frame = parse_frame(
                text=text_data,
                data=bytes_data,
                max_bytes=settings.WS_MAX_FRAME_BYTES,
                max_chars=settings.WS_MAX_CONTENT_CHARS,
            )
            if frame.type == "stop":
                await self._stop()
            else:
                await self._message(frame)
        except DomainError as exc:
            close_code = close_code_for(exc)
            if close_code is None:
                await self._send_error(exc)
            else:
                await self._end(exc, close_code)
        except Exception:
            logger.exception("chat session %s: could not handle a frame", self.session_id)
            await self._send_error(DomainError(_("The server could not handle that frame."), code="server_error"))

    async def _message(self, frame: ClientFrame) -> None:
        if self.answering:
            raise Conflict(
                _("An answer is already being generated; wait for its done frame or send a stop frame."),
                code="chat_busy",
            )
        reply = await database_sync_to_async(self._begin_turn, thread_sensitive=False)(frame.content, frame.context)
        self.stop_requested = False
        self.answering = True
        self.reply = reply
        self.answer = asyncio.create_task(self._answer(reply))
        self.tasks.add(self.answer)
        self.answer.add_done_callback(functools.partial(self._answer_ended, reply))

    def _begin_turn(self, content: str, context: dict[str, Any] | None) -> ReplyRequest:
        """Everything before the model call, in one thread hop: the user may still use the socket,
        the context is valid, then the turn starts (its refusals are DomainErrors) and the context
        is merged before the model reads it."""
        user: User = socket_identity_check(self.identity)
        chat = identity_chat_get(self.identity, user, self.session_id)
        changes = None
        if context is not None:
            changes = context_validate(context)
            context_merge(chat.context, changes)  # refuse an overflow before anything is stored
        reply, _task_type = turn_start(
            user=user,
            prompt=content,
            chat=chat,
            surface=Surface.WIDGET if self.identity.visitor_id else Surface.SESSIONS,
            stream_holder=self.identity.stream_holder,
        )
        if changes:
            try:
                chat_context_update(chat=reply.chat, changes=changes)
            except BaseException:
                turn_lease_release(reply.lease)
                raise
        return reply

    async def _stop(self) -> None:
        """Cancel the answer; it stores its partial text and sends `done` with finish_reason `cancelled`."""
        task = self.answer
        if task is None or task.done() or not self.answering:
            return
        self.stop_requested = True
        task.cancel()
        # Waiting here keeps the order a client expects: `done` before anything sent after `stop`.
        await asyncio.wait({task}, timeout=CANCEL_WAIT_SECONDS)

    # -- the answer ----------------------------------------------------------------------------
    async def _answer(self, reply: ReplyRequest) -> None:
        """Streams the engine's events to this socket, and numbered copies to the session's group.

        The last frame (`done` or `error`) is sent once the engine has ended, so the chat's answer
        lock is free when the client reads it and may send its next message at once.
        """
        # From here on, no suspension happens before the engine holds the lease (it gives it back).
        self.entered.add(reply.user_message.pk)
        relay = GroupRelay(
            self.channel_layer, session_group(reply.chat.pk), self.channel_name, settings.WS_GROUP_FLUSH_SECONDS
        )
        relay_task = relay.start()
        self.relays.add(relay_task)
        relay_task.add_done_callback(self.relays.discard)
        seq = 0
        parts: list[str] = []
        final: dict[str, Any] | None = None
        try:
            async with aclosing(reply_stream(reply)) as events:
                async for event in events:
                    if event.type != "chunk":
                        final = event.to_ws()
                        if event.type == "error":
                            final["partial"] = "".join(parts)
                        if self.identity.visitor_id is not None and "citations" in final:
                            final["citations"] = visitor_citations(final["citations"])
                        continue
                    parts.append(event.content)
                    seq += 1
                    await self._send_json({**event.to_ws(), "seq": seq})
                    relay.chunk(event.content)
        except asyncio.CancelledError:
            # The engine stored the partial text as `cancelled`; the other sockets learn the answer ended.
            cancelled = final or {
                "type": "done",
                "content": "".join(parts),
                "finish_reason": "cancelled",
                "chat_id": str(reply.chat.pk),
                "parent_id": str(reply.user_message.pk),
            }
            relay.finish(cancelled)
            if not self.stop_requested:
                raise  # the socket went away: nobody else to tell
            # A `stop` frame: this socket gets its `done` too.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            self.answering = False
            await self._send_json({**cancelled, "seq": seq + 1})
            return
        if final is None:  # the engine always ends with done or error; this guards the client anyway
            final = {"type": "error", "content": _("The answer ended unexpectedly."), "code": "server_error"}
        relay.finish(final)
        self.answering = False
        await self._send_json({**final, "seq": seq + 1})

    def _answer_ended(self, reply: ReplyRequest, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if task is self.answer:
            self.answering = False
        # A task cancelled before its first step never reached the engine, which releases the lease.
        if reply.user_message.pk in self.entered:
            self.entered.discard(reply.user_message.pk)
        elif reply.lease is not None:
            release = asyncio.ensure_future(sync_to_async(turn_lease_release)(reply.lease))
            self.background.add(release)
            release.add_done_callback(self.background.discard)

    # -- events from the channel layer ---------------------------------------------------------
    async def session_frame(self, event: dict[str, Any]) -> None:
        """An answer generated by another socket of this session."""
        if event.get("sender") != self.channel_name and not self.closing:
            await self._send_json(event["frame"])

    async def session_deleted(self, event: dict[str, Any]) -> None:
        if event.get("session_id") not in (None, str(self.session_id)):
            return
        await self._end(DomainError(_("This session was deleted."), code="session_deleted"), CLOSE_DELETED)

    async def channel_layer_failed(self, event: dict[str, Any]) -> None:
        """The shared state is gone: the answer stops and is stored as it stands, the client is told."""
        exc = DomainError(
            _("The service lost its shared state; what was written so far is kept. Reconnect in a few seconds."),
            code="shared_state_unavailable",
            status_code=503,
        )
        if self.reply is not None and self.answering:
            self.reply.interruption.reason = exc.message
        await self._end(exc, CLOSE_UNAVAILABLE)

    # -- closing -------------------------------------------------------------------------------
    async def _end(self, exc: DomainError, close_code: int) -> None:
        """Error frame, then close; an answer in progress is cancelled (its partial text is kept)."""
        if self.closing:
            return
        self.closing = True
        await self._cancel_answer()
        await self._send_error(exc)
        await self.close(close_code)

    async def _cancel_answer(self) -> None:
        tasks = {task for task in self.tasks if not task.done() and task is not asyncio.current_task()}
        if tasks:
            self.stop_requested = False
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Cleanup first and each step on its own: a channel layer that is down must not keep the
        # answer running or the socket slot taken.
        try:
            await self.disconnect(message.get("code", 1000))
        finally:
            for group in self.joined:
                with contextlib.suppress(Exception):
                    await self.channel_layer.group_discard(group, self.channel_name)
            self.joined = []
            await aclose_old_connections()
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        await self._cancel_answer()
        if self.relays:  # let the other sockets get the last frames, briefly
            _done, late = await asyncio.wait(set(self.relays), timeout=RELAY_WAIT_SECONDS)
            for task in late:
                task.cancel()
        if self.slot_taken and self.identity is not None:
            self.slot_taken = False
            await sync_to_async(socket_slot_release)(user_id=self.slot_holder)

    # -- sending -------------------------------------------------------------------------------
    async def _send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def _send_error(self, exc: DomainError) -> None:
        await self._send_json({"type": "error", "content": exc.message, "code": exc.code})
