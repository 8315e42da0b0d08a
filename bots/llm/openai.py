"""Every remote provider: the official openai SDK against an OpenAI-compatible base URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2  # the openai SDK's HTTP library (its own dependency)
import openai
from django.utils.translation import gettext as _

from bots.llm.errors import (
    ProviderError,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    StreamInterrupted,
)
from bots.llm.types import (
    ChatMessage,
    CompletionRequest,
    StreamEnd,
    StreamItem,
    TextDelta,
    ToolCallRequest,
    Usage,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    base_url: str
    api_key: str
    connect_timeout: float
    read_timeout: float
    total_timeout: float
    max_retries: int
    transport: str  # "aiohttp" or "httpx"


# aiohttp sessions belong to one event loop, so clients are kept per loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, openai.AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def _client_for(config: ClientSettings) -> openai.AsyncOpenAI:
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    key = (config.base_url, config.api_key, config.transport, config.max_retries)
    client = per_loop.get(key)
    if client is None:
        timeout = openai.Timeout(
            config.read_timeout, connect=config.connect_timeout, read=config.read_timeout, pool=config.connect_timeout
        )
        http_client = (
            openai.DefaultAioHttpClient(timeout=timeout)
            if config.transport == "aiohttp"
            else openai.DefaultAsyncHttpxClient(timeout=timeout)
        )
        client = openai.AsyncOpenAI(
            # Servers such as Ollama or vLLM need no key; the SDK insists on one.
            api_key=config.api_key or "no-key",
            base_url=config.base_url,
            timeout=timeout,
            max_retries=config.max_retries,
            http_client=http_client,
        )
        per_loop[key] = client
    return client


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.tool_call_id:
        wire["tool_call_id"] = message.tool_call_id
    return wire


class _ToolCallParts:
    """A streamed tool call's pieces (OpenAI sends its id and name once, its arguments in fragments)."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, delta: dict[str, Any]) -> None:
        self.id = delta.get("id") or self.id
        function = delta.get("function") or {}
        self.name = function.get("name") or self.name
        if function.get("arguments"):
            self.arguments.append(function["arguments"])

    def request(self, index: int) -> ToolCallRequest:
        return ToolCallRequest(id=self.id or f"call_{index}", name=self.name, arguments="".join(self.arguments))


class UpstreamStreamError(Exception):
    """An error object (or something that is not a chunk) inside an otherwise successful stream."""


