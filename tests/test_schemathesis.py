"""Schemathesis over /api/schema/ against a real server: no 5xx, only documented statuses, bodies as documented."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer, new_user_auth, upstream_env

pytestmark = pytest.mark.e2e

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Bounded: examples per operation, then a budget for the whole run, then a hard stop for the process.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))
MAX_SECONDS = int(os.environ.get("SCHEMATHESIS_MAX_SECONDS", "150"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "12")
# Streams: schemathesis validates JSON bodies, not a chunked text answer or Server-Sent Events, so these
# operations get the status checks only (`POST /v1/chat/completions` is JSON or SSE by its `stream` field).
STREAMING_OPERATIONS = (
    "^/chat/\\{bot_id\\}$",
    "^/chat$",
    "^/conversations/inference(_internet)?/\\{target_id\\}$",
    "^/v1/chat/completions$",
)


@pytest.fixture(scope="module")
def server(fake_openai_server, tmp_path_factory):
    # Every provider a generated model config may name answers (the fake upstream): a provider left
    # unconfigured is a 503 by design (the operator's to fix), which would hide real server errors.
    providers = {}
    for name in ("OPENAI", "GOOGLE", "ANTHROPIC", "OPENROUTER", "OLLAMA", "VLLM"):
        providers |= {f"{name}_BASE_URL": fake_openai_server.base_url, f"{name}_API_KEY": "e2e-provider-key"}
    live = LiveServer(
        tmp_path_factory.mktemp("schemathesis"),
        upstream_env(fake_openai_server, LLM_PROVIDER="custom", LLM_MODEL="fake-echo", **providers),
    ).start()
    yield live
    live.stop()


def real_objects(http: httpx.Client, headers: dict[str, str]) -> dict[str, str]:
    """One of each object the paths name, so that generated requests reach them, not only 404s."""

    def created(path: str, body: dict) -> dict:
        response = http.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), (path, response.text)
        return response.json()

    bot = created("/bots/", {"name": "Schemathesis bot", "system_prompt": "Answer briefly."})
    chat = created("/chats/create", {"name": "Schemathesis chat", "bot_id": bot["id"]})
    conversation = created(
        "/conversations/create", {"chat_id": chat["id"], "role": "Human", "message": "What is a bot?"}
    )
    session = created("/chat/sessions", {"bot_id": bot["id"]})
    page = {"Origin": str(http.base_url).rstrip("/")}
    widget = http.patch(
        f"/bots/{bot['id']}/widget", json={"public": True, "allowed_origins": [page["Origin"]]}, headers=headers
    )
    assert widget.status_code == 200, widget.text
    visitor = http.post("/widget/sessions", json={"bot_key": widget.json()["public_key"]}, headers=page)
    assert visitor.status_code == 201, visitor.text
    return {
        "bot_id": bot["id"],
        "chat_id": chat["id"],
        "conversation_id": conversation["id"],
        "session_id": session["session_id"],
        "widget_session_id": visitor.json()["session_id"],
        "visitor_token": visitor.json()["visitor_token"],
    }


def config_file(path: Path, token: str, ids: dict[str, str], origin: str) -> Path:
    """schemathesis.toml: credentials per security scheme, real ids mixed into generated path parameters.

    The JWT stands for API keys too: a generated `DELETE /api-keys/{key_id}` may revoke a key mid-run."""
    lines = [
        "[auth.openapi.jwtAuth]",
        f'bearer = "{token}"',
        "[auth.openapi.jwtBodyToken]",
        f'bearer = "{token}"',
        "[auth.openapi.visitorAuth]",
        f'api_key = "Visitor {ids["visitor_token"]}"',
    ]
    values = {
        "bot_id": [ids["bot_id"]],
        "chat_id": [ids["chat_id"]],
        "conversation_id": [ids["conversation_id"], ids["chat_id"]],
        "session_id": [ids["session_id"], ids["widget_session_id"]],
        "target_id": [ids["chat_id"]],
    }
    parameters = []
    for name, ids_of_name in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(ids_of_name)}"]
        parameters.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}')
    lines += ["[parameters]", *parameters]
    # The widget's page, which the bot allows.
    lines += ["[[operations]]", 'include-path-regex = "^/widget/"', f"headers = {{ Origin = {json.dumps(origin)} }}"]
    # A 503 is /readyz's documented answer while a dependency is missing (here: no worker runs).
    lines += [
        "[[operations]]",
        'include-path-regex = "^/readyz$"',
        'checks.not_a_server_error.expected-statuses = ["2XX", "3XX", "4XX", "503"]',
    ]
    for pattern in STREAMING_OPERATIONS:
        lines += [
            "[[operations]]",
            f"include-path-regex = {json.dumps(pattern)}",
            "checks.response_schema_conformance.enabled = false",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(server, tmp_path):
    with httpx.Client(base_url=server.url, timeout=15) as http:
        headers = new_user_auth(http)
        ids = real_objects(http, headers)
    token = headers["Authorization"].removeprefix("Bearer ")
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file", str(config_file(tmp_path / "schemathesis.toml", token, ids, server.url)),
        "run", f"{server.url}/api/schema/",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--max-time", str(MAX_SECONDS),
        "--seed", SEED,
        # One worker: schemathesis's threads can hit a CPython 3.11 race in `ast.parse` ("AST constructor
        # recursion depth mismatch", fixed in later CPython releases) and report it as an error.
        "--workers", "1",
        "--request-timeout", "20",
        "--no-color",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=MAX_SECONDS + 60, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis ran past its budget:\n{exc.stdout}\n{exc.stderr}")
    report = result.stdout + result.stderr
    assert result.returncode == 0, report + "\n--- server log ---\n" + server.log()[-5000:]
