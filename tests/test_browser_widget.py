"""The embeddable widget (chats/static/bytchat/widget.js) in Debian's headless Chromium, against a real server.

The server answers with the fake OpenAI server's `fake-widget` model (Markdown streamed word by word) and
its demo bot (`manage.py demo_bot`) has the sample document about Bytchat, so answers cite `bytchat.md`.
Other origins are pages of small HTTP servers on other ports: one the bot allows, one it does not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.browser import (
    ARTIFACTS,
    COUNT_RENDERS,
    MEASURE_WORK,
    ROOT,
    TRACK_SOCKETS,
    WIDGET_JS,
    HostPages,
    Widget,
    embedding_page,
    fresh_page,
    require_chromium,
)
from tests.fake_openai import FakeOpenAI
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.browser

QUESTION = "How does the Bytchat widget stream answers?"
# Answered by the fake model with "w0 w1 ... w99 ", a word every 60 ms.
SLOW_QUESTION = "Write a very long answer, please"
SLOW_ANSWER = "".join(f"w{i} " for i in range(100)).strip()
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
# Records each text and status the last answer shows (window.__texts, window.__statuses), from now on.
WATCH_ANSWER = """
() => {
  const root = document.querySelector("bytchat-widget").shadowRoot;
  window.__texts = [];
  window.__statuses = [];
  const look = () => {
    const answers = root.querySelectorAll(".bcw-msg--assistant");
    const last = answers[answers.length - 1];
    if (!last) return;
    const text = last.querySelector(".bcw-body").textContent;
    if (window.__texts[window.__texts.length - 1] !== text) window.__texts.push(text);
    const status = last.dataset.status;
    if (window.__statuses[window.__statuses.length - 1] !== status) window.__statuses.push(status);
  };
  look();
  new MutationObserver(look).observe(root, { subtree: true, childList: true, characterData: true, attributes: true });
}
"""
# Records the length of the last answer's text at every change of the widget's DOM.
SAMPLE_ANSWER_LENGTHS = """
() => {
  const root = document.querySelector("bytchat-widget").shadowRoot;
  window.__lengths = [];
  window.__stopShown = false;
  new MutationObserver(() => {
    const bodies = root.querySelectorAll(".bcw-msg--assistant .bcw-body");
    const last = bodies[bodies.length - 1];
    if (!last) return;
    const length = last.textContent.length;
    if (window.__lengths[window.__lengths.length - 1] !== length) window.__lengths.push(length);
    if (!root.querySelector(".bcw-stop").hidden) window.__stopShown = true;
  }).observe(root, { subtree: true, childList: true, characterData: true, attributes: true });
}
"""
# Opens a socket from the page; reports whether it ever opened, and its close code.
OPEN_A_SOCKET = """
(url) => new Promise((resolve) => {
  const socket = new WebSocket(url);
  let opened = false;
  socket.onopen = () => {
    opened = true;
    socket.close();
  };
  socket.onclose = (event) => resolve({ opened, code: event.code });
})
"""


@pytest.fixture(scope="module")
def hosts():
    allowed, foreign = HostPages().start(), HostPages().start()
    yield allowed, foreign
    allowed.stop()
    foreign.stop()


@pytest.fixture(scope="module")
def site(fake_openai_server, tmp_path_factory, hosts):
    """The live server with its demo bot (allowing the first host's origin) and the host pages."""
    require_chromium()
    allowed, foreign = hosts
    live = LiveServer(
        tmp_path_factory.mktemp("widget"),
        upstream_env(
            fake_openai_server,
            LLM_PROVIDER="custom",
            LLM_MODEL="fake-widget",
            # Counters that outlive a run on PostgreSQL + Redis: sessions per address, the demo owner's quota.
            WIDGET_SESSIONS_RATE="1000/hour",
            QUOTA_DAILY_FREE="100000",
        ),
    ).start()
    try:
        # Ingested inline by the command, so the sample document is searchable before the first question.
        env = {**live.env, "TASKS_BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}
        command = [sys.executable, "manage.py", "demo_bot", "--json", "--origin", allowed.origin]
        prepared = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert prepared.returncode == 0, prepared.stderr
        key = json.loads(prepared.stdout.strip().splitlines()[-1])["public_key"]
        allowed.pages["/shop.html"] = embedding_page(live.url, key, title="An allowed shop")
        foreign.pages["/elsewhere.html"] = embedding_page(live.url, key, title="Somebody else's site")
        yield {"live": live, "key": key, "allowed": allowed, "foreign": foreign}
    finally:
        live.stop()


@pytest.fixture
def page(browser):
    """A fresh browser profile (its own visitor) and one page whose sockets are tracked; no JavaScript errors."""
    with fresh_page(browser, MEASURE_WORK, TRACK_SOCKETS) as tab:
        yield tab


def screenshot(page, name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    return page.screenshot(path=ARTIFACTS / name)


def history(site, stored: dict) -> list[dict]:
    response = httpx.get(
        f"{site['live'].url}/widget/sessions/{stored['sessionId']}/messages",
        headers={"Authorization": f"Visitor {stored['visitorToken']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def test_the_widget_never_writes_html():
    """Model and document text reach the page as text only: the file has no HTML sink at all."""
    source = WIDGET_JS.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source


def test_demo_page_streams_an_answer_chunk_by_chunk_with_its_citation(site, page):
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    expect(widget.root.locator(".bcw-title")).to_have_text("Bytchat demo")
    page.evaluate(SAMPLE_ANSWER_LENGTHS)
    widget.ask(QUESTION)
    expect(widget.users).to_have_text([QUESTION])
    expect(widget.answer()).to_have_attribute("data-status", "complete")

    final = len(widget.body().text_content())
    lengths = page.evaluate("window.__lengths")
    partial = [n for n in lengths if 0 < n < final]
    assert len(set(partial)) >= 5, lengths  # the answer was seen growing, not only whole
    assert page.evaluate("window.__stopShown")  # the stop button was offered while it streamed
    expect(widget.stop_button).to_be_hidden()

    # Markdown, rendered as elements.
    body = widget.body()
    expect(body.locator("h2")).to_have_text("The widget")
    expect(body.locator("strong")).to_have_text("every answer")
    expect(body.locator("em")).to_have_text("written")
    expect(body.locator("li")).to_have_text(["one script tag", "a publishable key"])
    expect(body.locator("code")).to_have_text("widget.js")
    # The citation names the sample document, once.
    expect(widget.answer().locator(".bcw-source-name")).to_have_text(["bytchat.md"])
    expect(widget.answer().locator(".bcw-sources-title")).to_have_text("Sources")

    screenshot(page, "widget-demo.png")
    # The README's picture: the widget alone (the page's text shows this run's port).
    page.add_style_tag(content="body > * { visibility: hidden; } bytchat-widget { visibility: visible; }")
    box = widget.root.locator(".bcw-root").bounding_box()
    clip = {"x": box["x"] - 16, "y": box["y"] - 16, "width": box["width"] + 32, "height": box["height"] + 32}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "widget.png", clip=clip)
    if os.environ.get("UPDATE_SCREENSHOTS"):  # `UPDATE_SCREENSHOTS=1 make test` refreshes the README's copy
        page.screenshot(path=ROOT / "docs" / "widget.png", clip=clip)


def test_html_in_an_answer_is_shown_as_text_and_never_runs(site, page):
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    widget.ask("Show me something unsafe about the widget")
    expect(widget.answer()).to_have_attribute("data-status", "complete")

    for _load in ("streamed", "reloaded from the history"):
        body = widget.body()
        expect(body).to_contain_text("<script>window.__pwned=1</script>")
        expect(body).to_contain_text('<img src=x onerror="window.__pwned=2">')
        expect(body.locator("strong")).to_have_text("bold text")
        # Only the http(s) link is a link; the javascript: one is its text.
        links = body.locator("a")
        expect(links).to_have_count(1)
        expect(links).to_have_text("a good link")
        assert links.get_attribute("href") == "https://example.com/docs"
        assert links.get_attribute("target") == "_blank"
        assert links.get_attribute("rel") == "noopener noreferrer nofollow"
        expect(body).to_contain_text("a bad link")
        expect(widget.root.locator("script, img, iframe, object, embed, [onerror]")).to_have_count(0)
        page.wait_for_timeout(300)  # time for an <img onerror> to fire, had one been made
        assert page.evaluate("typeof window.__pwned") == "undefined"
        page.reload()
        widget.wait_ready()
        expect(widget.answers).to_have_count(1)


def test_stop_ends_the_answer_midway_and_the_server_keeps_it_cancelled(site, page):
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    widget.ask("Write a long answer, please")
    expect(widget.stop_button).to_be_visible()
    expect(widget.body()).to_contain_text("w4")
    widget.stop_button.click()

    expect(widget.answer()).to_have_attribute("data-status", "cancelled")
    expect(widget.answer().locator(".bcw-meta")).to_have_text("Stopped")
    expect(widget.stop_button).to_be_hidden()
    shown = widget.body().text_content()
    assert "w4" in shown and "w59" not in shown

    messages = history(site, widget.stored(site["key"]))
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "cancelled")]
    assert messages[1]["content"].strip() == shown.strip()

    page.reload()
    widget.wait_ready()
    expect(widget.answer()).to_have_attribute("data-status", "cancelled")
    expect(widget.answer().locator(".bcw-meta")).to_have_text("Stopped")
    expect(widget.body()).to_have_text(shown.strip())


def test_a_reload_restores_the_conversation_of_this_browser_only(site, page, browser):
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(QUESTION)
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    answer = widget.body().text_content()
    stored = widget.stored(site["key"])
    assert stored["sessionId"] and stored["visitorToken"]

    created = []
    page.on("request", lambda r: created.append(r.url) if r.method == "POST" and r.url.endswith("/sessions") else None)
    page.reload()
    widget.wait_ready()
    expect(widget.users).to_have_text([QUESTION])
    expect(widget.answers).to_have_count(1)
    expect(widget.body()).to_have_text(answer)
    expect(widget.answer().locator(".bcw-source-name")).to_have_text(["bytchat.md"])
    assert widget.stored(site["key"]) == stored and created == []  # the same session, not a new one

    # Another browser is another visitor: its own, empty session; the first one's is not its to read.
    other = browser.new_context()
    try:
        stranger = other.new_page()
        stranger.goto(f"{site['live'].url}/demo/")
        theirs = Widget(stranger)
        theirs.wait_ready()
        expect(theirs.users).to_have_count(0)
        their_stored = theirs.stored(site["key"])
        assert their_stored["sessionId"] != stored["sessionId"]
    finally:
        other.close()
    peek = httpx.get(
        f"{site['live'].url}/widget/sessions/{stored['sessionId']}/messages",
        headers={"Authorization": f"Visitor {their_stored['visitorToken']}"},
    )
    assert peek.status_code == 404


# Records, in the page, every frame each socket received, in sessionStorage (it outlives a reload): one list per
# socket in the order they opened. Its listener is the first on each socket, so it has every frame the widget
# rendered by the time the page goes away (playwright's own frame events can arrive after a reload began, and
# be lost with the page).
RECORD_RECEIVED = """
(() => {
  const Native = window.WebSocket;
  const KEY = "__received";
  const read = () => JSON.parse(sessionStorage.getItem(KEY) || "[]");
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      const sockets = read();
      const index = sockets.push([]) - 1;
      sessionStorage.setItem(KEY, JSON.stringify(sockets));
      this.addEventListener("message", (event) => {
        const now = read();
        now[index].push(JSON.parse(event.data));
        sessionStorage.setItem(KEY, JSON.stringify(now));
      });
    }
  };
})();
"""


class ReceivedFrames:
    """The frames the page's sockets received, as the page itself saw them: one list per socket."""

    def __init__(self, page) -> None:
        self.page = page
        page.context.add_init_script(RECORD_RECEIVED)

    @property
    def sockets(self) -> list[list[dict]]:
        return self.page.evaluate("JSON.parse(sessionStorage.getItem('__received') || '[]')")

    def seq_showing(self, socket: int, words: str) -> int:
        """The seq of the frame after which the answer on that socket read `words` first."""
        text = ""
        for frame in self.sockets[socket]:
            if frame["type"] == "chunk":
                text += frame["content"]
                if words in text:
                    return frame["seq"]
        raise AssertionError(f"{words!r} never arrived on socket {socket}")

    def last_seq(self, socket: int) -> int:
        return max(frame.get("seq", 0) for frame in self.sockets[socket])


def resumed_once(page, frames: ReceivedFrames, *, socket: int, shown: str) -> dict:
    """The one `resume` frame the page sent: for the run the socket `socket` relayed, after a seq at least
    that of the frame that showed `shown` and at most the last one that socket received."""
    resumes = [frame for frame in page.evaluate("window.__sent") if frame["type"] == "resume"]
    assert len(resumes) == 1, resumes
    resume = resumes[0]
    assert resume["run_id"] == frames.sockets[socket][-1]["run_id"]
    assert frames.seq_showing(socket, shown) <= resume["after"] <= frames.last_seq(socket), resume
    return resume


def shown_word_by_word(page, final: str) -> list[str]:
    """The texts the answer showed since WATCH_ANSWER: each the start of its final text and none shorter than
    the one before (no word shown twice, none skipped, nothing taken back); it never showed as cut."""
    texts = [text.strip() for text in page.evaluate("window.__texts")]
    assert all(final.startswith(text) for text in texts), texts
    assert [len(text) for text in texts] == sorted(len(text) for text in texts), texts
    assert texts[-1] == final
    assert page.evaluate("window.__statuses") == ["streaming", "complete"]
    return texts


def test_a_dropped_connection_reconnects_with_the_history_and_goes_on(site, page):
    page.context.add_init_script(RECORD_SENT)
    frames = ReceivedFrames(page)
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(QUESTION)
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    conversation = widget.root.locator(".bcw-msg--user, .bcw-msg--assistant")
    before = conversation.all_text_contents()

    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url.removeprefix(site["live"].url))))
    page.evaluate("window.__sockets.at(-1).close()")  # the connection drops (the widget did not close it)
    page.wait_for_function("window.__sockets.length === 2 && window.__sockets[1].readyState === WebSocket.OPEN")
    widget.wait_ready()
    session = widget.stored(site["key"])["sessionId"]
    asked = [r for r in requests if r[0] != "OPTIONS"]
    assert asked == [("GET", f"/widget/sessions/{session}/messages"), ("POST", f"/widget/sessions/{session}/websocket")]
    expect(conversation).to_have_text(before)

    # Dropped in the middle of an answer: the answer goes on from where this page left it, each word once.
    widget.ask(SLOW_QUESTION)
    expect(widget.body()).to_contain_text("w3")
    page.evaluate(WATCH_ANSWER)
    page.evaluate("window.__sockets.at(-1).close()")
    page.wait_for_function("window.__sockets.length === 3 && window.__sockets[2].readyState === WebSocket.OPEN")
    expect(widget.answer()).to_have_attribute("data-status", "complete", timeout=20_000)
    expect(widget.answers).to_have_count(2)
    expect(widget.answer().locator(".bcw-meta")).to_have_text("")
    stored = history(site, widget.stored(site["key"]))[-1]
    assert (stored["status"], stored["content"].strip()) == ("complete", SLOW_ANSWER)
    expect(widget.body()).to_have_text(SLOW_ANSWER)
    shown_word_by_word(page, SLOW_ANSWER)
    resumed_once(page, frames, socket=1, shown="w3")

    widget.ask("And after the reconnection?")
    expect(widget.answers).to_have_count(3)
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    expect(widget.body().locator("h2")).to_have_text("The widget")
    messages = history(site, widget.stored(site["key"]))
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3


