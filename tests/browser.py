"""Helpers of the browser tests: Debian's Chromium under Playwright, host pages on other origins, the widget's DOM."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
WIDGET_JS = ROOT / "chats" / "static" / "bytchat" / "widget.js"
expect.set_options(timeout=10_000)

# Records every WebSocket the page opens (window.__sockets), so a test can count them or drop one.
TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
    }
  };
})();
"""
# The page's JavaScript time spent on the widget's socket messages and animation frames (window.__work):
# ms in all and the longest single call. An init script to add first (the others build on it). Once
# COUNT_RENDERS ran, `renders` counts the tasks that changed an answer's text and `frames` the animation
# frames (both from then on).
MEASURE_WORK = """
(() => {
  const work = (window.__work = { ms: 0, longest: 0, renders: 0, frames: 0 });
  work.time = (fn, self, args) => {
    const start = performance.now();
    try {
      return fn.apply(self, args);
    } finally {
      const spent = performance.now() - start;
      work.ms += spent;
      work.longest = Math.max(work.longest, spent);
    }
  };
  const frame = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => frame((...args) => work.time(callback, window, args));
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true,
    get() {
      return onmessage.get.call(this);
    },
    set(handler) {
      onmessage.set.call(this, handler && function (...args) { return work.time(handler, this, args); });
    },
  });
})();
"""
COUNT_RENDERS = """
() => {
  const root = document.querySelector("bytchat-widget").shadowRoot;
  const answer = (record) => record.target.matches && record.target.matches(".bcw-msg--assistant .bcw-body");
  new MutationObserver((records) => {
    if (records.some(answer)) window.__work.renders++;
  }).observe(root, { subtree: true, childList: true });
  const tick = () => {
    window.__work.frames++;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""
# A stand-in for WebSocket (window.__fake.sockets): the test plays the server. A socket opens at once and
# greets (with the fields of window.__fakeGreeting too, e.g. a running run_id); deliver(frame) hands the
# widget a frame (timed by MEASURE_WORK), drop(code) ends the connection.
FAKE_SOCKETS = """
(() => {
  const fake = (window.__fake = { sockets: [] });
  class FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    constructor(url) {
      Object.assign(this, { url, readyState: 0, sent: [], onopen: null, onmessage: null, onclose: null });
      fake.sockets.push(this);
      setTimeout(() => {
        if (this.readyState !== 0) return;
        this.readyState = 1;
        if (this.onopen) this.onopen({});
        this.deliver({ type: "system", content: "Hello from the fake server.", ...window.__fakeGreeting });
      }, 0);
    }
    send(data) {
      if (this.readyState === 1) this.sent.push(JSON.parse(data));
    }
    close(code = 1000) {
      this.drop(code);
    }
    drop(code = 1006) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => this.onclose && this.onclose({ code }), 0);
    }
    deliver(frame) {
      if (this.onmessage) window.__work.time(this.onmessage, this, [{ data: JSON.stringify(frame) }]);
    }
  }
  fake.last = () => fake.sockets[fake.sockets.length - 1];
  // Each frame in its own task, as a socket delivers them; resolves once the page has painted twice more.
  // paced: one frame an animation frame, as a slow network would deliver them; else one a task.
  fake.play = async (frames, paced = false) => {
    const next = paced ? (resolve) => requestAnimationFrame(resolve) : (resolve) => setTimeout(resolve, 0);
    for (const frame of frames) {
      fake.last().deliver(frame);
      await new Promise(next);
    }
    for (let i = 0; i < 2; i++) await new Promise((resolve) => requestAnimationFrame(resolve));
  };
  window.WebSocket = FakeSocket;
})();
"""


def require_chromium() -> str:
    """The browser's path; without it, skip locally and fail in CI (scripts/system-packages.sh installs it)."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    message = f"{CHROMIUM} is missing (apt-get install chromium, see scripts/system-packages.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def chromium() -> Iterator:
    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-proxy-server"])
        yield browser
        browser.close()


