"""The one conversation engine: builds the model input, relays the provider stream, persists the reply."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import CallOutcome
from accounts.quotas import QuotaCharge, quota_refund, quota_take_another
from accounts.services import CallRecord, model_calls_record
from bots.llm import ProviderError, get_provider
from bots.llm.types import ChatMessage, CompletionRequest, ModelSpec, StreamEnd, TextDelta, Usage
from chats.events import StreamEvent
from chats.models import Message, MessageStatus
from chats.prompts import build_model_input, continuation_input
from chats.selectors import branch_history
from chats.services import assistant_message_create, turn_lease_release
from chats.types import ReplyRequest, TurnLease
from chats.websearch import web_search
from core.errors import DomainError, NotFound
from knowledge.retrieval import Passage, search

logger = logging.getLogger(__name__)
T = TypeVar("T")


def released(function: Callable[..., T]) -> Callable[..., Any]:
    """Run ORM work in a thread, then give the connection back: none is held while the model writes.

    Not thread-sensitive: the work goes to the loop's pool of threads. Thread-sensitive calls from a
    Channels consumer all queue on one process-wide thread (Django gives each HTTP request its own,
    Channels gives sockets none), which made 100 sockets wait on each other (bench/relay.py).
    """

    def run(**kwargs: Any) -> T:
        try:
            return function(**kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


def _lease_of(prepared: Any) -> TurnLease | None:
    reply = prepared[0] if isinstance(prepared, tuple) and prepared else prepared
    return reply.lease if isinstance(reply, ReplyRequest) else None


async def turn_prepared(prepare: Callable[..., T], **kwargs: Any) -> T:
    """Run a view's preparation (auth, validation, `turn_start`) in a thread, like `released`.

    If the client leaves meanwhile, the view is cancelled but the thread runs on and may take the
    turn's lease (stream slot, chat lock): it is given back once taken, instead of being held
    until its TTL. `prepare` returns a ReplyRequest, or a tuple that starts with one.
    """
    task = asyncio.ensure_future(released(prepare)(**kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            lease = _lease_of(await task)
            if lease is not None:
                await sync_to_async(turn_lease_release)(lease)
        raise


def _store_reply(request: ReplyRequest, calls: list[CallRecord], **fields: Any) -> Message:
    """The reply and the model calls behind it, stored together."""
    with transaction.atomic():
        message = assistant_message_create(chat=request.chat, parent=request.user_message, **fields)
        if calls:
            model_calls_record(user_id=request.chat.owner_id, surface=request.surface, calls=calls)
    return message


async def _save_reply(
    request: ReplyRequest, text: str, status: MessageStatus, calls: list[CallRecord], **fields: Any
) -> Message:
    return await released(_store_reply)(request=request, calls=calls, content=text, status=status, **fields)


async def _charge_another(charge: QuotaCharge) -> QuotaCharge | None:
    """One more call's charge; if the client leaves while it is being taken, it is given back once
    taken (the thread runs on), as `turn_prepared` does with a lease."""
    task = asyncio.ensure_future(released(quota_take_another)(charge=charge))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            taken = await task
            if taken is not None:
                await released(quota_refund)(charge=taken)
        raise


def _turn_end(lease: TurnLease | None, *, answered: bool, unspent: QuotaCharge | None) -> None:
    """Give back the turn's lease (and its charge if the model never answered) and an unspent
    autocontinuation's charge, in one thread hop."""
    if lease is not None:
        turn_lease_release(lease, answered=answered)
    if unspent is not None:
        quota_refund(unspent)


def _interrupted_call(
    model: str,
    messages: tuple[ChatMessage, ...],
    written: str,
    day: datetime.date,
    outcome: CallOutcome,
) -> CallRecord:
    """A call that broke after its first token: charged, with tokens estimated (no usage arrived)."""
    usage = Usage.estimate((m.content for m in messages), written)
    return CallRecord(model=model, usage=usage, day=day, outcome=outcome)


def _may_fail_over(exc: ProviderError, *, wrote: bool, left: int, deadline: float) -> bool:
    """Whether the next model may answer instead: nothing was relayed yet, the failure is the
    provider's (not the request's), a model is left and so is time (LLM_TOTAL_TIMEOUT for all)."""
    return not wrote and exc.retry_elsewhere and left > 0 and asyncio.get_running_loop().time() < deadline


def _turn_context(request: ReplyRequest) -> tuple[list[Message], list[Passage]]:
    """The branch history and the retrieved passages, read in one thread hop (one connection)."""
    if request.user_message.parent_id is None:
        history = [request.user_message]  # a chat's first question: nothing to read
    else:
        history = branch_history(
            chat=request.chat, leaf_id=request.user_message.id, limit=settings.CHAT_HISTORY_MESSAGES
        )
    passages: list[Passage] = []
    if request.knowledge_base_ids is None or request.knowledge_base_ids:
        passages = search(
            owner_id=request.chat.owner_id,
            query=request.user_message.content,
            knowledge_base_ids=request.knowledge_base_ids,
            limit=settings.KNOWLEDGE_PASSAGES_IN_CONTEXT,
        )
    return history, passages


async def reply_stream(request: ReplyRequest) -> AsyncIterator[StreamEvent]:
    """Chunks as the model writes them, then `done` (reply stored) or `error` (partial stored, if any).

    If the consumer goes away (cancellation or close), the upstream request is closed and the
    partial answer is stored with status `cancelled`. The stream always ends with `done` or
    `error`, so a client can tell a finished answer from a broken one. With `autocontinue`, an
    answer cut for length is continued (the model sees what it wrote and is asked to go on) up to
    CHAT_AUTOCONTINUE_MAX more times; the client sees one answer and one `done`.

    Failover (bots/routing.py): if the chosen model fails before its first token for a reason of its
    provider's (outage, rate limit, time-out, refused key, unknown model; not a request the provider
    refuses as such), the next of `request.fallbacks` answers instead, each once, all within
    LLM_TOTAL_TIMEOUT. The client sees one answer; the model that wrote it is the one stored,
    recorded and reported. Once a token has been relayed there is no failover.

    Quota (accounts/quotas.py): `turn_start` charged the first call. Each continuation is charged
    before it is made, and not made once the quota is used up (the answer stays cut for length).
    A call that produces nothing is given back; one that breaks after its first token stays
    charged and is recorded with estimated tokens.
    """
    parts: list[str] = []
    calls: list[CallRecord] = []  # the model calls made so far, recorded with the reply
    final_save: asyncio.Future[Message] | None = None
    charge = request.lease.charge if request.lease is not None else None
    call_day = charge.day if charge is not None else timezone.localdate()
    answered = False  # the first call produced something, so its charge stays
    unspent: QuotaCharge | None = None  # a continuation's charge, until the model writes
    messages: tuple[ChatMessage, ...] = ()
    call_start = 0  # where the current call's text starts in `parts`
    spec = request.spec  # the model answering: the chosen one, or one failed over to

    def broken_call(outcome: CallOutcome) -> list[CallRecord]:
        written = "".join(parts[call_start:])
        if not written:
            return calls
        return [*calls, _interrupted_call(spec.model, messages, written, call_day, outcome)]

    try:
        history, passages = await released(_turn_context)(request=request)
        web_results = await web_search(request.user_message.content) if request.web_search else []
        citations = [passage.citation() for passage in passages] + [result.citation() for result in web_results]
        model_input = build_model_input(
            system_prompt=request.system_prompt,
            history=[(message.role, message.content) for message in history],
            context=request.chat.context,
            passages=passages,
            web_results=web_results,
        )
        usage = Usage(prompt_tokens=0, completion_tokens=0, estimated=False)
        continuations = 0
        # The first call may fail over to the next model before its first token, all within one total
        # time; a continuation stays with the model that wrote the answer so far.
        candidates = [request.spec, *request.fallbacks]
        deadline = asyncio.get_running_loop().time() + settings.LLM_TOTAL_TIMEOUT
        while True:
            messages = model_input if not continuations else continuation_input(model_input, "".join(parts))
            call_start = len(parts)
            end: StreamEnd | None = None
            while True:
                spec = candidates.pop(0) if not continuations else spec
                completion = CompletionRequest(
                    model=spec.model,
                    messages=messages,
                    temperature=request.temperature,
                    max_tokens=request.max_tokens,
                    stop=request.stop,
                    deadline=None if continuations else deadline,
                )
                wrote = False
                try:
                    async with aclosing(get_provider(spec.provider).astream(completion)) as items:
                        async for item in items:
                            answered, unspent, wrote = True, None, True
                            if isinstance(item, TextDelta):
                                parts.append(item.text)
                                yield StreamEvent.chunk(item.text, answered_by=spec)
                            else:
                                end = item
                    break
                except ProviderError as exc:
                    left = 0 if continuations else len(candidates)
                    if not _may_fail_over(exc, wrote=wrote, left=left, deadline=deadline):
                        raise
                    logger.warning(
                        "chat %s: %s/%s failed before its first token (%s); %s/%s answers instead",
                        request.chat.pk,
                        spec.provider,
                        spec.model,
                        exc.code,
                        candidates[0].provider,
                        candidates[0].model,
                    )
            if end is None:
                raise RuntimeError(f"provider {spec.provider} ended its stream without StreamEnd")
            usage = usage + end.usage
            calls.append(CallRecord(model=end.model, usage=end.usage, day=call_day))
            call_start = len(parts)  # recorded: none of its text belongs to a call that may break later
            if not (request.autocontinue and end.finish_reason == "length"):
                break
            if continuations >= settings.CHAT_AUTOCONTINUE_MAX:
                break
            if charge is not None:
                unspent = await _charge_another(charge)
                if unspent is None:
                    break  # the quota is used up: the answer stays cut for length
                call_day = unspent.day
            continuations += 1
        text = "".join(parts)
        # Shielded: a cancellation landing during the save must not store a second, partial row.
        final_save = asyncio.ensure_future(
            _save_reply(
                request,
                text,
                MessageStatus.COMPLETE,
                calls,
                model=end.model,
                finish_reason=end.finish_reason,
                usage=usage,
                citations=citations,
            )
        )
        message = await asyncio.shield(final_save)
        last = StreamEvent.done(
            text,
            answered_by=spec,
            message_id=str(message.id),
            chat_id=str(request.chat.id),
            parent_id=str(request.user_message.id),
            model=end.model,
            finish_reason=end.finish_reason,
            usage={
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "estimated": usage.estimated,
            },
            citations=citations,
            continuations=continuations,
        )
    except DomainError as exc:
        await _save_partial(request, parts, MessageStatus.ERROR, exc.message, broken_call(CallOutcome.ERROR), spec)
        last = StreamEvent.error(exc.message, code=exc.code, status_code=exc.status_code, headers=exc.headers)
    except (asyncio.CancelledError, GeneratorExit):
        if final_save is not None:
            await asyncio.shield(final_save)  # the whole answer is being stored; nothing partial to add
        elif request.interruption.reason:
            await asyncio.shield(
                _save_partial(
                    request,
                    parts,
                    MessageStatus.ERROR,
                    request.interruption.reason,
                    broken_call(CallOutcome.ERROR),
                    spec,
                )
            )
        else:
            await asyncio.shield(
                _save_partial(
                    request,
                    parts,
                    MessageStatus.CANCELLED,
                    _("The client disconnected before the answer was complete."),
                    broken_call(CallOutcome.CANCELLED),
                    spec,
                )
            )
        raise
    except Exception:
        logger.exception("reply to chat %s failed", request.chat.pk)
        message_text = _("The answer failed on the server; what was written so far is kept.")
        await _save_partial(request, parts, MessageStatus.ERROR, message_text, broken_call(CallOutcome.ERROR), spec)
        last = StreamEvent.error(message_text, code="server_error", status_code=500)
    finally:
        # Before the last event: a client that reads `done` or `error` may ask again at once.
        if request.lease is not None or unspent is not None:
            await asyncio.shield(released(_turn_end)(lease=request.lease, answered=answered, unspent=unspent))
    yield last