def test_an_answer_goes_on_streaming_across_a_page_reload(site, page):
    page.context.add_init_script(RECORD_SENT)
    frames = ReceivedFrames(page)
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(SLOW_QUESTION)
    expect(widget.body()).to_contain_text("w3")

    page.reload()
    page.evaluate(WATCH_ANSWER)
    widget.wait_ready()
    expect(widget.answer()).to_have_attribute("data-status", "complete", timeout=20_000)
    messages = history(site, widget.stored(site["key"]))
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "complete")]
    assert messages[1]["content"].strip() == SLOW_ANSWER
    expect(widget.body()).to_have_text(SLOW_ANSWER)
    expect(widget.users).to_have_text([SLOW_QUESTION])
    expect(widget.answers).to_have_count(1)
    expect(widget.stop_button).to_be_hidden()
    texts = shown_word_by_word(page, SLOW_ANSWER)
    assert len(texts) >= 3, texts  # after the reload it went on growing, not only shown whole at its end
    # The reloaded page asked for the run after the last frame the page before it had rendered, and
    # did not ask its question again.
    resumed_once(page, frames, socket=0, shown="w3")
    assert [frame["type"] for frame in page.evaluate("window.__sent")] == ["resume"]


def test_stop_works_on_an_answer_resumed_after_a_dropped_connection(site, page):
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(SLOW_QUESTION)
    expect(widget.body()).to_contain_text("w3")
    page.evaluate("window.__sockets.at(-1).close()")
    page.wait_for_function("window.__sockets.length === 2 && window.__sockets[1].readyState === WebSocket.OPEN")
    expect(widget.stop_button).to_be_enabled()
    expect(widget.answer()).to_have_attribute("data-status", "streaming")
    widget.stop_button.click()

    expect(widget.answer()).to_have_attribute("data-status", "cancelled")
    expect(widget.answer().locator(".bcw-meta")).to_have_text("Stopped")
    expect(widget.stop_button).to_be_hidden()
    shown = widget.body().text_content().strip()
    assert SLOW_ANSWER.startswith(shown) and "w3" in shown and "w99" not in shown
    messages = history(site, widget.stored(site["key"]))
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "cancelled")]
    assert messages[1]["content"].strip() == shown


