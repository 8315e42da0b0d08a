"""OpenTelemetry traces (docs/observability.md): the one module that imports OpenTelemetry.

With OTEL_EXPORTER_OTLP_ENDPOINT set, spans go to that collector over OTLP/HTTP (protobuf) in batches;
the exporter reads the other OTEL_EXPORTER_OTLP_* variables itself (headers, time-out, a traces-only
endpoint), the batch processor the OTEL_BSP_* ones. Without it this module imports nothing of
OpenTelemetry and every helper returns at its first line: no span object, no context change, no
exporting thread (docs/reliability.md L5).

Attributes carry names, ids, counts and codes: never a question, an answer, a query or a token, and
no exception message (it may quote any of those); a failure is its `error.type` (a code or a class).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from django.conf import settings

from core.errors import DomainError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.trace import Tracer

AttributeValue = str | bool | int | float | Sequence[str]
Attributes = dict[str, AttributeValue]
Kind = Literal["internal", "server", "client"]
# Instrumentation scope of every Bytchat span.
SCOPE = "bytchat"
# error.type of a call or frame its reader stopped (also the metrics' value: core/metrics.py).
CANCELLED = "cancelled"


class SpanLike(Protocol):
    def set_attribute(self, key: str, value: AttributeValue) -> None: ...
    def set_attributes(self, attributes: Attributes) -> None: ...
    def update_name(self, name: str) -> None: ...
    def set_status(self, status: Any, description: str | None = None) -> None: ...
    def end(self) -> None: ...


class _NoSpan:
    """What the helpers hand out with tracing off: one shared object that records nothing."""

    __slots__ = ()

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def set_attributes(self, attributes: Attributes) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass

    def set_status(self, status: Any, description: str | None = None) -> None:
        pass

    def end(self) -> None:
        pass


NO_SPAN: SpanLike = _NoSpan()
_OFF = contextlib.nullcontext(NO_SPAN)

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


# -- setup -----------------------------------------------------------------------------------------
def tracing_enabled() -> bool:
    return _tracer is not None


def tracing_configure() -> None:
    """Export this process's spans to OTEL_EXPORTER_OTLP_ENDPOINT, once; nothing without it."""
    if _provider is not None or not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # shutdown_on_exit: the last batch is sent when the process exits (a drained server's runs).
    _use(BatchSpanProcessor(OTLPSpanExporter()), shutdown_on_exit=True)
    # Also the global provider, for any library's own instrumentation to nest under Bytchat's spans.
    trace.set_tracer_provider(_provider)


def tracing_install(processor: SpanProcessor) -> None:
    """Tests: this process's spans go to `processor` (an in-memory exporter's) until tracing_reset()."""
    tracing_reset()
    _use(processor, shutdown_on_exit=False)


def tracing_reset() -> None:
    """Tests: back to no tracing, the installed processor flushed and shut down."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def _use(processor: SpanProcessor, *, shutdown_on_exit: bool) -> None:
    global _provider, _tracer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {
            "service.name": settings.OTEL_SERVICE_NAME,
            "service.version": settings.VERSION,
            "process.pid": os.getpid(),
            "host.name": socket.gethostname(),
        }
    )
    provider = TracerProvider(resource=resource, shutdown_on_exit=shutdown_on_exit)
    provider.add_span_processor(processor)
    _provider, _tracer = provider, provider.get_tracer(SCOPE, settings.VERSION)


# -- spans -----------------------------------------------------------------------------------------
def span(
    name: str,
    *,
    kind: Kind = "internal",
    attributes: Attributes | None = None,
    parent: str = "",
    link_current: bool = False,
) -> contextlib.AbstractContextManager[SpanLike]:
    """A span current for the `with` block, child of the current span, or of `parent` (a W3C
    traceparent) when it is a valid one; with `link_current`, it then links to the span that was
    current. An exception ending the block is recorded as `error.type` (client errors do not mark a
    span failed). Not across the yields of an async generator: use span_start there."""
    if _tracer is None:
        return _OFF
    return _current_span(name, kind, attributes, parent, link_current)


@contextlib.contextmanager
def _current_span(
    name: str, kind: Kind, attributes: Attributes | None, parent: str, link_current: bool
) -> Iterator[SpanLike]:
    from opentelemetry import trace

    context = _extracted(parent) if parent else None
    links = None
    if context is not None and link_current:
        here = trace.get_current_span().get_span_context()
        links = [trace.Link(here)] if here.is_valid else None
    with _started(name, kind, attributes, context, links) as current:
        yield current


@contextlib.contextmanager
def _started(
    name: str, kind: Kind, attributes: Attributes | None, context: Context | None, links: list[Any] | None
) -> Iterator[SpanLike]:
    with _tracer.start_as_current_span(  # type: ignore[union-attr]
        name,
        context=context,
        kind=_kind(kind),
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            span_failed(current, _error_type(exc), failed=_is_failure(exc))
            raise


def request_span(
    name: str, *, traceparent: str = "", tracestate: str = "", attributes: Attributes | None = None
) -> contextlib.AbstractContextManager[SpanLike]:
    """A SERVER span current for the block, child of the caller's trace when its `traceparent` header
    is a valid one (W3C Trace Context), else the root of a new trace."""
    if _tracer is None:
        return _OFF
    return _request_span(name, traceparent, tracestate, attributes)


@contextlib.contextmanager
def _request_span(name: str, traceparent: str, tracestate: str, attributes: Attributes | None) -> Iterator[SpanLike]:
    from opentelemetry.context import Context

    # Never a parent from this process's context: a request continues its caller's trace or starts one.
    context = (_extracted(traceparent, tracestate) if traceparent else None) or Context()
    with _started(name, "server", attributes, context, None) as current:
        yield current


def span_start(name: str, *, kind: Kind = "internal", attributes: Attributes | None = None) -> SpanLike:
    """A span child of the current one, not made current: for an async generator, or a task that
    outlives its caller (span_context). The caller ends it, in a `finally`."""
    if _tracer is None:
        return NO_SPAN
    return _tracer.start_span(name, kind=_kind(kind), attributes=attributes)


def span_context(span: SpanLike) -> contextvars.Context | None:
    """A copy of the current context with `span` current: asyncio.create_task(..., context=...) runs
    a task under it. None with tracing off (create_task then copies the current context as usual)."""
    if _tracer is None or span is NO_SPAN:
        return None
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    copied = contextvars.copy_context()
    # Attached inside the copy only; the copy lives and dies with the task.
    copied.run(otel_context.attach, trace.set_span_in_context(span))  # type: ignore[arg-type]
    return copied


def span_failed(span: SpanLike, error_type: str, *, failed: bool = True) -> None:
    """Mark `span` with `error.type`; `failed` (a server-side failure) also sets its status to Error."""
    if span is NO_SPAN or not error_type:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    if failed:
        span.set_status(Status(StatusCode.ERROR, error_type))


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return CANCELLED
    if isinstance(exc, DomainError):
        return exc.code
    return type(exc).__qualname__


def _is_failure(exc: BaseException) -> bool:
    """A stopped reader or a client's own mistake (a 4xx) is not the server failing."""
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return False
    return not isinstance(exc, DomainError) or exc.status_code >= 500


def _kind(kind: Kind) -> Any:
    from opentelemetry.trace import SpanKind

    return {"server": SpanKind.SERVER, "client": SpanKind.CLIENT}.get(kind, SpanKind.INTERNAL)


# -- context across processes ------------------------------------------------------------------------
def current_traceparent() -> str:
    """The current span as a W3C traceparent (stored with a run, so that its readers on any process
    join its trace); empty with tracing off or no span current."""
    if _tracer is None:
        return ""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent", "")


def _extracted(traceparent: str, tracestate: str = "") -> Context | None:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    context = TraceContextTextMapPropagator().extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def current_trace_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex, for a log line that leads to its trace; None
    with tracing off or no span current."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
    tracing_configure()