async def _save_partial(
    request: ReplyRequest,
    parts: list[str],
    status: MessageStatus,
    error: str,
    calls: list[CallRecord],
    spec: ModelSpec,
) -> None:
    """Keep what arrived before a failure; an answer that never started stores no empty message."""
    record_calls = released(model_calls_record)
    try:
        if status == MessageStatus.ERROR and not parts:
            if calls:  # calls that wrote nothing (an empty first part) are charged all the same
                await record_calls(user_id=request.chat.owner_id, surface=request.surface, calls=calls)
            return
        finish_reason = "cancelled" if status == MessageStatus.CANCELLED else "error"
        try:
            await _save_reply(
                request,
                "".join(parts),
                status,
                calls,
                model=spec.model,
                finish_reason=finish_reason,
                error=error,
            )
        except NotFound:
            logger.info("chat %s was deleted while answering; its partial reply is dropped", request.chat.pk)
            if calls:
                await record_calls(user_id=request.chat.owner_id, surface=request.surface, calls=calls)
    except Exception:
        logger.exception("could not store the partial reply of chat %s", request.chat.pk)


async def reply_to_end(request: ReplyRequest) -> StreamEvent | None:
    """Runs the engine to the end for a surface that answers in one piece: the `done` event, or None
    when the stream ended without one; the engine's `error` event is raised as its DomainError."""
    async with aclosing(reply_stream(request)) as events:
        async for event in events:
            if event.type == "error":
                raise DomainError(
                    event.content, code=event.data.get("code"), status_code=event.status_code, headers=event.headers
                )
            if event.type == "done":
                return event
    return None
