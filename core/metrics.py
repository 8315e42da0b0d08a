"""Every metric Bytchat exports at /metrics (docs/observability.md), defined in one place.

Names follow the OpenTelemetry semantic conventions where one exists, in their Prometheus form (dots
become underscores, the unit a suffix): `gen_ai.client.operation.duration` (seconds) is
`gen_ai_client_operation_duration_seconds`, `http.server.request.duration` is
`http_server_request_duration_seconds`; Bytchat's own are `bytchat_*`.

Several processes report together through prometheus-client's multiprocess mode when
PROMETHEUS_MULTIPROC_DIR names a directory (`make run` and `make cluster` give every process the same
fresh one); without it each process serves its own figures. Gauges of things that live in a process
(answers streaming, open sockets) count only live processes (`livesum`).

Labels come only from LABELS, and their values from closed sets (surfaces, statuses, user types,
route templates) or, for a model name a bot owner typed, `model_label` (sanitized, and a bounded
number of distinct values): never a user id, a path with ids, or free text (docs/reliability.md L2).
"""

from __future__ import annotations

import os
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
    multiprocess,
)

# The only label names any Bytchat metric carries (tests/test_metrics.py fails on any other).
LABELS = frozenset(
    {
        "gen_ai_operation_name",
        "gen_ai_provider_name",
        "gen_ai_request_model",
        "gen_ai_token_type",
        "error_type",
        "bytchat_surface",
        "bytchat_task_type",
        "status",
        "transport",
        "user_type",
        "mode",
        "http_request_method",
        "http_route",
        "http_response_status_code",
    }
)

# OpenTelemetry GenAI semantic conventions (client metrics), with their recommended bucket boundaries.
_MODEL_CALL = [
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "bytchat_surface",
    "bytchat_task_type",
]
model_call_duration = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "GenAI operation duration: one model call, from the request to its last chunk or its failure.",
    [*_MODEL_CALL, "error_type"],
    buckets=(0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92),
)
model_time_to_first_chunk = Histogram(
    "gen_ai_client_operation_time_to_first_chunk_seconds",
    "Time from a streaming model call's request to its first chunk.",
    _MODEL_CALL,
    buckets=(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
)
model_time_per_output_chunk = Histogram(
    "gen_ai_client_operation_time_per_output_chunk_seconds",
    "Time between a streaming model call's chunks, one observation per chunk after the first.",
    _MODEL_CALL,
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5),
)
model_token_usage = Histogram(
    "gen_ai_client_token_usage",
    "Tokens of one model call, input or output (gen_ai_token_type); the _sum is the tokens counted.",
    [*_MODEL_CALL, "gen_ai_token_type"],
    buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864),
)

# Runs (chats/runs/) and their readers.
runs_streaming = Gauge(
    "bytchat_runs_streaming", "Answers being generated now.", ["bytchat_surface"], multiprocess_mode="livesum"
)
runs_ended = Counter(
    "bytchat_runs", "Answers ended, by how: complete, cancelled (stopped), error, interrupted.",
    ["bytchat_surface", "status"],
)  # fmt: skip
run_resumes = Counter(
    "bytchat_run_resumes", "Readers that resumed a run from a position (after a reload or a dropped connection).",
    ["transport"],
)  # fmt: skip
run_gap_fallbacks = Counter(
    "bytchat_run_gap_fallbacks",
    "Resumes whose missing events no log held, answered from the last checkpoint instead (a snapshot).",
)
websocket_connections = Gauge(
    "bytchat_websocket_connections", "WebSocket connections open now.", ["http_route"], multiprocess_mode="livesum"
)

# Limits, by user type (free, pro, staff, visitor): never by user.
quota_refusals = Counter(
    "bytchat_quota_refusals", "Model calls refused because the daily quota was used up.", ["user_type"]
)
stream_slot_refusals = Counter(
    "bytchat_stream_slot_refusals", "Answers refused because the parallel-stream limit was reached.", ["user_type"]
)

