"""Tool approvals in the embeddable widget (issue 18; docs/widget.md), in Debian's headless Chromium.

Against a real server: the demo bot answers with the fake OpenAI server's `fake-tools` model, which calls the
tool a question names (`call knowledge_search {...}`), and its built-in `knowledge_search` has policy `ask`, so
the answer pauses on an approval card until the visitor decides. Without a server (the socket played frame by
frame, tests.browser.FAKE_SOCKETS): hostile tool names and arguments, and each way a decision can go.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import (
    FAKE_SOCKETS,
    MEASURE_WORK,
    ROOT,
    TRACK_SOCKETS,
    FakeApi,
    Widget,
    embedding_page,
    fresh_page,
    require_chromium,
)
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.browser

QUERY = {"query": "widget script tag publishable key"}
QUESTION = f"call knowledge_search {json.dumps(QUERY)}"
# A sentence of the demo's sample document (chats/demo_material/bytchat.md) that the search finds.
PASSAGE = "The widget is one script tag and a publishable key."
REJECTED = "The user rejected this call of knowledge_search; it was not run."
# The demo bot answers with fake-tools, and asks before each knowledge search (the tools API is not needed).
TOOLED = """
from bots.models import Bot, ModelConfig
from tools.models import Tool
bot = Bot.objects.get(pk="{bot_id}")
ModelConfig.objects.create(bot=bot, task_type="general", provider="custom", model_id="fake-tools")
Tool.objects.create(bot=bot, name="knowledge_search", policy="ask")
"""
# Records every frame the page's sockets send (window.__sent), from the page's first script on.
RECORD_SENT = """
(() => {
  window.__sent = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    window.__sent.push(JSON.parse(data));
    return send.call(this, data);
  };
})();
"""


@pytest.fixture(scope="module")
def site(fake_openai_server, tmp_path_factory):
    """The live server with its demo bot on fake-tools, its knowledge search asked for."""
    require_chromium()
    live = LiveServer(
        tmp_path_factory.mktemp("widget-approvals"),
        upstream_env(
            fake_openai_server,
            LLM_PROVIDER="custom",
            LLM_MODEL="fake-widget",
            WIDGET_SESSIONS_RATE="1000/hour",
            QUOTA_DAILY_FREE="100000",
        ),
    ).start()
    try:
        env = {**live.env, "TASKS_BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}
        command = [sys.executable, "manage.py", "demo_bot", "--json"]
        prepared = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert prepared.returncode == 0, prepared.stderr
        bot_id = json.loads(prepared.stdout.strip().splitlines()[-1])["bot_id"]
        shell = [sys.executable, "manage.py", "shell", "-c", TOOLED.format(bot_id=bot_id)]
        tooled = subprocess.run(shell, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert tooled.returncode == 0, tooled.stderr
        yield live
    finally:
        live.stop()


@pytest.fixture
def page(browser):
    """A fresh browser profile (its own visitor) whose sent frames are recorded; no JavaScript errors."""
    with fresh_page(browser, MEASURE_WORK, TRACK_SOCKETS, RECORD_SENT) as tab:
        yield tab


def history(live, widget: Widget) -> list[dict]:
    stored = widget.stored(widget.root.get_attribute("data-bot-key"))
    response = httpx.get(
        f"{live.url}/widget/sessions/{stored['sessionId']}/messages",
        headers={"Authorization": f"Visitor {stored['visitorToken']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def ask_for_the_tool(live, page) -> Widget:
    page.goto(f"{live.url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(QUESTION)
    expect(widget.answer().locator(".bcw-approval")).to_be_visible()
    return widget


def card_of(widget: Widget):
    return widget.answer().locator(".bcw-approval")


def expect_pending_card(widget: Widget) -> None:
    """The answer waits on one card: the tool, its arguments as JSON text, and both buttons enabled."""
    card = card_of(widget)
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("role", "group")
    expect(card).to_have_attribute("aria-label", "Tool approval: knowledge_search")
    expect(card.locator(".bcw-approval-tool")).to_have_text("knowledge_search")
    expect(card.locator(".bcw-approval-args")).to_have_text(json.dumps(QUERY, indent=2))
    expect(card.get_by_role("button", name="Allow the call of knowledge_search")).to_be_enabled()
    expect(card.get_by_role("button", name="Deny the call of knowledge_search")).to_be_enabled()
    expect(widget.answer()).to_have_attribute("data-status", "streaming")
    expect(widget.stop_button).to_be_visible()


def test_allow_on_the_card_lets_the_answer_go_on_with_the_tools_passages(site, page):
    widget = ask_for_the_tool(site, page)
    expect_pending_card(widget)
    expect(widget.body()).to_have_text("Checking.")
    expect(card_of(widget).locator(".bcw-allow")).to_have_text("Allow")
    expect(card_of(widget).locator(".bcw-deny")).to_have_text("Deny")

    card_of(widget).locator(".bcw-allow").focus()  # by keyboard: a real button
    page.keyboard.press("Enter")
    expect(card_of(widget).locator(".bcw-approval-outcome")).to_have_text("Allowed")
    expect(card_of(widget).locator(".bcw-approval-actions")).to_be_hidden()
    expect(card_of(widget)).to_be_focused()  # the focus did not fall out of the widget

    expect(widget.answer()).to_have_attribute("data-status", "complete")
    expect(widget.body()).to_contain_text("Checking. Tool said:")
    expect(widget.body()).to_contain_text(PASSAGE)
    expect(widget.answer().locator(".bcw-source-name")).to_have_text(["bytchat.md"])
    decisions = [frame for frame in page.evaluate("window.__sent") if frame["type"] == "approval"]
    assert len(decisions) == 1 and decisions[0]["decision"] == "approve", decisions
    assert set(decisions[0]) == {"type", "approval_id", "run_id", "decision"}
    stored = history(site, widget)[-1]
    assert stored["status"] == "complete" and PASSAGE in stored["content"]


def test_deny_on_the_card_tells_the_model_the_visitor_rejected_the_call(site, page):
    widget = ask_for_the_tool(site, page)
    expect_pending_card(widget)
    card_of(widget).get_by_role("button", name="Deny the call of knowledge_search").click()

    expect(card_of(widget).locator(".bcw-approval-outcome")).to_have_text("Denied")
    expect(card_of(widget)).to_have_attribute("data-decision", "reject")
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    expect(widget.body()).to_contain_text(REJECTED)
    expect(widget.body()).not_to_contain_text(PASSAGE)
    expect(widget.answer().locator(".bcw-tool-note")).to_have_count(0)  # no "Used tool": it was not run
    assert REJECTED in history(site, widget)[-1]["content"]


def test_a_pending_approval_survives_a_reload_and_is_decided_from_another_tab(site, page):
    widget = ask_for_the_tool(site, page)
    expect_pending_card(widget)

    page.reload()
    widget.wait_ready()
    # The greeting listed it as still pending: shown again, its buttons enabled.
    expect_pending_card(widget)
    expect(widget.users).to_have_text([QUESTION])
    resumes = [frame for frame in page.evaluate("window.__sent") if frame["type"] == "resume"]
    assert len(resumes) == 1 and resumes[0]["after"] > 0, resumes  # after the approval_request it had shown

    # Another tab of the same visitor (same localStorage, no sessionStorage): the card from the greeting and
    # the run's replay, once; a decision there reaches both tabs.
    other = page.context.new_page()
    theirs = Widget(other)
    other.goto(f"{site.url}/demo/")
    theirs.wait_ready()
    expect_pending_card(theirs)
    card_of(theirs).get_by_role("button", name="Allow the call of knowledge_search").click()
    for tab in (theirs, widget):
        expect(card_of(tab).locator(".bcw-approval-outcome")).to_have_text("Allowed")
        expect(tab.answer()).to_have_attribute("data-status", "complete")
        expect(tab.body()).to_contain_text(PASSAGE)
    expect(widget.answers).to_have_count(1)
    assert not [frame for frame in page.evaluate("window.__sent") if frame["type"] == "approval"]
    other.close()


# -- without a server --------------------------------------------------------------------------------

RUN = "00000000-0000-4000-8000-00000000aaaa"
HOSTILE_TOOL = '<img src=x onerror="window.__pwned=1">'
HOSTILE_ARGUMENTS = {"q": "<script>window.__pwned=2</script>", "padding": "x" * 5000}


@pytest.fixture
def fake_page(browser):
    with fresh_page(browser, MEASURE_WORK, FAKE_SOCKETS) as tab:
        yield tab


def approval_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def play(page, *frames: dict) -> None:
    page.evaluate("frames => window.__fake.play(frames)", list(frames))


def decisions_sent(page) -> list[dict]:
    return page.evaluate("window.__fake.last().sent.filter((f) => f.type === 'approval')")


def test_approval_cards_show_tool_text_as_text_and_follow_each_way_a_decision_goes(fake_page):
    page = fake_page
    widget = FakeApi(page).open()
    widget.ask("Use your tools")
    page.wait_for_function("window.__fake.last().sent.some((f) => f.type === 'message')")
    seq = iter(range(1, 100))

    def frame(kind: str, **fields) -> dict:
        return {"type": kind, "run_id": RUN, "seq": next(seq), **fields}

    def request(n: int, tool: str = "knowledge_search", arguments: dict | None = None) -> dict:
        return frame("approval_request", approval_id=approval_id(n), tool=tool, arguments=arguments or {"query": "x"})

    cards = widget.answer().locator(".bcw-approval")

    # A hostile tool name and arguments: text, cut after 2,000 characters, never elements.
    tool_call = frame("tool_call", id=approval_id(1), tool=HOSTILE_TOOL, arguments={}, status="pending")
    play(page, frame("chunk", content="Checking. "), tool_call, request(1, HOSTILE_TOOL, HOSTILE_ARGUMENTS))
    expect(cards).to_have_count(1)
    expect(cards.locator(".bcw-approval-tool")).to_have_text(HOSTILE_TOOL)
    shown = cards.locator(".bcw-approval-args").text_content()
    assert "<script>window.__pwned=2</script>" in shown
    assert shown.endswith("… (cut)") and len(shown) == 2000 + len("… (cut)")
    expect(widget.root.locator("script, img, [onerror]")).to_have_count(0)
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # Denied on the socket: the frame goes, the buttons wait, then the run's outcome replaces them.
    cards.first.locator(".bcw-deny").click()
    assert decisions_sent(page) == [
        {"type": "approval", "approval_id": approval_id(1), "run_id": RUN, "decision": "reject"}
    ]
    expect(cards.first.locator(".bcw-deny")).to_be_disabled()
    expect(cards.first.locator(".bcw-approval-outcome")).to_have_text("Sending your decision…")
    decided = frame("approval_decided", approval_id=approval_id(1), tool=HOSTILE_TOOL, decision="reject")
    result = frame("tool_result", id=approval_id(1), tool=HOSTILE_TOOL, status="rejected")
    play(page, {**decided, "status": "rejected", "decided_by": "visitor", "arguments": {}}, result)
    expect(cards.first.locator(".bcw-approval-outcome")).to_have_text("Denied")
    expect(cards.first.locator(".bcw-approval-actions")).to_be_hidden()

    # A call its policy allowed: one short line, none of its output.
    play(
        page,
        frame("tool_call", id=approval_id(2), tool="web_search", arguments={}, status="approved"),
        frame("tool_result", id=approval_id(2), tool="web_search", status="done", result_chars=900),
    )
    expect(widget.answer().locator(".bcw-tool-note")).to_have_text(["Used tool web_search"])

    # Decided elsewhere first: the socket's error closes the card, with no notice in the conversation.
    play(page, request(3))
    cards.nth(1).locator(".bcw-allow").focus()
    page.keyboard.press("Enter")
    closed = "This approval was already closed (Expired (rejected))."
    play(page, {"type": "error", "code": "approval_closed", "content": closed})
    expect(cards.nth(1).locator(".bcw-approval-outcome")).to_have_text(closed)
    expect(cards.nth(1).locator(".bcw-approval-actions")).to_be_hidden()
    expect(widget.notices).to_have_count(0)
    expect(widget.answer()).to_have_attribute("data-status", "streaming")

    # The socket is not open: the decision goes over REST, with the visitor's token.
    posted = []

    def decide(route) -> None:
        posted.append((route.request.url, route.request.headers.get("authorization"), route.request.post_data_json))
        body = {"approval_id": approval_id(4), "run_id": RUN, "status": "approved", "arguments": {"query": "y"}}
        route.fulfill(json=body)

    page.route(f"{FakeApi.ORIGIN}/runs/**", decide)
    play(page, request(4))
    page.evaluate("window.__fake.last().readyState = 2")  # closing: not open, its close not told yet
    cards.nth(2).locator(".bcw-allow").click()
    expect(cards.nth(2).locator(".bcw-approval-outcome")).to_have_text("Allowed")
    expect(cards.nth(2).locator(".bcw-approval-args")).to_have_text(json.dumps({"query": "y"}, indent=2))
    assert posted == [
        (f"{FakeApi.ORIGIN}/runs/{RUN}/approvals/{approval_id(4)}", "Visitor v1.test", {"decision": "approve"})
    ]
    page.evaluate("window.__fake.last().readyState = 1")

    # The answer ends while a card waits: it can no longer be decided.
    play(page, request(5), frame("done", content="Checking. Done.", finish_reason="stop", citations=[]))
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    expect(cards.nth(3).locator(".bcw-approval-outcome")).to_have_text("Expired")
    expect(cards.locator(".bcw-approval-outcome")).to_have_text(["Denied", closed, "Allowed", "Expired"])
    assert len(decisions_sent(page)) == 2


def test_the_approval_card_speaks_the_widgets_language(fake_page):
    page = fake_page
    api = FakeApi(page)
    spanish = embedding_page(FakeApi.ORIGIN, "pk_test", title="Una página").replace(
        'data-open="true"', 'data-open="true" data-lang="es"'
    )
    page.route(f"{FakeApi.ORIGIN}/page.html", lambda route: route.fulfill(body=spanish, content_type="text/html"))
    widget = api.open()
    widget.ask("Usa tus herramientas")
    page.wait_for_function("window.__fake.last().sent.some((f) => f.type === 'message')")
    request = {"type": "approval_request", "run_id": RUN, "seq": 1, "approval_id": approval_id(1)}
    play(page, {**request, "tool": "knowledge_search", "arguments": {"query": "x"}})
    card = widget.answer().locator(".bcw-approval")
    expect(card).to_have_attribute("aria-label", "Aprobación de herramienta: knowledge_search")
    expect(card.get_by_role("button", name="Permitir la llamada a knowledge_search")).to_have_text("Permitir")
    card.get_by_role("button", name="Rechazar la llamada a knowledge_search").click()
    decided = {"type": "approval_decided", "run_id": RUN, "seq": 2, "approval_id": approval_id(1)}
    play(page, {**decided, "tool": "knowledge_search", "decision": "reject", "status": "rejected"})
    expect(card.locator(".bcw-approval-outcome")).to_have_text("Rechazada")