def test_another_origin_works_when_the_bot_allows_it(site, page):
    page.goto(f"{site['allowed'].origin}/shop.html")
    widget = Widget(page)
    widget.wait_ready()
    # The page's CSS hides every button and form; none of it reaches the widget's shadow root.
    expect(widget.input).to_be_visible()
    widget.ask(QUESTION)
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    expect(widget.answer().locator(".bcw-source-name")).to_have_text(["bytchat.md"])
    expect(widget.send_button).to_be_visible()
    assert page.evaluate("window.__sockets.length") == 1
    screenshot(page, "widget-allowed-origin.png")


def test_another_origin_is_refused_when_the_bot_does_not_allow_it(site, page):
    page.goto(f"{site['foreign'].origin}/elsewhere.html")
    widget = Widget(page)
    expect(widget.notices).to_have_text(["This website is not allowed to use this chat."])
    expect(widget.greeting).to_have_count(0)
    expect(widget.input).to_be_visible()
    expect(widget.send_button).to_be_disabled()
    page.wait_for_timeout(700)  # it does not retry into a socket either
    assert page.evaluate("window.__sockets.length") == 0
    screenshot(page, "widget-refused-origin.png")
    # The browser logs the refused request itself; nothing else may appear.
    refused = [e for e in page.console.errors if "403" in e and "/widget/sessions" in e]
    assert refused and len(refused) == len(page.console.errors), page.console.errors
    page.console.errors.clear()

    # The server refuses that origin: the session, and a handshake even with a valid ticket.
    live, allowed, foreign = site["live"], site["allowed"].origin, site["foreign"].origin
    with httpx.Client(base_url=live.url, timeout=10) as http:
        refused = http.post("/widget/sessions", json={"bot_key": site["key"]}, headers={"Origin": foreign})
        assert refused.status_code == 403 and refused.json()["code"] == "origin_not_allowed"
        created = http.post("/widget/sessions", json={"bot_key": site["key"]}, headers={"Origin": allowed})
        assert created.status_code == 201, created.text
        created = created.json()
        with pytest.raises(InvalidStatus) as handshake:
            connect(created["websocket_url"], origin=foreign, proxy=None, open_timeout=5).close()
        assert handshake.value.response.status_code == 403
        # A fresh ticket from the allowed page opens the same session.
        fresh = http.post(
            f"/widget/sessions/{created['session_id']}/websocket",
            headers={"Origin": allowed, "Authorization": f"Visitor {created['visitor_token']}"},
        )
        assert fresh.status_code == 200, fresh.text
    with connect(fresh.json()["websocket_url"], origin=allowed, proxy=None, open_timeout=5) as socket:
        assert json.loads(socket.recv(timeout=5))["type"] == "system"

    # In the browser: the foreign page's socket, with a ticket issued to the allowed page, never opens...
    assert page.evaluate(OPEN_A_SOCKET, ticket(site, allowed)) == {"opened": False, "code": 1006}
    assert len(page.console.errors) == 1 and "403" in page.console.errors[0], page.console.errors
    page.console.errors.clear()
    # ...while the allowed page's, with such a ticket, does.
    page.goto(f"{allowed}/shop.html")
    assert page.evaluate(OPEN_A_SOCKET, ticket(site, allowed))["opened"] is True


