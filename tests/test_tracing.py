"""OpenTelemetry traces in-process, through config.asgi.application against the fake upstream, with the
SDK's in-memory exporter (core/tracing.py): one trace from the request to the model call, a resume that
joins it, a socket frame's trace, and nothing of OpenTelemetry loaded without OTEL_EXPORTER_OTLP_ENDPOINT
(docs/reliability.md L5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from rest_framework_simplejwt.tokens import AccessToken

from bots.models import ModelConfig
from chats.models import Chat, Run, Surface
from chats.services import chat_create, user_message_create
from core import tracing
from core.tracing import current_trace_ids, tracing_install, tracing_reset
from knowledge.services import bot_home_base, document_ingest_text
from tests.helpers import asgi_body, asgi_request, parse_sse, runs_ended, ws_answer, ws_session, ws_session_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.bot(name="Traced")]

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Where do the pirates of Tortuga bury their treasure"
DOCUMENT = "Pirates bury their treasure on remote islands."
# What a process that traces loads (core/tracing.py); redis-py loads other parts of OpenTelemetry itself.
TRACING_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.trace.propagation.tracecontext")
# A caller's own trace (W3C Trace Context, https://www.w3.org/TR/trace-context/).
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing_install(SimpleSpanProcessor(exporter))
    yield exporter
    tracing_reset()


@pytest.fixture(autouse=True)
async def _answers_ended():
    yield
    await runs_ended()
    await database_sync_to_async(lambda: None)()


def add_model(bot, model_id: str) -> None:
    ModelConfig.objects.create(bot=bot, provider="custom", model_id=model_id, task_type="general")


def authorization(user) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())


async def sse_request(
    method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"", query: bytes = b""
) -> tuple:
    """A raw request through config.asgi.application, read to its end (and the app to its return, so the
    request's span has ended): its status, headers and SSE events."""
    communicator = asgi_request(method, path, query=query, headers=[(b"accept", b"text/event-stream"), *headers])
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=10)
    raw = await asgi_body(communicator)
    await communicator.wait(timeout=10)
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], headers, parse_sse(raw) if raw else []


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    named = [span for span in finished if span.name == name]
    assert len(named) == 1, [span.name for span in finished]
    return named[0]


def trace_hex(span: ReadableSpan) -> str:
    return format_trace_id(span.context.trace_id)


def attribute_texts(finished: tuple[ReadableSpan, ...]) -> list[str]:
    texts = []
    for span in finished:
        for value in (span.attributes or {}).values():
            texts.extend(str(item) for item in (value if isinstance(value, tuple | list) else [value]))
    return texts


async def test_a_chat_request_is_one_trace_from_request_to_run_to_retrieval_and_model_call(spans, user, bot, upstream):
    """docs/reliability.md L5: the request (SERVER) -> the run -> retrieval and the model call (CLIENT, GenAI
    attributes, the tokens the client was told); the caller's traceparent is continued; no question text."""
    await sync_to_async(add_model)(bot, "fake-echo")
    await sync_to_async(document_ingest_text)(
        knowledge_base=await sync_to_async(bot_home_base)(bot=bot), filename="islands.txt", text=DOCUMENT
    )
    caller = (b"traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01".encode())
    body = json.dumps({"query": QUESTION}).encode()
    status, headers, events = await sse_request(
        "POST", f"/chat/{bot.id}", [authorization(user), (b"content-type", b"application/json"), caller], body
    )
    assert status == 200
    done = events[-1][1]
    assert events[-1][0] == "done" and QUESTION in done["content"]

    finished = spans.get_finished_spans()
    request = next(span for span in finished if span.kind == SpanKind.SERVER)
    run = by_name(finished, "bytchat.run")
    model = by_name(finished, "chat fake-echo")
    retrieval = by_name(finished, "retrieval")
    assert {trace_hex(span) for span in finished} == {CALLER_TRACE}
    assert format_span_id(request.parent.span_id) == CALLER_SPAN
    assert request.attributes["http.request.method"] == "POST"
    assert request.attributes["http.response.status_code"] == 200
    assert run.parent.span_id == request.context.span_id
    assert run.attributes["bytchat.run.id"] == headers["x-run-id"]
    assert run.attributes["bytchat.run.finish_reason"] == "stop"
    assert retrieval.parent.span_id == run.context.span_id
    assert retrieval.attributes["bytchat.retrieval.passages"] == 1
    assert model.parent.span_id == run.context.span_id
    assert model.kind == SpanKind.CLIENT
    assert model.status.status_code == StatusCode.UNSET
    usage = done["usage"]
    assert {key: model.attributes[key] for key in model.attributes if key.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "custom",
        "gen_ai.request.model": "fake-echo",
        "gen_ai.response.model": done["model"],
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
    }
    assert usage["completion_tokens"] > 0
    texts = attribute_texts(finished)
    assert not [text for text in texts if "Tortuga" in text or "remote islands" in text], texts
    # The run keeps the request's context, for readers on any process.
    stored = await Run.objects.aget(pk=run.attributes["bytchat.run.id"])
    assert stored.trace_parent == f"00-{CALLER_TRACE}-{format_span_id(request.context.span_id)}-01"


async def test_a_resumed_run_is_read_in_the_runs_trace_linked_to_the_resuming_request(spans, user, bot, upstream):
    """docs/reliability.md L5: GET /runs/{id}/events joins the run's stored trace, not the reader's own."""
    await sync_to_async(add_model)(bot, "fake-tokens-5-1")
    status, headers, _events = await sse_request("POST", f"/chat/{bot.id}", [authorization(user)], query=b"query=count")
    assert status == 200
    run_id = headers["x-run-id"]
    started = next(span for span in spans.get_finished_spans() if span.kind == SpanKind.SERVER)
    spans.clear()

    status, _headers, events = await sse_request(
        "GET", f"/runs/{run_id}/events", [authorization(user)], query=b"after=2"
    )
    assert status == 200 and events[-1][0] == "done"
    finished = spans.get_finished_spans()
    resume = by_name(finished, "bytchat.run.resume")
    reader = next(span for span in finished if span.kind == SpanKind.SERVER)
    assert resume.context.trace_id == started.context.trace_id != reader.context.trace_id
    assert resume.parent.span_id == started.context.span_id
    assert [link.context.span_id for link in resume.links] == [reader.context.span_id]
    assert resume.attributes["bytchat.run.id"] == run_id
    assert resume.attributes["bytchat.run.resume.after"] == 2


async def test_a_failover_shows_the_failed_model_call_and_the_one_that_answered_under_one_run(
    spans, user, bot, upstream
):
    """An upstream 500 before the first token: the failed call's span carries the provider error's code
    (as the metrics do) and fails; the model that answered instead has its own span in the same run."""
    await sync_to_async(add_model)(bot, "fake-status-500")
    status, _headers, events = await sse_request("POST", f"/chat/{bot.id}", [authorization(user)], query=b"query=hi")
    assert status == 200 and events[-1][0] == "done"
    finished = spans.get_finished_spans()
    failed = by_name(finished, "chat fake-status-500")
    answered = by_name(finished, f"chat {events[-1][1]['model']}")
    run = by_name(finished, "bytchat.run")
    assert failed.parent.span_id == answered.parent.span_id == run.context.span_id
    assert failed.status.status_code == StatusCode.ERROR and failed.attributes["error.type"] == "provider_error"
    assert "gen_ai.usage.output_tokens" not in failed.attributes
    assert answered.status.status_code == run.status.status_code == StatusCode.UNSET
    assert answered.attributes["gen_ai.usage.output_tokens"] == events[-1][1]["usage"]["completion_tokens"]


async def test_an_internet_answer_has_a_web_search_span_under_its_run(spans, user, bot, upstream, searxng):
    """The web search is a CLIENT span of the run, with its result count and never the query."""
    await sync_to_async(add_model)(bot, "fake-echo")
    chat = await sync_to_async(chat_create)(owner=user, surface=Surface.CHATS, bot=bot, title="t")
    await sync_to_async(user_message_create)(chat=chat, content=QUESTION)
    token = f"token={AccessToken.for_user(user)}".encode()
    status, _headers, events = await sse_request("GET", f"/conversations/inference_internet/{chat.id}", [], query=token)
    assert status == 200 and events[-1][0] == "done"
    finished = spans.get_finished_spans()
    run = by_name(finished, "bytchat.run")
    search = by_name(finished, "bytchat.web_search")
    assert search.kind == SpanKind.CLIENT and search.parent.span_id == run.context.span_id
    assert search.attributes["bytchat.web_search.results"] == len(searxng.results) > 0
    assert searxng.requests[-1].query["q"] == QUESTION  # the search was asked the question; the span was not
    assert not [text for text in attribute_texts(finished) if "Tortuga" in text]


async def test_a_socket_message_frame_is_the_root_of_its_answers_trace(spans, user, upstream):
    """A socket gets a span per `message` frame (not one per connection), parent of the run it starts."""
    chat = await Chat.objects.acreate(owner=user, surface=Surface.SESSIONS)
    path = await sync_to_async(ws_session_path)(chat, user)
    async with ws_session(path) as socket:
        await socket.send_json_to({"type": "message", "content": QUESTION})
        frames = await ws_answer(socket)
    assert frames[-1]["type"] == "done"
    await runs_ended()
    finished = spans.get_finished_spans()
    frame = by_name(finished, "websocket message")
    run = by_name(finished, "bytchat.run")
    assert frame.kind == SpanKind.SERVER and frame.parent is None
    assert frame.attributes["http.route"] == "/chat/ws/{session_id}"
    assert run.parent.span_id == frame.context.span_id
    assert not [text for text in attribute_texts(finished) if "Tortuga" in text]


def test_without_an_endpoint_a_chat_loads_nothing_of_opentelemetry_tracing(tmp_path):
    """docs/reliability.md L5: with OTEL_EXPORTER_OTLP_ENDPOINT unset, a server process that answers a
    chat (request, run, retrieval, model call) never imports OpenTelemetry's tracing SDK or exporter and
    starts no exporting thread: the cost is nil. (redis-py 8 itself imports opentelemetry.sdk.metrics
    and the API whenever they are installed, so those are not checked.)"""
    script = f"TRACING_MODULES = {TRACING_MODULES!r}\n" + textwrap.dedent(
        """
        import asyncio, json, sys, threading
        import django
        django.setup()
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        from rest_framework_simplejwt.tokens import AccessToken
        from accounts.models import User
        from bots.models import Bot
        from knowledge.services import bot_home_base, document_ingest_text
        from tests.helpers import asgi_body, asgi_request

        user = User.objects.create_user(email="quiet@example.com", password="una-clave-segura")
        bot = Bot.objects.create(owner=user, name="Quiet")
        document_ingest_text(knowledge_base=bot_home_base(bot=bot), filename="a.txt", text="Pirates bury gold.")
        auth = (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())

        async def chat():
            communicator = asgi_request("POST", f"/chat/{bot.id}", query=b"query=Where+is+the+gold", headers=[auth])
            await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
            status = (await communicator.receive_output(timeout=20))["status"]
            body = await asgi_body(communicator, timeout=20)
            await communicator.wait(timeout=20)
            return status, body.decode()

        status, body = asyncio.run(chat())
        from core.tracing import tracing_enabled

        loaded = sorted(name for name in sys.modules if name.startswith(TRACING_MODULES))
        threads = sorted(thread.name for thread in threading.enumerate() if "Span" in thread.name)
        print(json.dumps({"status": status, "body": body, "loaded": loaded, "threads": threads,
                          "enabled": tracing_enabled()}))
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LLM_LOCAL_WORD_DELAY="0",
        ALLOWED_HOSTS="testserver",
    )
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 200 and "Pirates bury gold." in outcome["body"], outcome
    assert outcome["loaded"] == [] and outcome["threads"] == [] and outcome["enabled"] is False


def test_a_log_line_can_name_the_trace_and_span_it_was_written_in(spans):
    """current_trace_ids() (the JSON log formatter's): the current span's ids in hex, None outside one or
    with tracing off."""
    assert current_trace_ids() is None
    with tracing.span("work") as current:
        ids = current_trace_ids()
    assert ids == (
        format_trace_id(current.get_span_context().trace_id),
        format_span_id(current.get_span_context().span_id),
    )
    tracing_reset()
    with tracing.span("work"):
        assert current_trace_ids() is None
