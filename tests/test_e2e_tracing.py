"""Traces across server processes: two real servers on one database export to a fake OTLP/HTTP collector;
an answer started on one and resumed on the other after its client dropped is one trace, from the first
request through the run and its model call to the resume (docs/reliability.md L5)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conftest import POSTGRES_CONFIGURED
from tests.e2e_helpers import bot_with, eventually, sign_up, sse_events
from tests.fake_otlp import CollectedSpan, FakeCollector
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.e2e
# 40 tokens 50 ms apart (about 2 s): still answering when the client drops after a few events.
SLOW = "fake-tokens-40-50"
SLOW_TEXT = "".join(f"t{i} " for i in range(40))
QUESTION = "Which island hides the treasure of Tortuga"


@pytest.fixture(scope="module")
def collector():
    server = FakeCollector().start()
    yield server
    server.stop()


def tracing_env(fake_openai_server, collector: FakeCollector) -> dict[str, str]:
    # A short batch delay: the spans reach the collector soon after they end.
    return upstream_env(
        fake_openai_server, OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BSP_SCHEDULE_DELAY="100"
    )


@pytest.fixture(scope="module")
def servers(fake_openai_server, collector, tmp_path_factory):
    """Two server processes on one database (the first's SQLite file, or the PostgreSQL of DATABASE_URL)."""
    first = LiveServer(tmp_path_factory.mktemp("trace-a"), tracing_env(fake_openai_server, collector))
    second = LiveServer(tmp_path_factory.mktemp("trace-b"), tracing_env(fake_openai_server, collector))
    second.env["SECRET_KEY"] = first.env["SECRET_KEY"]
    if not POSTGRES_CONFIGURED:
        second.env["DATABASE_URL"] = f"sqlite:///{Path(first.env['DATA_DIR']) / 'db.sqlite3'}"
    first.start()
    try:
        second.start()
    except BaseException:
        first.stop()
        raise
    yield first, second
    for live in (first, second):
        live.stop()
        assert not live.tracebacks(), live.tracebacks()


def one(spans: list[CollectedSpan], **match: str) -> CollectedSpan:
    found = [span for span in spans if all(getattr(span, key) == value for key, value in match.items())]
    assert len(found) == 1, (match, [(span.name, span.kind) for span in spans])
    return found[0]


async def test_a_run_resumed_on_another_server_process_joins_the_trace_its_request_started(servers, collector):
    first, second = servers
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=15) as on_first,
        httpx.AsyncClient(base_url=second.url, timeout=15) as on_second,
    ):
        _token, auth = await sign_up(on_first)
        bot_id = await bot_with(on_first, auth, SLOW)
        headers = {**auth, "Accept": "text/event-stream"}
        async with on_first.stream("POST", f"/chat/{bot_id}", json={"query": QUESTION}, headers=headers) as response:
            assert response.status_code == 200
            run_id = response.headers["X-Run-Id"]
            events = await sse_events(response.aiter_lines(), 3)
        # The client dropped; it resumes on the other process from the last event it had.
        after = events[-1]["data"]["seq"]
        async with on_second.stream("GET", f"/runs/{run_id}/events", params={"after": after}, headers=headers) as rest:
            assert rest.status_code == 200
            events += await sse_events(rest.aiter_lines())
    assert events[-1]["event"] == "done" and events[-1]["data"]["content"] == SLOW_TEXT

    def exported() -> list[CollectedSpan]:
        return [span for span in collector.collected() if run_id in json.dumps(span.attributes)]

    # Every span of the run (its run, its model call is found by trace below) has reached the collector.
    assert eventually(lambda: {span.name for span in exported()} >= {"bytchat.run", "bytchat.run.resume"}, 20)
    run = one(exported(), name="bytchat.run")
    resume = one(exported(), name="bytchat.run.resume")
    assert eventually(lambda: len([span for span in collector.collected() if span.trace_id == run.trace_id]) >= 4, 20)
    trace = [span for span in collector.collected() if span.trace_id == run.trace_id]
    request = one(trace, kind="server", parent_span_id="")
    model = one(trace, name=f"chat {SLOW}")

    # One trace: the request on the first process -> its run -> the model call, and the resume on the second.
    assert resume.trace_id == request.trace_id == model.trace_id
    assert run.parent_span_id == request.span_id and model.parent_span_id == run.span_id
    assert resume.parent_span_id == request.span_id
    assert {span.resource["process.pid"] for span in (request, run, model)} == {first.process.pid}
    assert resume.resource["process.pid"] == second.process.pid
    assert resume.resource["service.name"] == "bytchat"
    # The resume links to the request that asked for it, in the second process's own trace.
    linked = {"trace_id": resume.links[0][0], "span_id": resume.links[0][1]}
    assert eventually(lambda: any(span.span_id == linked["span_id"] for span in collector.collected()), 20)
    reader = one(collector.collected(), **linked)
    assert reader.kind == "server" and reader.resource["process.pid"] == second.process.pid
    assert reader.attributes["http.response.status_code"] == 200
    assert model.attributes["gen_ai.usage.output_tokens"] == events[-1]["data"]["usage"]["completion_tokens"]
    # No attribute carries the question or the answer.
    assert not [span for span in collector.collected() if "Tortuga" in str(span.attributes)]
    assert not [span for span in collector.collected() if "t39" in str(span.attributes)]