# Retrieval and web search.
retrieval_duration = Histogram(
    "bytchat_retrieval_duration_seconds",
    "Knowledge retrieval time by mode: lexical (BM25), vector, fused (the whole hybrid search).",
    ["mode"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
chat_search_duration = Histogram(
    "bytchat_chat_search_duration_seconds",
    "Time to search a user's messages (GET /search/chats): ranking, hits and snippets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5),
)
retrieval_passages = Histogram(
    "bytchat_retrieval_passages", "Passages one search returned, by the mode that ranked them.", ["mode"],
    buckets=(0, 1, 2, 4, 8, 16, 32, 64),
)  # fmt: skip
web_search_duration = Histogram(
    "bytchat_web_search_duration_seconds", "Web search time, answered or failed.", ["error_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)  # fmt: skip

# Tools (docs/tools.md): `mode` is `builtin` or `mcp`; `status` the call's end (done, failed, denied,
# rejected, expired), or for an approval how it was decided.
tool_calls = Counter(
    "bytchat_tool_calls", "Tool calls the models asked for, by kind of tool and how they ended.", ["mode", "status"],
)  # fmt: skip
tool_call_duration = Histogram(
    "bytchat_tool_call_duration_seconds", "Tool calls that ran, by kind of tool and outcome.", ["mode", "status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)  # fmt: skip
approval_wait = Histogram(
    "bytchat_tool_approval_wait_seconds", "From an approval request to its decision, by outcome.", ["status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800),
)  # fmt: skip

# Exams.
pdf_render_duration = Histogram(
    "bytchat_pdf_render_duration_seconds", "Exam PDF renders, by outcome (ok, time_limit, failed).", ["status"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)  # fmt: skip

# HTTP (OpenTelemetry's http.server.request.duration), by route template: never the raw path.
http_request_duration = Histogram(
    "http_server_request_duration_seconds",
    "HTTP requests by method, route template and status; a stream counts until its last byte.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 120.0),
)


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """`histogram.observe(v)` for each of `values`, in one update per bucket touched: a model call's
    per-chunk times cost one `observe` each otherwise (~5 us in multiprocess mode, a lock and a
    file-backed write each; bench/relay.py). Reads prometheus-client's Histogram internals
    (pinned in requirements.txt); tests/test_metrics.py checks it matches `observe`."""
    if not values:
        return
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1
    for index, count in enumerate(counts):
        if count:
            histogram._buckets[index].inc(count)
    histogram._sum.inc(sum(values))


def metrics_enabled() -> bool:
    return settings.METRICS_ENABLED


# A model name is whatever a bot owner typed: kept to the characters model names use, cut short, and at
# most MAX_MODEL_LABELS distinct values per process (the rest are "other"), so no one can grow the
# series without bound.
MAX_MODEL_LABELS = 200
_MODEL_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+-]")
_models_seen: set[str] = set()
_models_lock = threading.Lock()


def model_label(model: str) -> str:
    label = _MODEL_UNSAFE.sub("_", model)[:80] or "unknown"
    if label in _models_seen:
        return label
    with _models_lock:
        if len(_models_seen) >= MAX_MODEL_LABELS:
            return "other"
        _models_seen.add(label)
    return label


# Figures read when /metrics is scraped rather than counted as they happen (the ingestion queue, the
# documents by status): each app registers a function returning its metric families (apps' ready()).
ScrapeCollector = Callable[[], Iterable[Metric]]
_scrape_collectors: list[ScrapeCollector] = []


def on_scrape(collector: ScrapeCollector) -> None:
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


class _ScrapeTime:
    def collect(self) -> Iterable[Metric]:
        for collector in _scrape_collectors:
            yield from collector()


def exposition() -> tuple[bytes, str]:
    """This deployment's metrics in the Prometheus text format: every process's (multiprocess mode) or
    this one's, then the figures read at scrape time."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scraped = CollectorRegistry()
    scraped.register(_ScrapeTime())
    return generate_latest(registry) + generate_latest(scraped), CONTENT_TYPE_LATEST


def process_exit(pid: int | None = None) -> None:
    """A process is gone (its own lifespan's end, or a supervisor that reaped it): its live gauges leave
    the sums (multiprocess mode; nothing to do otherwise)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid)