def _refused(exc: BaseException) -> bool:
    """A refused connection, which the SDK's aiohttp transport reports as a connect timeout."""
    seen: BaseException | None = exc
    for _depth in range(10):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def aclose_clients() -> None:
    """Close the clients of the running loop (tests and shutdown; a server keeps them for its life)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.close()


class OpenAICompatibleProvider:
    def __init__(self, *, name: str, config: ClientSettings) -> None:
        self.name = name
        self.config = config

    def _request_kwargs(self, request: CompletionRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": request.model,
            # The messages travel in `extra_body`, which the SDK sends as given: its typed `messages`
            # argument is walked field by field against its TypedDicts first, ~7 ms with a long history
            # (bench/relay.py), for plain role/content pairs that need no transforming.
            "messages": [],
            "extra_body": {"messages": [_wire_message(m) for m in request.messages]},
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            kwargs["extra_body"]["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            # OpenAI's newer models only take max_completion_tokens; compatible servers know max_tokens.
            key = "max_completion_tokens" if self.name == "openai" else "max_tokens"
            kwargs[key] = request.max_tokens
        if request.stop:
            kwargs["stop"] = list(request.stop)
        return kwargs

    def _translate(self, exc: Exception, *, model: str, started: bool) -> ProviderError:
        provider = self.name
        if not started and _refused(exc):
            return ProviderUnavailable(_("Could not reach the model provider %(provider)s.") % {"provider": provider})
        # Reading the raw stream raises the SDK's HTTP library's own timeouts, not APITimeoutError.
        if isinstance(exc, openai.APITimeoutError | TimeoutError | httpx2.TimeoutException):
            return ProviderTimeout(_("The model provider %(provider)s timed out.") % {"provider": provider})
        if isinstance(exc, openai.APIConnectionError) and not started:
            return ProviderUnavailable(_("Could not reach the model provider %(provider)s.") % {"provider": provider})
        if isinstance(exc, openai.RateLimitError):
            retry_after = exc.response.headers.get("retry-after") if exc.response is not None else None
            headers = {"Retry-After": retry_after} if retry_after and retry_after.isdigit() else {}
            return ProviderUnavailable(
                _("The model provider %(provider)s is rate limiting requests; try again later.")
                % {"provider": provider},
                code="provider_rate_limited",
                headers=headers,
            )
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ProviderError(
                _("The model provider %(provider)s rejected the configured credentials.") % {"provider": provider},
                code="provider_auth_failed",
            )
        if isinstance(exc, openai.NotFoundError):
            return ProviderError(
                _("The model provider %(provider)s does not offer the model %(model)s.")
                % {"provider": provider, "model": model},
                code="provider_model_not_found",
            )
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                return ProviderError(
                    _("The model provider %(provider)s failed (HTTP %(status)s).")
                    % {"provider": provider, "status": exc.status_code}
                )
            return ProviderRefused(
                _("The model provider %(provider)s refused the request (HTTP %(status)s).")
                % {"provider": provider, "status": exc.status_code}
            )
        return StreamInterrupted(
            _("The connection to the model provider %(provider)s was lost.") % {"provider": provider}
        )

    async def astream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        """Text deltas, then one StreamEnd.

        The SDK sends the request (auth, retries, timeouts, error statuses as its exceptions) and we
        read the event lines of its raw streaming response ourselves: the SDK's own chunk objects
        cost ~200 us of CPU a token, `json.loads` ~12 us (bench/relay.py). Upstream errors sent
        inside the stream become ours like any other failure.
        """
        client = _client_for(self.config)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.total_timeout
        if request.deadline is not None:
            deadline = min(deadline, request.deadline)
        finish_reason: str | None = None
        model = request.model
        usage: Usage | None = None
        completion_chars: list[str] = []
        tool_calls: dict[int, _ToolCallParts] = {}
        started = False
        async with contextlib.AsyncExitStack() as resources:
            try:
                async with asyncio.timeout_at(deadline):
                    # Closing the response (client gone, error, or done) stops the upstream generation.
                    response = await resources.enter_async_context(
                        client.chat.completions.with_streaming_response.create(**self._request_kwargs(request))
                    )
                lines = response.iter_lines().__aiter__()
                while True:
                    try:
                        async with asyncio.timeout_at(deadline):
                            line = await lines.__anext__()
                    except StopAsyncIteration:
                        break
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, `event:` lines
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if not isinstance(chunk, dict) or "error" in chunk:
                        raise UpstreamStreamError(str(chunk)[:300])
                    model = chunk.get("model") or model
                    if chunk_usage := chunk.get("usage"):
                        usage = Usage(
                            prompt_tokens=chunk_usage.get("prompt_tokens") or 0,
                            completion_tokens=chunk_usage.get("completion_tokens") or 0,
                        )
                    for choice in (chunk.get("choices") or [])[:1]:
                        delta = choice.get("delta") or {}
                        for part in delta.get("tool_calls") or ():
                            tool_calls.setdefault(int(part.get("index") or 0), _ToolCallParts()).add(part)
                        text = delta.get("content")
                        if text:
                            started = True
                            completion_chars.append(text)
                            yield TextDelta(text)
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
            except Exception as exc:  # vendor, transport and parsing errors alike become ours
                error = self._translate(exc, model=request.model, started=started)
                # The details (upstream status and message) stay in the server log, never in the reply.
                logger.warning(
                    "provider %s failed for model %s after %s: %s (status %s) %s",
                    self.name,
                    request.model,
                    "first token" if started else "no token",
                    type(exc).__name__,
                    getattr(exc, "status_code", "-"),
                    str(exc)[:300],
                )
                raise error from exc
        if finish_reason is None:
            logger.warning("provider %s stream for %s ended without finish_reason", self.name, request.model)
            raise StreamInterrupted(
                _("The model provider %(provider)s ended the answer before finishing it.") % {"provider": self.name}
            )
        if usage is None:
            text = "".join(completion_chars)
            usage = Usage.estimate((m.content for m in request.messages), text)
        calls = tuple(parts.request(index) for index, parts in sorted(tool_calls.items()) if parts.name)
        yield StreamEnd(model=model, finish_reason=finish_reason, usage=usage, tool_calls=calls)
