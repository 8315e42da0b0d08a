"""Logs (docs/reliability.md L4): one JSON object a line with the request's and the run's ids; one `request` line
per HTTP request and socket with its route template (never its query or headers), and the HTTP metric by the same
template; one `run` line per answer, without its text."""

import io
import json
import logging
import re
import sys
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import URLPattern, URLResolver, get_resolver
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id
from prometheus_client import REGISTRY
from rest_framework_simplejwt.tokens import AccessToken

from bots.models import ModelConfig
from config.http_route import route_template
from core import tracing
from core.logs import JsonFormatter, PlainFormatter, request_id_var, run_id_var
from core.tracing import tracing_install, tracing_reset
from tests.helpers import asgi_body, asgi_request, ws_session_path

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log_lines():
    """What the root logger writes from now on, through the JSON formatter: a list of parsed lines (and a parse
    failure fails the test)."""
    import config.asgi  # noqa: F401 (set up first: Django's setup configures logging anew, dropping this handler)

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def record(message: str = "hello %s", args: tuple = ("world",), exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("bytchat.test", logging.WARNING, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


# -- the formatter -------------------------------------------------------------------------------------------------


def test_a_record_is_one_json_line_with_its_time_level_logger_message_and_extra_fields():
    run = uuid.uuid4()
    line = JsonFormatter().format(record(event="thing", count=3, ok=True, run=run, tags=["a", "b"]))
    assert "\n" not in line
    entry = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert entry["level"] == "WARNING" and entry["logger"] == "bytchat.test" and entry["message"] == "hello world"
    assert entry["event"] == "thing" and entry["count"] == 3 and entry["ok"] is True and entry["tags"] == ["a", "b"]
    assert entry["run"] == str(run)


def test_an_exception_is_its_whole_traceback_in_one_string_field_of_one_line():
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        line = JsonFormatter().format(record(exc_info=sys.exc_info()))
    assert len(line.splitlines()) == 1
    exception = json.loads(line)["exception"]
    assert exception.startswith("Traceback (most recent call last):")
    assert "ValueError: broken\nacross lines" in exception


def test_objects_passed_as_extra_are_left_out_so_a_request_never_prints_its_query(rf):
    # Django logs 5xx answers with the request as `extra`; its repr holds the full path, query string included.
    request = rf.get("/users/me", {"token": "secret-in-the-query"})
    assert "secret-in-the-query" in repr(request)
    entry = json.loads(JsonFormatter().format(record(request=request, status_code=500)))
    assert entry["status_code"] == 500 and "request" not in entry
    assert "secret-in-the-query" not in json.dumps(entry)


def test_the_request_run_and_trace_ids_of_the_context_are_on_every_line():
    tracing_install(SimpleSpanProcessor(InMemorySpanExporter()))
    request_token, run_token = request_id_var.set("req-1"), run_id_var.set("run-1")
    try:
        with tracing.span("work") as span:
            entry = json.loads(JsonFormatter().format(record()))
            plain = PlainFormatter().format(record())
    finally:
        request_id_var.reset(request_token)
        run_id_var.reset(run_token)
        tracing_reset()
    trace_id, span_id = (
        format_trace_id(span.get_span_context().trace_id),
        format_span_id(span.get_span_context().span_id),
    )
    assert entry["request_id"] == "req-1" and entry["run_id"] == "run-1"
    assert entry["trace_id"] == trace_id and entry["span_id"] == span_id
    assert plain.endswith(f"hello world [request_id=req-1 run_id=run-1 trace_id={trace_id}]")
    # Outside a request, and with tracing off, none.
    assert {"request_id", "run_id", "trace_id"}.isdisjoint(json.loads(JsonFormatter().format(record())))


# -- route templates ------------------------------------------------------------------------------------------------


def test_a_route_template_names_its_parameters_and_drops_the_regex():
    uuid_regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    assert route_template(rf"^chats/(?P<chat_id>{uuid_regex})/conversations/?$") == "/chats/{chat_id}/conversations"
    assert route_template(r"^v1/models/(?P<model>[^/]{1,200})/?$") == "/v1/models/{model}"
    assert route_template("admin/accounts/user/<path:object_id>/change/") == "/admin/accounts/user/{object_id}/change/"
    assert route_template("admin/(?P<app_label>auth|bots)/$") == "/admin/{app_label}/"
    assert route_template(r"^$") == "/"


def resolver_routes(patterns=None, prefix: str = ""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern).removeprefix("^") if prefix else str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from resolver_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and entry.name != "not-found":
            yield route


def test_every_route_of_the_url_map_has_a_template_of_plain_path_characters():
    templates = {route_template(route) for route in resolver_routes()}
    assert {"/chat/{bot_id}", "/v1/chat/completions", "/runs/{run_id}/events", "/healthz"} <= templates
    for template in templates:
        assert re.fullmatch(r"/[A-Za-z0-9_./{}-]*", template), template


# -- the request line and the HTTP metric --------------------------------------------------------------------------


async def get(path: str, headers: list[tuple[bytes, bytes]] = (), query: bytes = b"") -> tuple[int, dict, bytes]:
    communicator = asgi_request("GET", path, query=query, headers=list(headers))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    body = await asgi_body(communicator)
    await communicator.wait(timeout=5)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def requests_logged(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("event") == "request"]


def http_count(method: str, route: str, status: int) -> float:
    labels = {"http_request_method": method, "http_route": route, "http_response_status_code": str(status)}
    return REGISTRY.get_sample_value("http_server_request_duration_seconds_count", labels) or 0.0


async def test_a_sane_request_id_is_kept_and_any_other_is_replaced_by_a_new_one(log_lines):
    _status, headers, _body = await get("/healthz", [(b"x-request-id", b"nginx-0a1b.2_c")])
    assert headers["x-request-id"] == "nginx-0a1b.2_c"
    fresh = []
    for sent in [b"has spaces", b"x" * 65, b'quote"d', None]:
        _status, headers, _body = await get("/healthz", [(b"x-request-id", sent)] if sent else [])
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"]), sent
        fresh.append(headers["x-request-id"])
    assert len(set(fresh)) == 4
    assert [line["request_id"] for line in requests_logged(log_lines())] == ["nginx-0a1b.2_c", *fresh]


async def test_the_request_line_names_the_route_template_and_the_metric_counts_it_there(log_lines):
    bot_id = uuid.uuid4()
    before = http_count("GET", "/bots/{bot_id}", 401)
    status, headers, _body = await get(f"/bots/{bot_id}", query=b"token=secret-query-token")
    assert status == 401
    [line] = requests_logged(log_lines())
    assert line["route"] == "/bots/{bot_id}" and line["path"] == f"/bots/{bot_id}" and line["method"] == "GET"
    assert line["status"] == 401 and line["duration_ms"] >= 0 and line["bytes"] > 0
    assert line["request_id"] == headers["x-request-id"]
    assert "secret-query-token" not in json.dumps(log_lines())
    assert http_count("GET", "/bots/{bot_id}", 401) == before + 1


async def test_with_tracing_on_the_request_line_names_the_requests_span(log_lines):
    exporter = InMemorySpanExporter()
    tracing_install(SimpleSpanProcessor(exporter))
    try:
        assert (await get("/healthz"))[0] == 200
    finally:
        tracing_reset()
    [span] = [span for span in exporter.get_finished_spans() if span.name == "GET /healthz"]
    [line] = requests_logged(log_lines())
    assert line["trace_id"] == format_trace_id(span.context.trace_id)
    assert line["span_id"] == format_span_id(span.context.span_id)


async def test_the_admins_full_middleware_stack_records_its_route_too(log_lines):
    status, _headers, _body = await get("/admin/login/")
    assert status == 200
    assert [line["route"] for line in requests_logged(log_lines())] == ["/admin/login/"]


async def test_a_request_no_view_served_is_unmatched_in_the_line_and_the_metric_never_its_path(log_lines, settings):
    settings.MAX_REQUEST_BYTES = 1000
    missing = f"/no/such/{uuid.uuid4()}"
    before_404 = http_count("GET", "unmatched", 404)
    before_413 = http_count("POST", "unmatched", 413)
    assert (await get(missing))[0] == 404
    too_large = asgi_request("POST", "/bots/", headers=[(b"content-length", b"5000")])
    await too_large.send_input({"type": "http.request", "body": b"x" * 5000, "more_body": False})
    assert (await too_large.receive_output(timeout=10))["status"] == 413
    await asgi_body(too_large)
    await too_large.wait(timeout=5)
    assert [(line["route"], line["status"]) for line in requests_logged(log_lines())] == [
        ("unmatched", 404),
        ("unmatched", 413),
    ]
    assert http_count("GET", "unmatched", 404) == before_404 + 1
    assert http_count("POST", "unmatched", 413) == before_413 + 1
    routes = {
        sample.labels["http_route"]
        for metric in REGISTRY.collect()
        if metric.name == "http_server_request_duration_seconds"
        for sample in metric.samples
    }
    assert not any(route.startswith("/no/") or re.search(r"[0-9a-f]{8}-", route) for route in routes), routes


async def test_an_unknown_method_is_counted_as_other(log_lines):
    before = http_count("_OTHER", "/healthz", 405)
    communicator = asgi_request("BREW", "/healthz")
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    assert (await communicator.receive_output(timeout=10))["status"] == 405
    await asgi_body(communicator)
    await communicator.wait(timeout=5)
    assert http_count("_OTHER", "/healthz", 405) == before + 1
    assert requests_logged(log_lines())[0]["method"] == "BREW"


async def test_with_metrics_off_the_request_is_logged_but_not_counted(log_lines, settings):
    settings.METRICS_ENABLED = False
    before = http_count("GET", "/healthz", 200)
    assert (await get("/healthz"))[0] == 200
    assert http_count("GET", "/healthz", 200) == before
    assert len(requests_logged(log_lines())) == 1


async def test_a_socket_gets_a_line_with_its_route_template_and_its_handshake_is_counted(log_lines, user, chat):
    from config.asgi import application

    before = http_count("GET", "/chat/ws/{session_id}", 101)
    path = ws_session_path(chat)
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    await communicator.receive_json_from(timeout=10)  # the greeting
    await communicator.disconnect()
    refused = WebsocketCommunicator(application, f"/chat/ws/{uuid.uuid4()}")
    assert (await refused.connect(timeout=10))[0] is False
    lines = requests_logged(log_lines())
    assert [(line["protocol"], line["route"], line["status"]) for line in lines] == [
        ("websocket", "/chat/ws/{session_id}", 101),
        ("websocket", "/chat/ws/{session_id}", 403),
    ]
    ticket = path.split("ticket=")[1]
    assert ticket not in json.dumps(lines)
    assert http_count("GET", "/chat/ws/{session_id}", 101) == before + 1


# -- the run line ---------------------------------------------------------------------------------------------------


@pytest.mark.bot(name="Logged")
async def test_an_answer_ends_with_one_run_line_naming_its_request_and_never_its_text(log_lines, user, bot, upstream):
    await sync_to_async(ModelConfig.objects.create)(bot=bot, provider="custom", model_id="fake-echo")
    authorization = (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())
    communicator = asgi_request("POST", f"/chat/{bot.id}", query=b"query=zafiro+secreto+azul", headers=[authorization])
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    answer = (await asgi_body(communicator)).decode()
    await communicator.wait(timeout=5)
    assert "zafiro" in answer  # the fake echoes the question
    lines = log_lines()
    [run] = [line for line in lines if line.get("event") == "run"]
    assert run["logger"] == "bytchat.runs"
    assert run["run_id"] == headers["x-run-id"] and run["request_id"] == headers["x-request-id"]
    assert run["status"] == "complete" and run["surface"] and run["chat_id"] == headers["x-chat-id"]
    assert run["provider"] == "custom" and run["model"] == "fake-echo"
    assert run["prompt_tokens"] > 0 and run["completion_tokens"] > 0 and run["duration_ms"] >= 0
    [request] = requests_logged(lines)
    assert request["route"] == "/chat/{bot_id}" and request["request_id"] == headers["x-request-id"]
    text = json.dumps(lines)
    assert "zafiro" not in text and "secreto" not in text
