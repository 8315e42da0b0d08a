"""The one conversation engine: builds the model input and relays the provider's stream, with failover,
autocontinuation and their quota charges. The engine stores nothing: the run that drives it
(chats/runs/runner.py) stores the answer however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import CallOutcome
from accounts.quotas import QuotaCharge, QuotaExceeded, quota_refund, quota_take_another
from accounts.services import CallRecord
from bots.llm import ProviderError, get_provider
from bots.llm.observed import observed_stream
from bots.llm.types import ChatMessage, CompletionRequest, ModelSpec, StreamEnd, TextDelta, ToolSpec, Usage
from chats.events import StreamEvent
from chats.models import Message, Surface
from chats.prompts import build_model_input, continuation_input
from chats.selectors import branch_history
from chats.types import ReplyRequest
from chats.websearch import web_search
from knowledge.retrieval import Passage, search
from tools.models import ToolCall
from tools.runtime import RoundState, ToolBox, assistant_message, calls_settle, round_run, tool_message, toolbox_load
from tools.selectors import run_tool_calls

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


async def _charge_another(charge: QuotaCharge) -> QuotaCharge | None:
    """One more call's charge; if the answer is stopped while it is being taken, it is given back once
    taken (the thread runs on)."""
    task = asyncio.ensure_future(released(quota_take_another)(charge=charge))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            taken = await task
            if taken is not None:
                await released(quota_refund)(charge=taken)
        raise


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


@dataclass(frozen=True, slots=True)
class TurnContext:
    history: list[Message]
    passages: list[Passage]
    toolbox: ToolBox | None
    # A resumed run's tool calls so far (chats/runs/resume.py).
    earlier_calls: list[ToolCall]


def _turn_context(request: ReplyRequest) -> TurnContext:
    """The branch history, the retrieved passages and the bot's tools, read in one thread hop (one connection)."""
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
    toolbox = toolbox_load(
        bot_id=request.chat.bot_id,
        owner_id=request.chat.owner_id,
        knowledge_base_ids=request.knowledge_base_ids,
        # An MCP client's ask (/mcp) has nowhere to show an approval: only the bot's `allow` tools.
        approvals=request.surface != Surface.MCP,
    )
    earlier = run_tool_calls(run_id=request.run.pk) if request.resumed and request.run is not None else []
    return TurnContext(history, passages, toolbox, earlier)


@dataclass(slots=True)
class Answer:
    """One answer's state as the engine writes it; the run reads it to store the answer however it ends."""

    request: ReplyRequest
    spec: ModelSpec  # the model answering: the chosen one, or one failed over to
    call_day: datetime.date
    parts: list[str] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)  # the model calls made so far
    answered: bool = False  # the first call produced something, so its charge stays
    unspent: QuotaCharge | None = None  # a continuation's charge, until the model writes
    messages: tuple[ChatMessage, ...] = ()
    call_start: int = 0  # where the current call's text starts in `parts`
    usage: Usage = field(default_factory=lambda: Usage(prompt_tokens=0, completion_tokens=0, estimated=False))
    continuations: int = 0
    end: StreamEnd | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    toolbox: ToolBox | None = None
    rounds: int = 0  # tool rounds so far

    @classmethod
    def of(cls, request: ReplyRequest) -> Answer:
        charge = request.lease.charge if request.lease is not None else None
        return cls(request=request, spec=request.spec, call_day=charge.day if charge else timezone.localdate())

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def calls_with_broken(self, outcome: CallOutcome) -> list[CallRecord]:
        """The calls made, and the current one if it broke after writing (charged, tokens estimated)."""
        written = "".join(self.parts[self.call_start :])
        if not written:
            return self.calls
        return [*self.calls, _interrupted_call(self.spec.model, self.messages, written, self.call_day, outcome)]


