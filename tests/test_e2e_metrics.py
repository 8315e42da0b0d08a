"""`/metrics` scraped from a real server (and its worker, in prometheus-client's multiprocess mode) after real
chats on each surface against the fake upstream: the GenAI metrics move by the call's tokens and by one
observation per call, the runs' by one ended run, and no label carries a user id or free text
(docs/observability.md; docs/reliability.md L2, L3)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from core.metrics import LABELS
from tests.fake_openai import RecordedRequest
from tests.helpers import parse_sse
from tests.live_server import LiveServer, new_user_auth, upstream_env

pytestmark = pytest.mark.e2e

TOKEN = "metrics-scrape-token"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
# Enough for every test's questions; a fresh user runs out after this many.
QUOTA = 20
Samples = dict[tuple[str, frozenset], float]


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("metrics")
    (data / "prometheus").mkdir()
    live = LiveServer(
        data,
        upstream_env(
            fake_openai_server,
            LLM_PROVIDER="custom",
            LLM_MODEL="fake-echo",
            METRICS_TOKEN=TOKEN,
            QUOTA_DAILY_FREE=str(QUOTA),
            PROMETHEUS_MULTIPROC_DIR=str(data / "prometheus"),
        ),
        with_worker=True,
    ).start()
    yield live
    live.stop()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def account(server):
    with httpx.Client(base_url=server.url, timeout=20) as http:
        headers = new_user_auth(http)
        body = {
            "name": "Metered",
            "initial_configs": [{"provider": "custom", "model_id": "fake-echo", "task_type": "code"}],
        }
        bot_id = http.post("/bots/", json=body, headers=headers).json()["id"]
        key = http.post("/api-keys", json={"name": "metrics"}, headers=headers).json()["key"]
    return {"headers": headers, "token": headers["Authorization"].removeprefix("Bearer "), "bot": bot_id, "key": key}


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        value for (sample, sample_labels), value in samples.items() if sample == name and wanted <= sample_labels
    )


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


# -- one chat per surface ------------------------------------------------------------------------------


def ask_bytchat(http: httpx.Client, account: dict, question: str) -> None:
    response = http.post(f"/chat/{account['bot']}", json={"query": question}, headers=account["headers"])
    assert response.status_code == 200 and response.text == f"Echo: {question}", response.text


def ask_learnyourown(http: httpx.Client, account: dict, question: str) -> None:
    response = http.post("/chat", json={"token": account["token"], "text": question})
    assert response.status_code == 200 and response.text == f"Echo: {question}", response.text


def _new_chat(http: httpx.Client, account: dict) -> str:
    return http.post("/chats/create", json={"name": "Metered"}, headers=account["headers"]).json()["id"]


def ask_conversations(http: httpx.Client, account: dict, question: str) -> None:
    chat_id = _new_chat(http, account)
    asked = http.post(f"/conversations/{chat_id}/ask", json={"prompt": question}, headers=account["headers"])
    assert asked.status_code == 201 and asked.json()["response"]["message"] == f"Echo: {question}", asked.text


def ask_chats(http: httpx.Client, account: dict, question: str) -> None:
    chat_id = _new_chat(http, account)
    human = {"chat_id": chat_id, "role": "Human", "message": question}
    assert http.post("/conversations/create", json=human, headers=account["headers"]).status_code == 201
    events = parse_sse(http.get(f"/conversations/inference/{chat_id}", params={"token": account["token"]}).content)
    assert events[-1][0] == "done" and events[-1][1]["content"] == f"Echo: {question}", events[-1]


def ask_sessions(http: httpx.Client, account: dict, question: str) -> None:
    url = http.post("/chat/sessions", json={"bot_id": account["bot"]}, headers=account["headers"]).json()[
        "websocket_url"
    ]

    async def turn() -> dict:
        async with asyncio.timeout(20), connect(url, proxy=None, open_timeout=10) as socket:
            assert json.loads(await socket.recv())["type"] == "system"
            await socket.send(json.dumps({"type": "message", "content": question}))
            frame = {"type": ""}
            while frame["type"] not in ("done", "error"):
                frame = json.loads(await socket.recv())
            return frame

    last = asyncio.run(turn())
    assert last["type"] == "done" and last["content"] == f"Echo: {question}", last


def ask_openai(http: httpx.Client, account: dict, question: str) -> None:
    sdk = openai.OpenAI(
        base_url=str(http.base_url).rstrip("/") + "/v1", api_key=account["key"], max_retries=0, timeout=20
    )
    stream = sdk.chat.completions.create(
        model=f"bot-{account['bot']}", messages=[{"role": "user", "content": question}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"Echo: {question}"


SURFACES: dict[str, tuple[Callable[[httpx.Client, dict, str], None], str]] = {
    # surface label: (how to ask, the task type its model answers for)
    "bytchat": (ask_bytchat, "code"),
    "learnyourown": (ask_learnyourown, "default"),
    "conversations": (ask_conversations, "default"),
    "chats": (ask_chats, "default"),
    "sessions": (ask_sessions, "code"),
    "openai": (ask_openai, "code"),
}


def upstream_call(fake_openai_server, question: str) -> RecordedRequest:
    [call] = [r for r in fake_openai_server.requests if r.path.endswith("/chat/completions") and r.question == question]
    return call


@pytest.mark.parametrize("surface", list(SURFACES))
def test_a_chat_moves_the_genai_metrics_by_its_tokens_and_one_call(surface, http, account, fake_openai_server):
    ask, task_type = SURFACES[surface]
    question = f"how are metrics counted on {surface} {uuid.uuid4().hex[:6]}"
    before = scrape(http)
    ask(http, account, question)
    # The run's end (and its counter) is stored just after the client's last byte.
    after = scrape(http)
    for _attempt in range(50):
        if moved(before, after, "bytchat_runs_total", bytchat_surface=surface) >= 1:
            break
        after = scrape(http)

    call = upstream_call(fake_openai_server, question)
    words = re.findall(r"\S+\s*", f"Echo: {question}")
    prompt_tokens = sum(len(str(m["content"]).split()) for m in call.body["messages"])
    labels = {
        "bytchat_surface": surface,
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "custom",
        "gen_ai_request_model": "fake-echo",
        "bytchat_task_type": task_type,
    }
    # One call, one observation of each histogram; the tokens as the upstream reported them.
    assert moved(before, after, "gen_ai_client_operation_duration_seconds_count", **labels, error_type="") == 1
    assert moved(before, after, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **labels) == 1
    assert (
        moved(before, after, "gen_ai_client_operation_time_per_output_chunk_seconds_count", **labels) == len(words) - 1
    )
    output = {**labels, "gen_ai_token_type": "output"}
    assert moved(before, after, "gen_ai_client_token_usage_sum", **output) == len(words)
    assert moved(before, after, "gen_ai_client_token_usage_count", **output) == 1
    assert moved(before, after, "gen_ai_client_token_usage_sum", **labels, gen_ai_token_type="input") == prompt_tokens
    # The run ended complete, and nothing is left streaming.
    assert moved(before, after, "bytchat_runs_total", bytchat_surface=surface, status="complete") == 1
    assert total(after, "bytchat_runs_streaming", bytchat_surface=surface) == 0


def test_a_failed_call_is_counted_by_its_error_type(http, account, fake_openai_server):
    """The bot's model refuses the key before its first token: the platform's default answers instead
    (failover), and each call is counted under its own model, the failed one by its error type."""
    body = {"name": "Broken", "initial_configs": [{"provider": "custom", "model_id": "fake-status-401"}]}
    bot_id = http.post("/bots/", json=body, headers=account["headers"]).json()["id"]
    before = scrape(http)
    response = http.post(f"/chat/{bot_id}", json={"query": "will this fail"}, headers=account["headers"])
    assert response.status_code == 200 and response.text == "Echo: will this fail"
    after = scrape(http)
    failed = {"gen_ai_request_model": "fake-status-401", "bytchat_surface": "bytchat"}
    assert moved(before, after, "gen_ai_client_operation_duration_seconds_count", **failed) == 1
    assert (
        moved(
            before, after, "gen_ai_client_operation_duration_seconds_count", **failed, error_type="provider_auth_failed"
        )
        == 1
    )
    assert moved(before, after, "gen_ai_client_token_usage_count", **failed) == 0
    assert moved(before, after, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **failed) == 0
    answered = {"gen_ai_request_model": "fake-echo", "bytchat_surface": "bytchat", "error_type": ""}
    assert moved(before, after, "gen_ai_client_operation_duration_seconds_count", **answered) == 1


def test_a_refused_answer_is_counted_by_user_type_never_by_user(server, http, account):
    """The daily quota refuses a free user: the refusal is counted under `free`, and no sample of the whole
    exposition names the user (docs/reliability.md L2)."""
    headers = new_user_auth(http)
    email_free_text = "a question nobody else asks 81723"
    before = scrape(http)
    refused = None
    for _attempt in range(QUOTA + 1):
        response = http.post("/chat", json={"token": headers["Authorization"][7:], "text": email_free_text})
        if response.status_code == 429:
            refused = response
            break
    assert refused is not None and refused.json()["code"] == "quota_exceeded", "the free quota never ran out"
    after = scrape(http)
    assert moved(before, after, "bytchat_quota_refusals_total", user_type="free") == 1
    exposition = http.get("/metrics", headers=SCRAPER).text
    me = http.get("/users/me", headers=headers).json()
    assert str(me["id"]) not in re.findall(r'"([^"]*)"', exposition)
    assert me["email"] not in exposition and email_free_text not in exposition


def test_every_label_is_one_the_metrics_declare_with_values_from_closed_sets(http, account):
    ask_bytchat(http, account, "one more question for the label check")
    response = http.get("/metrics", headers=SCRAPER)
    values: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith(("gen_ai_", "bytchat_", "http_server_")), family.name
        for sample in family.samples:
            outside = set(sample.labels) - LABELS - {"le"}
            assert not outside, (sample.name, outside)
            for name, value in sample.labels.items():
                values[name].add(value)
    assert values["bytchat_surface"] <= {
        "bytchat",
        "learnyourown",
        "conversations",
        "sessions",
        "chats",
        "widget",
        "openai",
        "exams",
        "",
    }
    assert values["user_type"] <= {"free", "pro", "staff", "visitor"}
    assert values["gen_ai_request_model"] <= {"fake-echo", "fake-status-401", "other"}
    # Route templates, never a path with an id in it.
    uuid_like = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}")
    assert not any(uuid_like.search(route) for route in values["http_route"]), values["http_route"]


def test_metrics_refuse_a_missing_or_wrong_token(http):
    missing = http.get("/metrics")
    assert missing.status_code == 401 and missing.json()["code"] == "not_authenticated"
    assert "METRICS_TOKEN" in missing.json()["detail"]
    wrong = http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and "gen_ai_" not in wrong.text
    assert http.get("/metrics", headers=SCRAPER).status_code == 200