class Console:
    """JavaScript errors of a page: uncaught exceptions and console.error lines (the favicon aside)."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type == "error" and not (message.location or {}).get("url", "").endswith("/favicon.ico"):
            self.errors.append(f"console: {message.text} ({(message.location or {}).get('url', '')})")


@contextlib.contextmanager
def fresh_page(browser, *init_scripts: str) -> Iterator:
    """A fresh browser profile (its own localStorage: its own visitor) and one page; no JavaScript errors."""
    context = browser.new_context(viewport={"width": 1100, "height": 760}, locale="en-US")
    context.set_default_timeout(10_000)
    for script in init_scripts:
        context.add_init_script(script)
    tab = context.new_page()
    tab.console = Console(tab)
    yield tab
    errors = list(tab.console.errors)
    context.close()
    assert errors == []


class FakeApi:
    """A page embedding the widget on http://widget.test, whose HTTP API Playwright's router answers:
    one session, with `history` as its messages. Used with FAKE_SOCKETS, no server runs at all."""

    ORIGIN = "http://widget.test"
    SESSION = "00000000-0000-4000-8000-000000000001"

    def __init__(self, page, history: list[dict] | None = None) -> None:
        self.page = page
        self.history = history or []
        self.requests: list[tuple[str, str]] = []
        page.route(f"{self.ORIGIN}/**", self._answer)

    def open(self) -> Widget:
        self.page.goto(f"{self.ORIGIN}/page.html")
        widget = Widget(self.page)
        widget.wait_ready()
        return widget

    def _answer(self, route) -> None:
        method, path = route.request.method, urlsplit(route.request.url).path
        self.requests.append((method, path))
        socket = {"websocket_url": f"ws://widget.test/ws/{len(self.requests)}"}
        session = f"/widget/sessions/{self.SESSION}"
        if path == "/page.html":
            page = embedding_page(self.ORIGIN, "pk_test", title="A page with the widget")
            route.fulfill(body=page, content_type="text/html")
        elif path == "/static/bytchat/widget.js":
            route.fulfill(body=WIDGET_JS.read_text(), content_type="application/javascript")
        elif (method, path) == ("POST", "/widget/sessions"):
            created = {"session_id": self.SESSION, "visitor_token": "v1.test", "bot": {"name": "Test bot"}, **socket}
            route.fulfill(status=201, json=created)
        elif (method, path) == ("GET", f"{session}/messages"):
            route.fulfill(json={"messages": self.history})
        elif (method, path) == ("POST", f"{session}/websocket"):
            route.fulfill(json=socket)
        else:
            route.fulfill(status=404, json={"detail": "not found"})


class HostPages:
    """A threaded HTTP server on 127.0.0.1 (its own origin) serving the HTML pages put in `pages`."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                html = pages.get(self.path.split("?")[0])
                body = (html or "not found").encode()
                self.send_response(200 if html is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8" if html else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="host-pages", daemon=True)

    def start(self) -> HostPages:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def embedding_page(server_url: str, bot_key: str, *, title: str) -> str:
    """Somebody else's page, with CSS that would break the widget if it leaked in, embedding it with one tag."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><link rel="icon" href="data:,">
<style>
  * {{ font-family: serif !important; color: #c00 !important; }}
  button, textarea, form {{ display: none !important; }}
  div {{ border: 3px dashed orange; padding: 40px; }}
</style></head>
<body><h1>{title}</h1><p>A page on another origin.</p>
<script src="{server_url}/static/bytchat/widget.js" data-bot-key="{bot_key}" data-open="true" defer></script>
</body></html>"""


class Widget:
    """The widget on a page, through its (open) shadow DOM: Playwright's CSS locators pierce it."""

    def __init__(self, page) -> None:
        self.page = page
        self.root = page.locator("bytchat-widget")
        self.panel = self.root.locator(".bcw-panel")
        self.input = self.root.locator(".bcw-input")
        self.send_button = self.root.locator(".bcw-send")
        self.stop_button = self.root.locator(".bcw-stop")
        self.status = self.root.locator(".bcw-status")
        self.greeting = self.root.locator(".bcw-msg--greeting")
        self.users = self.root.locator(".bcw-msg--user .bcw-body")
        self.answers = self.root.locator(".bcw-msg--assistant")
        self.notices = self.root.locator(".bcw-msg--notice")

    def answer(self, index: int = -1):
        return self.answers.last if index == -1 else self.answers.nth(index)

    def body(self, index: int = -1):
        return self.answer(index).locator(".bcw-body")

    def ask(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")

    def wait_ready(self, timeout: float = 10_000) -> None:
        """Connected: the greeting arrived over the socket and the status line is empty."""
        expect(self.greeting).to_be_visible(timeout=timeout)
        expect(self.status).to_have_text("", timeout=timeout)

    def stored(self, bot_key: str) -> dict:
        """What the widget keeps in localStorage for this bot: sessionId, visitorToken, botName."""
        return self.page.evaluate(
            "key => JSON.parse(localStorage.getItem(`bytchat.widget.v1.${key}`) || '{}')", bot_key
        )