async def _model_input(request: ReplyRequest, answer: Answer) -> tuple[tuple[ChatMessage, ...], list[ToolCall]]:
    turn = await released(_turn_context)(request=request)
    answer.toolbox = turn.toolbox
    history = turn.history
    if request.resumed:  # the question is the run's, whatever the chat's current node is now
        history = [message for message in history if message.pk != request.run.message_id]
    web_results = await web_search(request.user_message.content) if request.web_search else []
    passages = turn.passages
    answer.citations = [passage.citation() for passage in passages] + [result.citation() for result in web_results]
    model_input = build_model_input(
        system_prompt=request.system_prompt,
        history=[(message.role, message.content) for message in history],
        context=request.chat.context,
        passages=passages,
        web_results=web_results,
    )
    return model_input, turn.earlier_calls


def _round_state(request: ReplyRequest, answer: Answer, number: int) -> RoundState:
    return RoundState(
        run_id=request.run.pk,
        message_id=request.run.message_id,
        number=number,
        first_citation=len(answer.citations) + 1,
    )


async def _tool_round(
    request: ReplyRequest, answer: Answer, end: StreamEnd, written: str
) -> AsyncIterator[StreamEvent | tuple[ChatMessage, ...]]:
    """The calls the model asked for, settled; the last item is the messages the model reads next."""
    answer.rounds += 1
    state = _round_state(request, answer, answer.rounds)
    async for event in round_run(answer.toolbox, state, end.tool_calls, written):
        yield event
    answer.citations.extend(state.citations)
    yield tuple(state.replies)


async def _resumed_rounds(request: ReplyRequest, answer: Answer, calls: list[ToolCall]) -> AsyncIterator[Any]:
    """A resumed run's rounds as stored, the one it stopped in settled now (its decision was taken while
    no process ran it); the last item is the messages the model reads next."""
    replies: list[ChatMessage] = []
    by_round: dict[int, list[ToolCall]] = {}
    for call in calls:
        by_round.setdefault(call.round, []).append(call)
    last = max(by_round)
    for number, round_calls in sorted(by_round.items()):
        replies.append(assistant_message(round_calls[0].said_before, round_calls))
        if number != last:
            replies.extend(tool_message(call) for call in round_calls)
            answer.citations.extend(c for call in round_calls for c in call.citations)
            continue
        state = _round_state(request, answer, number)
        toolbox = answer.toolbox or ToolBox({}, request.chat.owner_id, None)
        async for event in calls_settle(toolbox, state, round_calls, resumed=True):
            yield event
        replies.extend(state.replies)
        answer.citations.extend(state.citations)
    answer.rounds = last
    yield tuple(replies)


async def _charge_next_call(request: ReplyRequest, answer: Answer) -> None:
    """A tool round's next model call is charged before it is made; with the quota used up the answer ends."""
    basis = request.lease.charge if request.lease is not None and request.lease.charge else request.quota_basis
    if basis is None:
        return
    answer.unspent = await _charge_another(basis)
    if answer.unspent is None:
        raise QuotaExceeded(
            _("The daily quota was used up while the answer was using tools; what was written is kept.")
        )
    answer.call_day = answer.unspent.day


def _offered(answer: Answer) -> tuple[ToolSpec, ...]:
    """The tools the model may ask for now: none once TOOL_MAX_ROUNDS rounds were made (it must answer)."""
    if answer.toolbox is None or answer.rounds >= settings.TOOL_MAX_ROUNDS:
        return ()
    return answer.toolbox.specs


