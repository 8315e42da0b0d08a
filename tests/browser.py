"""Helpers of the browser tests: Debian's Chromium under Playwright, host pages on other origins, the widget's DOM."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
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


def require_chromium() -> str:
    """The browser's path; without it, skip locally and fail in CI (scripts/system-packages.sh installs it)."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    message = f"{CHROMIUM} is missing (apt-get install chromium, see scripts/system-packages.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


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
