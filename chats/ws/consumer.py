"""The 003 chat-session socket: a thin adapter from WebSocket frames to runs (docs/runs.md).

A `message` starts a run, which the server process owns; this socket, and every other socket of the
session (told through the session's channel-layer group, which never carries tokens), follow its
events. Leaving does not stop the run: `stop` does, from any socket of the session, and `resume`
picks up a run after the last event a client saw (docs/reliability.md E7-E12).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
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
from chats.feedback.selectors import feedback_message_get
from chats.feedback.services import feedback_delete, feedback_set
from chats.models import Run, RunStatus, Surface
from chats.notifications import session_group, user_group
from chats.runs.keeper import keeper_ensure
from chats.runs.reconcile import run_as_it_stands
from chats.runs.resume import run_decided
from chats.runs.runner import run_launch, run_stop
from chats.runs.selectors import RunNotFound, chat_running_run, run_get
from chats.runs.services import run_abandon
from chats.runs.spans import frame_span, resume_span
from chats.services import (
    chat_context_update,
    context_merge,
    context_validate,
    turn_lease_release,
    turn_start,
)
from chats.types import ReplyRequest
from chats.ws.answers import AnswerFollower
from chats.ws.auth import SocketIdentity, identity_chat_get, identity_turn_get, socket_identity_check
from chats.ws.frames import ClientFrame, parse_frame
from chats.ws.limits import FrameRate, socket_slot_acquire, socket_slot_release
from core import metrics
from core.errors import DomainError
from tools.approvals import approval_decide
from tools.models import Decision, ToolCall
from tools.runtime import approval_notify
from tools.selectors import ApprovalNotFound, approval_payload, run_pending_approvals

logger = logging.getLogger(__name__)

# Application close codes (4000-4999 are the application's, RFC 6455 section 7.4.2).
# The socket's route, as metrics name it (config/routing.py serves it).
ROUTE_TEMPLATE = "/chat/ws/{session_id}"
CLOSE_EXPIRED = 4000
CLOSE_UNAUTHORIZED = 4401
CLOSE_DELETED = 4404
CLOSE_TOO_MANY = 4429
# The server's shared state (Redis) was lost: try again later (autobahn, under daphne, refuses 1013).
CLOSE_UNAVAILABLE = 4503
# How long a stopped answer's last frame is waited for before the socket handles its next frame.
STOP_WAIT_SECONDS = 5.0


_reapers: set[asyncio.Task] = set()


def cancel_until_done(task: asyncio.Task) -> None:
    """Cancel `task`, and again every second until it ends.

    On Python 3.11 `asyncio.wait_for` can swallow a cancellation that arrives as the awaited operation
    finishes (fixed in 3.12). redis-py wraps socket operations in it, so channels-redis's receive could
    miss a closing socket's cancel and poll Redis forever, keeping the consumer alive (found by
    bench/relay_resume.py: 1 or 2 of 30 sockets closed at once never finished).
    """
    task.cancel()

    async def reap() -> None:
        for _attempt in range(30):
            await asyncio.wait({task}, timeout=1.0)
            if task.done():
                if not task.cancelled():
                    task.exception()  # retrieved: a failure here concerns nobody any more
                return
            task.cancel()

    reaper = asyncio.ensure_future(reap())
    _reapers.add(reaper)
    reaper.add_done_callback(_reapers.discard)


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
        # The runs this socket relays, by run id: one object per answer.
        self.followers: dict[str, AnswerFollower] = {}
        # Every run this socket followed: a late `session.run` notice must not replay one it already read.
        self.followed: set[str] = set()
        self.layer_failed = False
        self.closing = False
        self.expiry: asyncio.TimerHandle | None = None
        self.expiry_task: asyncio.Task | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        connections = metrics.websocket_connections.labels(ROUTE_TEMPLATE)
        connections.inc()
        try:
            await super().__call__(scope, receive, send)
        finally:
            connections.dec()

    # channels' AsyncConsumer.__call__ assigns the layer's receive here and awaits it next to the
    # socket's: through this property a failure of the layer (Redis gone) becomes one event for this
    # consumer (channel_layer_failed) instead of an exception that drops the socket with 1011.
    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._layer_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._layer_receive_raw = receive

    async def _layer_receive(self) -> dict[str, Any]:
        if self.layer_failed:  # told once; the socket is closing
            await asyncio.Event().wait()
        receive = asyncio.ensure_future(self._layer_receive_raw())
        try:
            return await asyncio.shield(receive)
        except asyncio.CancelledError:
            cancel_until_done(receive)
            raise
        except Exception:
            logger.warning("chat session %s: the channel layer failed", self.session_id, exc_info=True)
            self.layer_failed = True
            return {"type": "channel_layer.failed"}

    @property
    def slot_holder(self) -> int | str:
        """Whose sockets this one counts against: the user's, or a widget visitor's."""
        return self.identity.stream_holder or self.identity.user_id

    @property
    def is_visitor(self) -> bool:
        return self.identity is not None and self.identity.visitor_id is not None

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
            self.slot_taken = await sync_to_async(socket_slot_acquire)(
                user_id=self.slot_holder, socket=self.channel_name
            )
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
        keeper_ensure()  # renews the socket's slot while it is open
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
        greeting = {
            "type": "system",
            "content": _("Connection established. How can I help you today?"),
            "session_id": str(self.session_id),
        }
        # An answer still being written (this client reloaded, say): the client may resume it.
        running = await database_sync_to_async(self._running_run, thread_sensitive=False)()
        if running is not None:
            greeting["run_id"], greeting["approvals"] = running
        await self._send_json(greeting)
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
                with frame_span(frame.type, route=ROUTE_TEMPLATE, chat_id=self.session_id):
                    handlers = {"resume": self._resume, "approval": self._approval, "feedback": self._feedback}
                    handle = handlers.get(frame.type, self._message)
                    await handle(frame)
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
        reply = await database_sync_to_async(self._begin_turn, thread_sensitive=False)(frame.content, frame.context)
        live = run_launch(reply)
        self._follow(live.run, after=0)
        try:
            await self.channel_layer.group_send(
                session_group(self.session_id),
                {"type": "session.run", "run_id": live.id, "sender": self.channel_name},
            )
        except Exception:
            logger.warning("chat session %s: could not tell its other sockets of run %s", self.session_id, live.id)

    def _begin_turn(self, content: str, context: dict[str, Any] | None) -> ReplyRequest:
        """Everything before the model call, in one thread hop: the user may still use the socket,
        the context is valid, then the turn starts (its refusals are DomainErrors) and the context
        is merged before the model reads it."""
        user, chat = identity_turn_get(self.identity, self.session_id)
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
                run_abandon(run=reply.run)
                raise
        return reply

    def _running_run(self) -> tuple[str, list[dict[str, Any]]] | None:
        """The id of the session's answer being written now (one whose process died is interrupted
        first), and the tool calls it waits on for the user's decision."""
        running = chat_running_run(chat_id=self.session_id)
        if running is None or run_as_it_stands(running).status != RunStatus.RUNNING:
            return None
        return str(running.pk), [approval_payload(call) for call in run_pending_approvals(run_id=running.pk)]

    def _session_run(self, run_id: uuid.UUID | None) -> Run | None:
        """A run of this session the socket's user may see: `run_id`, or the one running now."""
        user: User = socket_identity_check(self.identity)
        if run_id is None:
            return chat_running_run(chat_id=self.session_id)
        if self.identity.visitor_id is not None:
            run = run_get(run_id=run_id, visitor_id=self.identity.visitor_id)
        else:
            run = run_get(run_id=run_id, user=user)
        if run.chat_id != self.session_id:
            raise RunNotFound()
        return run

    async def _stop(self) -> None:
        """Stop the session's answer, whichever socket (or process) started it; the followers send its
        `done` (finish_reason `cancelled`) before this socket handles anything sent after `stop`."""
        run = await database_sync_to_async(self._session_run, thread_sensitive=False)(None)
        if run is None:
            return
        await run_stop(run)
        follower = self.followers.get(str(run.pk))
        if follower is not None:
            await follower.finished(STOP_WAIT_SECONDS)

    def _decide(self, frame: ClientFrame) -> ToolCall:
        run = self._session_run(frame.run_id)
        if run is None:
            raise ApprovalNotFound()
        return approval_decide(
            run_id=run.pk,
            approval_id=frame.approval_id,
            approve=frame.decision.approve,
            arguments=frame.decision.arguments,
            by=Decision.VISITOR if self.is_visitor else Decision.USER,
            user_id=None if self.is_visitor else self.identity.user_id,
        )

    async def _approval(self, frame: ClientFrame) -> None:
        """Decide a tool call the session's run waits on (docs/tools.md); the run's followers get its
        `approval_decided` event, wherever it runs."""
        call = await database_sync_to_async(self._decide, thread_sensitive=False)(frame)
        approval_notify(call.pk)
        run_decided(call.run_id)

    def _rate(self, frame: ClientFrame) -> dict[str, Any]:
        """Rate (or clear the rating of) an answer of this session; the frame that says what is stored."""
        user = socket_identity_check(self.identity)
        chat = identity_chat_get(self.identity, user, self.session_id)
        message = feedback_message_get(message_id=frame.message_id, chat=chat)
        rating = frame.feedback.rating
        if rating is None:
            feedback_delete(message=message)
            feedback = None
        else:
            feedback = feedback_set(
                message=message, rating=rating, tags=frame.feedback.tags, comment=frame.feedback.comment
            )
        return {
            "type": "feedback",
            "message_id": str(message.pk),
            "rating": feedback.rating if feedback else None,
            "tags": list(feedback.tags) if feedback else [],
            "comment": feedback.comment if feedback else "",
        }

    async def _feedback(self, frame: ClientFrame) -> None:
        """Feedback on an answer of this session (docs/feedback.md), answered with a `feedback` frame, which
        the session's other sockets (another tab) get too."""
        stored = await database_sync_to_async(self._rate, thread_sensitive=False)(frame)
        await self._send_json(stored)
        try:
            await self.channel_layer.group_send(
                session_group(self.session_id),
                {"type": "session.feedback", "frame": stored, "sender": self.channel_name},
            )
        except Exception:
            logger.warning("chat session %s: could not tell its other sockets of a rating", self.session_id)

    async def _resume(self, frame: ClientFrame) -> None:
        run = await database_sync_to_async(self._session_run, thread_sensitive=False)(frame.run_id)
        metrics.run_resumes.labels("websocket").inc()
        with resume_span(run, after=frame.after, transport="websocket"):
            self._follow(run, after=frame.after)

    def _follow(self, run: Run, *, after: int) -> None:
        if self.closing:  # the socket is being closed (its age, say) while this frame was handled
            return
        previous = self.followers.pop(str(run.pk), None)
        if previous is not None:
            previous.task.cancel()
        follower = AnswerFollower(run, after=after, send_text=self._send_text, visitor=self.is_visitor)
        self.followers[follower.run_id] = follower
        self.followed.add(follower.run_id)
        follower.task.add_done_callback(lambda _task: self._unfollow(follower))

    def _unfollow(self, follower: AnswerFollower) -> None:
        if self.followers.get(follower.run_id) is follower:
            del self.followers[follower.run_id]

    # -- events from the channel layer ---------------------------------------------------------
    async def session_run(self, event: dict[str, Any]) -> None:
        """Another socket of this session started an answer: relay it here too."""
        if event.get("sender") == self.channel_name or self.closing or event.get("run_id") in self.followed:
            return
        try:
            run = await database_sync_to_async(self._session_run, thread_sensitive=False)(uuid.UUID(event["run_id"]))
        except DomainError:
            return
        if run is not None and str(run.pk) not in self.followed:
            self._follow(run, after=0)

    async def session_feedback(self, event: dict[str, Any]) -> None:
        """Another socket of this session rated an answer: the same `feedback` frame here."""
        if event.get("sender") != self.channel_name and not self.closing:
            await self._send_json(event["frame"])

    async def session_deleted(self, event: dict[str, Any]) -> None:
        if event.get("session_id") not in (None, str(self.session_id)):
            return
        await self._end(DomainError(_("This session was deleted."), code="session_deleted"), CLOSE_DELETED)

    async def channel_layer_failed(self, event: dict[str, Any]) -> None:
        """The shared state is gone: the client is told and the socket closes; answers run on and are
        stored, and can be resumed once the service is back."""
        exc = DomainError(
            _("The service lost its shared state; the answer goes on and is kept. Reconnect in a few seconds."),
            code="shared_state_unavailable",
            status_code=503,
        )
        await self._end(exc, CLOSE_UNAVAILABLE)

    # -- closing -------------------------------------------------------------------------------
    async def _end(self, exc: DomainError, close_code: int) -> None:
        """Error frame, then close; the answers this socket relays go on without it."""
        if self.closing:
            return
        self.closing = True
        await self._unfollow_all()
        await self._send_error(exc)
        await self.close(close_code)

    async def _unfollow_all(self) -> None:
        followers, self.followers = list(self.followers.values()), {}
        for follower in followers:
            if follower.task is not asyncio.current_task():
                await follower.cancel()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Cleanup first and each step on its own: a channel layer that is down must not keep the
        # socket slot taken.
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
        await self._unfollow_all()
        if self.slot_taken and self.identity is not None:
            self.slot_taken = False
            await sync_to_async(socket_slot_release)(user_id=self.slot_holder, socket=self.channel_name)

    # -- sending -------------------------------------------------------------------------------
    async def _send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def _send_error(self, exc: DomainError) -> None:
        await self._send_json({"type": "error", "content": exc.message, "code": exc.code})