async def _call(answer: Answer, candidates: list[ModelSpec], deadline: float | None) -> AsyncIterator[StreamEvent]:
    """One model call's chunks. Before its first token, a failure of the provider's own passes the call
    to the next of `candidates` (bots/routing.py), all within `deadline`; a continuation (no
    deadline, no candidates) stays with the model that wrote the answer so far."""
    request = answer.request
    while True:
        if candidates:
            answer.spec = candidates.pop(0)
        completion = CompletionRequest(
            model=answer.spec.model,
            messages=answer.messages,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            stop=request.stop,
            deadline=deadline,
            tools=_offered(answer),
        )
        wrote = False
        try:
            provider = get_provider(answer.spec.provider)
            call = observed_stream(provider, completion, surface=request.surface, task_type=answer.spec.task_type)
            async with aclosing(call) as items:
                async for item in items:
                    answer.answered, answer.unspent, wrote = True, None, True
                    if isinstance(item, TextDelta):
                        answer.parts.append(item.text)
                        yield StreamEvent.chunk(item.text, answered_by=answer.spec)
                    else:
                        answer.end = item
            return
        except ProviderError as exc:
            if deadline is None or not _may_fail_over(exc, wrote=wrote, left=len(candidates), deadline=deadline):
                raise
            logger.warning(
                "chat %s: %s/%s failed before its first token (%s); %s/%s answers instead",
                request.chat.pk,
                answer.spec.provider,
                answer.spec.model,
                exc.code,
                candidates[0].provider,
                candidates[0].model,
            )


async def reply_stream(request: ReplyRequest, answer: Answer) -> AsyncIterator[StreamEvent]:
    """Chunks as the model writes them; how the answer ended (model, finish reason, usage, calls) is
    left in `answer`. Failures raise: a DomainError (the provider's or the request's), or any other.

    With `autocontinue`, an answer cut for length is continued (the model sees what it wrote and is
    asked to go on) up to CHAT_AUTOCONTINUE_MAX more times; the client sees one answer.

    Failover (bots/routing.py): if the chosen model fails before its first token for a reason of its
    provider's (outage, rate limit, time-out, refused key, unknown model; not a request the provider
    refuses as such), the next of `request.fallbacks` answers instead, each once, all within
    LLM_TOTAL_TIMEOUT. Once a token has been relayed there is no failover.

    Quota (accounts/quotas.py): `turn_start` charged the first call. Each continuation is charged
    before it is made, and not made once the quota is used up (the answer stays cut for length).
    """
    model_input, earlier_calls = await _model_input(request, answer)
    candidates = [request.spec, *request.fallbacks]
    if earlier_calls:
        async for item in _resumed_rounds(request, answer, earlier_calls):
            if isinstance(item, StreamEvent):
                yield item
            else:
                model_input = (*model_input, *item)
        await _charge_next_call(request, answer)
    # After a resumed round's waits and tools: LLM_TOTAL_TIMEOUT bounds the model calls.
    deadline: float | None = asyncio.get_running_loop().time() + settings.LLM_TOTAL_TIMEOUT
    while True:
        answer.messages = model_input if not answer.continuations else continuation_input(model_input, answer.text)
        answer.call_start = len(answer.parts)
        answer.end = None
        async for event in _call(answer, candidates, deadline):
            yield event
        end = answer.end
        if end is None:
            raise RuntimeError(f"provider {answer.spec.provider} ended its stream without StreamEnd")
        answer.usage = answer.usage + end.usage
        answer.calls.append(CallRecord(model=end.model, usage=end.usage, day=answer.call_day))
        written = "".join(answer.parts[answer.call_start :])
        answer.call_start = len(answer.parts)  # recorded: none of its text belongs to a call that may break later
        if end.tool_calls and _offered(answer):
            async for item in _tool_round(request, answer, end, written):
                if isinstance(item, StreamEvent):
                    yield item
                else:
                    model_input = (*model_input, *item)
            await _charge_next_call(request, answer)
            candidates, deadline = [], None
            continue
        if not (request.autocontinue and end.finish_reason == "length"):
            return
        if answer.continuations >= settings.CHAT_AUTOCONTINUE_MAX:
            return
        charge = request.lease.charge if request.lease is not None else None
        if charge is not None:
            answer.unspent = await _charge_another(charge)
            if answer.unspent is None:
                return  # the quota is used up: the answer stays cut for length
            answer.call_day = answer.unspent.day
        answer.continuations += 1
        candidates, deadline = [], None