def ticket(site, origin: str) -> str:
    """The websocket_url of a new session created, as if by a page of `origin`, for the demo bot."""
    created = httpx.post(
        f"{site['live'].url}/widget/sessions", json={"bot_key": site["key"]}, headers={"Origin": origin}, timeout=10
    )
    assert created.status_code == 201, created.text
    return created.json()["websocket_url"]


def test_a_message_is_never_lost_to_a_dropped_connection(site, page):
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    questions = widget.root.locator(".bcw-msg--user")

    # Typed while the connection is down (and the server gives no new socket for a while): it waits, marked.
    def unavailable(route):
        route.fulfill(status=503, json={"detail": "Unavailable for a while."})

    page.route("**/widget/sessions/*/websocket", unavailable)
    page.evaluate("window.__sockets.at(-1).close()")
    expect(widget.status).to_contain_text("Reconnecting")
    widget.ask(QUESTION)
    expect(questions).to_have_attribute("data-status", "queued")
    expect(questions.locator(".bcw-meta")).to_have_text("Not sent yet: it will be sent when the connection is back.")
    expect(widget.send_button).to_be_disabled()
    expect(widget.answers).to_have_count(0)
    page.wait_for_timeout(1600)  # two or three attempts reload the history and fail; the message stays
    expect(questions).to_have_count(1)
    expect(questions).to_have_attribute("data-status", "queued")
    page.unroute("**/widget/sessions/*/websocket", unavailable)
    expect(widget.answer()).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(questions).to_have_attribute("data-status", "complete")
    expect(questions.locator(".bcw-meta")).to_have_text("")
    failed = page.console.errors
    assert failed and all("503" in error for error in failed), failed
    page.console.errors.clear()

    # Sent on a connection that is dying (the frame is lost): sent again on the next one, and only once.
    page.evaluate("window.__sockets.at(-1).send = () => {}")
    widget.ask("And the second question?")
    expect(questions.last).to_have_attribute("data-status", "sent")
    page.evaluate("window.__sockets.at(-1).close()")
    page.wait_for_function("window.__sockets.length === 3")
    expect(widget.answer(1)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(widget.root.locator('.bcw-msg--user[data-status="complete"]')).to_have_count(2)
    expect(widget.users).to_have_text([QUESTION, "And the second question?"])
    messages = history(site, widget.stored(site["key"]))
    asked = [m["content"] for m in messages if m["role"] == "user"]
    assert asked == [QUESTION, "And the second question?"]
    assert [m["status"] for m in messages if m["role"] == "assistant"] == ["complete", "complete"]


def test_a_long_answer_streamed_in_many_chunks_is_rendered_at_most_once_a_frame(site, page):
    """60,000 characters of Markdown in 1,500 chunks 2 ms apart: the host page does not re-parse the whole
    answer for each chunk (which took seconds of its main thread)."""
    page.goto(f"{site['live'].url}/demo/")
    widget = Widget(page)
    widget.wait_ready()
    page.evaluate(COUNT_RENDERS)
    before = page.evaluate("window.__work.ms")
    widget.ask("Please write a stress test answer")
    expect(widget.answer()).to_have_attribute("data-status", "complete", timeout=60_000)

    work = page.evaluate("({ ...window.__work })")
    chunks = len(FakeOpenAI._words("fake-widget", {"messages": [{"role": "user", "content": "stress"}]}))
    print(
        f"\n{len(FakeOpenAI.WIDGET_STRESS)} characters in {chunks} chunks: {work['renders']} renders in "
        f"{work['frames']} frames, {work['ms'] - before:.0f} ms of JavaScript, the longest call "
        f"{work['longest']:.0f} ms"
    )
    assert work["renders"] <= work["frames"] + 1  # at most once a frame (and once more at the end)
    assert work["renders"] < chunks / 2
    targets = re.findall(r"\]\((https://[^)]+)\)", FakeOpenAI.WIDGET_STRESS)
    links = widget.body().locator("a")
    expect(links).to_have_count(len(targets))
    expect(links.last).to_have_attribute("href", targets[-1])
