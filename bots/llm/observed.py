"""Every model call measured the same way, whichever surface makes it: its duration, time to first chunk,
time per output chunk, tokens and errors, under the OpenTelemetry GenAI metric names (core/metrics.py),
and its GenAI client span (core/tracing.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from bots.llm.base import Provider
from bots.llm.errors import ProviderError
from bots.llm.types import CompletionRequest, StreamEnd, StreamItem, TextDelta
from core import metrics, tracing

# gen_ai.operation.name: every call Bytchat makes is a chat completion.
OPERATION = "chat"
# error.type for a failure that is not one of the provider layer's codes (OpenTelemetry's fallback value).
OTHER_ERROR = "_OTHER"


async def observed_stream(
    provider: Provider, request: CompletionRequest, *, surface: str, task_type: str
) -> AsyncIterator[StreamItem]:
    """`provider.astream(request)`, item for item, recording the call's metrics and its span when it
    ends however it ends: `error_type` is the provider error's code, `cancelled` when the reader stopped it."""
    measured = metrics.metrics_enabled()
    if not measured and not tracing.tracing_enabled():
        async with aclosing(provider.astream(request)) as items:
            async for item in items:
                yield item
        return
    # Started, never made current: an async generator must not hold a context across its yields.
    span = tracing.span_start(
        f"{OPERATION} {request.model}", kind="client", attributes=_request_attributes(provider, request)
    )
    clock = time.perf_counter
    started = clock()
    first: float | None = None
    previous = 0.0
    # Observed once the call is over: the chunks' own path pays one append each.
    gaps: list[float] = []
    end: StreamEnd | None = None
    error_type = ""
    try:
        async with aclosing(provider.astream(request)) as items:
            async for item in items:
                now = clock()
                if type(item) is TextDelta:
                    if first is None:
                        first = now
                    else:
                        gaps.append(now - previous)
                    previous = now
                else:
                    end = item
                yield item
    except ProviderError as exc:
        error_type = exc.code
        raise
    except (asyncio.CancelledError, GeneratorExit):
        error_type = tracing.CANCELLED
        raise
    except Exception:
        error_type = OTHER_ERROR
        raise
    finally:
        if measured:
            labels = (OPERATION, provider.name, metrics.model_label(request.model), surface, task_type or "default")
            _record(labels, clock() - started, first - started if first is not None else None, gaps, end, error_type)
        _span_end(span, end, error_type)


def _request_attributes(provider: Provider, request: CompletionRequest) -> tracing.Attributes:
    """The GenAI client span's request attributes: names and parameters, never the messages."""
    attributes: tracing.Attributes = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": provider.name,
        "gen_ai.request.model": request.model,
    }
    if request.temperature is not None:
        attributes["gen_ai.request.temperature"] = request.temperature
    if request.max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = request.max_tokens
    return attributes


def _span_end(span: tracing.SpanLike, end: StreamEnd | None, error_type: str) -> None:
    if end is not None:
        span.set_attributes(
            {
                "gen_ai.response.model": end.model,
                "gen_ai.response.finish_reasons": [end.finish_reason],
                "gen_ai.usage.input_tokens": end.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": end.usage.completion_tokens,
            }
        )
    tracing.span_failed(span, error_type, failed=error_type != tracing.CANCELLED)
    span.end()


def _record(
    labels: tuple[str, ...],
    duration: float,
    first_chunk: float | None,
    gaps: list[float],
    end: StreamEnd | None,
    error_type: str,
) -> None:
    metrics.model_call_duration.labels(*labels, error_type).observe(duration)
    if first_chunk is not None:
        metrics.model_time_to_first_chunk.labels(*labels).observe(first_chunk)
    metrics.observe_many(metrics.model_time_per_output_chunk.labels(*labels), gaps)
    if end is not None:
        metrics.model_token_usage.labels(*labels, "input").observe(end.usage.prompt_tokens)
        metrics.model_token_usage.labels(*labels, "output").observe(end.usage.completion_tokens)
