"""A real OTLP/HTTP trace collector on 127.0.0.1: `POST /v1/traces` with an ExportTraceServiceRequest
(protobuf, gzip or not), kept as flat `CollectedSpan`s for the tests to read."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.loopback_server import LoopbackServer

# opentelemetry.proto.trace.v1.Span.SpanKind
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class CollectedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace id, span id)
    resource: dict[str, Any]


@dataclass
class FakeCollector(LoopbackServer):
    host: str = "127.0.0.1"
    port: int = 0
    spans: list[CollectedSpan] = field(default_factory=list)
    thread_name = "fake-otlp"

    def __post_init__(self) -> None:
        self._loopback_init()
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """What OTEL_EXPORTER_OTLP_ENDPOINT names: the exporter adds /v1/traces."""
        return f"http://{self.host}:{self.port}"

    def collected(self) -> list[CollectedSpan]:
        with self._lock:
            return list(self.spans)

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        return app

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in export.resource_spans:
            resource = {item.key: _value(item.value) for item in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        CollectedSpan(
                            name=span.name,
                            kind=KINDS.get(span.kind, "unspecified"),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={item.key: _value(item.value) for item in span.attributes},
                            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                            resource=resource,
                        )
                    )
        with self._lock:
            self.spans.extend(received)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )
