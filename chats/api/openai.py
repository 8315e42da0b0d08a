"""`POST /v1/chat/completions`: a bot answers in OpenAI's wire format, through the one engine.

The request names a bot as its model (`bot-<uuid>`, see bots.selectors.bot_for_model); the bot's system
prompt, routed models (with their failover) and knowledge apply, and the call is charged and recorded
like any other. The response's `model` is the model that answered, as OpenAI names the snapshot
behind an alias.
The API is stateless, so each call is stored as a chat of its own (the turns the client sent, then
the answer): a record for usage and audit, not listed among the user's conversations.

Non-streaming answers are one `chat.completion`; streaming ones are `chat.completion.chunk` events
ending with `data: [DONE]` (usage last when `stream_options.include_usage`). Citations travel in an
extra `citations` field OpenAI clients ignore. Errors are OpenAI error objects: a JSON status before
the answer starts, an `error` event after (the SDK raises either).

Tool approvals (docs/tools.md): when the bot's model calls a tool whose policy is `ask`, the response
ends with `finish_reason` "tool_calls" and one tool call whose `id` is the approval's id (the tool's
name and arguments as the model wrote them). The client answers with a request whose last message is
`{"role": "tool", "tool_call_id": <that id>, "content": "approve" | "reject" | {"decision": ...,
"arguments": {...}}}`; its response is the rest of the same answer. Nobody answering in
TOOL_APPROVAL_SECONDS rejects the call, and the answer goes on without it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers

from accounts.authentication import authenticate_bearer
from accounts.models import User
from bots.selectors import bot_for_model
from chats.api.streams import first_batch
from chats.events import StreamEvent
from chats.models import Role, Run, Surface
from chats.runs.log import RunEvent, local_log
from chats.runs.reader import run_batches, run_events
from chats.runs.resume import run_decided
from chats.runs.runner import run_begin
from chats.services import turn_start
from chats.types import ReplyRequest
from core.api.async_views import json_body
from core.api.exception_handler import flatten_validation_errors
from core.errors import Conflict, DomainError
from core.openai_errors import openai_error_body
from core.text import text_problem
from tools.approvals import approval_decide, approval_decision_parse, approval_repeats
from tools.models import Decision, ToolCall
from tools.runtime import approval_notify
from tools.selectors import approval_of_user

ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}
MAX_MESSAGES = 200


class ChatCompletionSerializer(serializers.Serializer):
    """OpenAI's request body. Parameters that change nothing here (top_p, seed, user, ...) are
    accepted and ignored, as OpenAI clients send them; ones this API cannot honour are refused."""

    model = serializers.CharField(max_length=200)
    messages = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=MAX_MESSAGES)
    stream = serializers.BooleanField(default=False)
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, required=False, allow_null=True)
    max_tokens = serializers.IntegerField(
        min_value=1, max_value=settings.CHAT_MAX_TOKENS_CAP, required=False, allow_null=True
    )
    max_completion_tokens = serializers.IntegerField(
        min_value=1, max_value=settings.CHAT_MAX_TOKENS_CAP, required=False, allow_null=True
    )
    stop = serializers.JSONField(required=False, allow_null=True)
    stream_options = serializers.DictField(required=False, allow_null=True)
    n = serializers.IntegerField(required=False, allow_null=True)
    tools = serializers.JSONField(required=False, allow_null=True)
    user = serializers.CharField(max_length=256, required=False, allow_blank=True, allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        # Before the fields: text the database cannot store is named by its place in the body.
        problems = dict(_text_problems(data)) if isinstance(data, dict) else {}
        if problems:
            raise serializers.ValidationError({param: [problem] for param, problem in problems.items()})
        return super().to_internal_value(data)

    def validate_n(self, value: int | None) -> int | None:
        if value not in (None, 1):
            raise serializers.ValidationError(_("Only one choice (n=1) is generated."))
        return value

    def validate_tools(self, value: Any) -> Any:
        if value:
            raise serializers.ValidationError(_("Tools are not supported."))
        return value

    def validate_stop(self, value: Any) -> tuple[str, ...]:
        stops = [value] if isinstance(value, str) else value or []
        if (
            not isinstance(stops, list)
            or len(stops) > 4
            or not all(isinstance(s, str) and 0 < len(s) <= 100 for s in stops)
        ):
            raise serializers.ValidationError(_("Give up to 4 stop sequences of 1 to 100 characters."))
        return tuple(stops)

    def validate_messages(self, messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
        turns = []
        for index, message in enumerate(messages):
            role = ROLES.get(message.get("role"))
            content = _text_of(message.get("content"))
            if role is None or content is None:
                raise serializers.ValidationError(
                    _("messages[%(i)d]: give a role (system, user or assistant) and text content.") % {"i": index}
                )
            if len(content) > settings.CHAT_MAX_QUERY_CHARS:
                raise serializers.ValidationError(
                    _("messages[%(i)d]: at most %(n)d characters.") % {"i": index, "n": settings.CHAT_MAX_QUERY_CHARS}
                )
            turns.append((role, content))
        if turns[-1][0] != Role.USER:
            raise serializers.ValidationError(_("The last message must be the user's."))
        return turns


def _texts(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every text of a request body with its place (OpenAI's `param`), whatever its other faults."""
    for name in ("model", "user"):
        yield name, data.get(name)
    stop = data.get("stop")
    if isinstance(stop, list):
        yield from ((f"stop[{index}]", text) for index, text in enumerate(stop))
    else:
        yield "stop", stop
    messages = data.get("messages")
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, dict):
                    yield f"messages[{index}].content[{part_index}].text", part.get("text")
        else:
            yield f"messages[{index}].content", content


def _text_problems(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for param, text in _texts(data):
        if isinstance(text, str) and (problem := text_problem(text)):
            yield param, problem


def _text_of(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        texts = [part.get("text") for part in content if part.get("type") == "text"]
        if texts and all(isinstance(text, str) for text in texts) and len(texts) == len(content):
            return "\n".join(texts)
    return None


class InvalidRequest(DomainError):
    """A body the serializer refused; `param` is the first field it named, as OpenAI reports it."""

    code = "invalid_value"

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("; ".join(flatten_validation_errors(errors)))
        self.param = next((name for name in errors if name != "non_field_errors"), None)


def _error(exc: DomainError) -> JsonResponse:
    body = openai_error_body(exc.message, status=exc.status_code, code=exc.code, param=getattr(exc, "param", None))
    response = JsonResponse(body, status=exc.status_code)
    for name, value in exc.headers.items():
        response[name] = value
    return response


@dataclass(frozen=True, slots=True)
class Followed:
    """A request that answered a tool approval: the run it goes on with, and where its events resume."""

    run: Run
    after: int
    call: ToolCall


def _approval_answer(body: dict[str, Any]) -> dict[str, Any] | None:
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    return last if isinstance(last, dict) and last.get("role") == "tool" else None


def _decide(user: User, message: dict[str, Any]) -> Followed:
    """The client's answer to an approval (`tool_call_id` and its decision), taken as the user's."""
    content = message.get("content")
    if isinstance(content, str) and content.strip().lower() in ("approve", "reject"):
        content = {"decision": content.strip().lower()}
    elif isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            content = None
    try:
        decision = approval_decision_parse(content)
    except DomainError as exc:
        raise InvalidRequest({"messages": [exc.message]}) from None
    call = approval_of_user(user=user, approval_id=message.get("tool_call_id"))
    run = call.run
    live = local_log(str(run.pk))
    after = max(run.seq, live.last_seq if live is not None else 0)
    try:
        call = approval_decide(
            run_id=run.pk,
            approval_id=call.pk,
            approve=decision.approve,
            arguments=decision.arguments,
            by=Decision.USER,
            user_id=user.pk,
            after_seq=after,
        )
    except Conflict:
        # The same answer sent again (the SDK retries when a response is lost): the rest, from where it was.
        decided = approval_of_user(user=user, approval_id=call.pk)
        if not approval_repeats(decided, user_id=user.pk, approve=decision.approve):
            raise
        return Followed(run=run, after=decided.decided_after_seq, call=decided)
    return Followed(run=run, after=after, call=call)


def _prepare(request: HttpRequest) -> tuple[ReplyRequest | None, dict[str, Any]]:
    user = authenticate_bearer(request)
    body = json_body(request)
    if (answer := _approval_answer(body)) is not None:
        model = str(body.get("model", ""))
        bot_for_model(user=user, model=model)  # the caller's bot, as for any request (404 otherwise)
        followed = _decide(user, answer)
        return None, {"stream": bool(body.get("stream")), "followed": followed, "model": model}
    serializer = ChatCompletionSerializer(data=body)
    if not serializer.is_valid():
        raise InvalidRequest(serializer.errors)
    data = serializer.validated_data
    bot = bot_for_model(user=user, model=data["model"])
    *history, (_role, prompt) = data["messages"]
    reply, _task_type = turn_start(
        user=user,
        prompt=prompt,
        bot=bot,
        surface=Surface.OPENAI,
        history=history,
        temperature=data.get("temperature"),
        max_tokens=data.get("max_completion_tokens") or data.get("max_tokens"),
        stop=data.get("stop") or (),
    )
    return reply, data


def _usage(event: StreamEvent) -> dict[str, int]:
    usage = event.data.get("usage") or {}
    return {key: int(usage.get(key, 0)) for key in ("prompt_tokens", "completion_tokens", "total_tokens")}


def _event_error(event: StreamEvent) -> JsonResponse:
    """The engine's `error` event before anything was sent, as an OpenAI error status."""
    return _error(
        DomainError(event.content, code=event.data.get("code"), status_code=event.status_code, headers=event.headers)
    )


def _answering_model(event: StreamEvent, reply: ReplyRequest) -> str:
    """The `model` a response reports: the one that answered (as OpenAI reports the snapshot behind
    an alias), which after a failover is not the bot's chosen one."""
    return (event.answered_by or reply.spec).model


def _approval_call(event: StreamEvent) -> dict[str, Any]:
    """An approval request as the tool call the client answers (its id is the approval's)."""
    arguments = json.dumps(event.data.get("arguments") or {}, ensure_ascii=False)
    return {
        "id": event.data["approval_id"],
        "type": "function",
        "function": {"name": event.data["tool"], "arguments": arguments},
    }


async def _answer_or_approval(run: Run, after: int) -> tuple[StreamEvent, str]:
    """The run's `done` or next `approval_request` after `after`, and its text written since; its
    `error` event is raised as its DomainError."""
    written: list[str] = []
    async with aclosing(run_events(run, after=after)) as events:
        async for item in events:
            event = item.event
            if event.type == "chunk":
                written.append(event.content)
            elif event.type == "snapshot":
                written = [event.content]
            elif event.type == "error":
                raise DomainError(
                    event.content, code=event.data.get("code"), status_code=event.status_code, headers=event.headers
                )
            elif event.type in ("done", "approval_request"):
                return event, "".join(written)
    raise DomainError(_("The answer ended unexpectedly."), code="server_error", status_code=500)


async def _completion(run: Run, created: int, *, model: str, after: int = 0) -> HttpResponse:
    try:
        event, written = await _answer_or_approval(run, after)
    except DomainError as exc:
        return _error(exc)
    if event.type == "approval_request":
        message = {
            "role": "assistant",
            "content": written or None,
            "refusal": None,
            "tool_calls": [_approval_call(event)],
        }
        finish_reason, citations = "tool_calls", []
    else:
        message = {"role": "assistant", "content": event.content if not after else written, "refusal": None}
        finish_reason, citations = event.data.get("finish_reason") or "stop", event.data.get("citations", [])
        model = event.answered_by.model if event.answered_by is not None else model
    return JsonResponse(
        {
            "id": f"chatcmpl-{run.chat_id.hex}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": _usage(event),
            "citations": citations,
        }
    )


async def _chunks(
    first: list[RunEvent],
    batches: AsyncIterator[list[RunEvent]],
    *,
    chat_id: uuid.UUID,
    model: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The answer as the SDK's `chat.completion.chunk`s, the events ready together in one write (issue 15);
    a tool approval ends them with its tool call (the answer goes on once the client answers it)."""
    base = {
        "id": f"chatcmpl-{chat_id.hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def data(payload: dict[str, Any]) -> bytes:
        return f"data: {_dumps(payload)}\n\n".encode()

    def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

    # A content chunk is `choice({"content": ...})` with only the content to encode.
    head = "data: " + _dumps(choice({"content": ""})).partition('{"content":""}')[0] + '{"content":'
    tail = '},"finish_reason":null,"logprobs":null}]}\n\n'

    def encoded(item: StreamEvent) -> tuple[bytes, bool]:
        """The item's lines, and whether the stream ends with them."""
        if item.type == "chunk":
            return (head + _dumps(item.content) + tail).encode(), False
        if item.type == "error":
            return data(openai_error_body(item.content, status=item.status_code, code=item.data.get("code"))), True
        if item.type == "approval_request":
            call = {"index": 0, **_approval_call(item)}
            return data(choice({"tool_calls": [call]})) + data(choice({}, "tool_calls")) + b"data: [DONE]\n\n", True
        if item.type != "done":
            return b"", False  # tool calls' own progress: not part of OpenAI's format
        finish = choice({}, item.data.get("finish_reason") or "stop")
        lines = data({**finish, "citations": item.data.get("citations", [])})
        if include_usage:
            lines += data({**base, "choices": [], "usage": _usage(item)})
        return lines + b"data: [DONE]\n\n", True

    async with aclosing(batches):
        out = [data(choice({"role": "assistant", "content": ""}))]
        batch = first
        while True:
            for item in batch:
                lines, last = encoded(item.event)
                out.append(lines)
                if last:
                    yield b"".join(out)
                    return
            if out:
                yield b"".join(out)
                out = []
            batch = await anext(batches, None)
            if batch is None:
                break
    yield b"data: [DONE]\n\n"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = _error(DomainError(_("Use POST."), code="method_not_allowed", status_code=405))
        response["Allow"] = "POST"
        return response
    try:
        live, data = await run_begin(_prepare, request=request)
    except DomainError as exc:
        return _error(exc)
    followed: Followed | None = data.get("followed")
    if followed is not None:
        approval_notify(followed.call.pk)
        run_decided(followed.run.pk)
        run, after, model = followed.run, followed.after, data["model"]
    else:
        run, after, model = live.run, 0, live.request.spec.model
    if not data["stream"]:
        response = await _completion(run, int(time.time()), model=model, after=after)
        response["X-Run-Id"] = str(run.pk)
        return response
    # A failure before the first token is still a JSON status the SDK raises.
    batches = run_batches(run, after=after)
    first = await first_batch(batches)
    if first[0].event.type == "error":
        return _event_error(first[0].event)
    include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
    if live is not None:
        model = _answering_model(first[0].event, live.request)
    body = _chunks(first, batches, chat_id=run.chat_id, model=model, include_usage=include_usage)
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Run-Id"] = str(run.pk)
    return response


urlpatterns = [
    re_path(r"^v1/chat/completions/?$", chat_completions, name="openai-chat-completions"),
]
