"""Thumbs under the widget's answers (issue 19; docs/feedback.md), in Debian's headless Chromium, against a real server.

The widget is embedded on a page of another origin (a small HTTP server on another port, allowed by the demo
bot), so each rating is a cross-origin PUT or DELETE with a preflight, authorized by the visitor token.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import ROOT, HostPages, Widget, embedding_page, fresh_page, require_chromium
from tests.live_server import LiveServer, upstream_env

pytestmark = pytest.mark.browser

QUESTION = "How does the Bytchat widget stream answers?"
# The feedback rows as the server's database holds them: [message_id, rating, visitor_id].
STORED = """
import json
from chats.models import Feedback
print(json.dumps([[str(f.message_id), f.rating, str(f.visitor_id)] for f in Feedback.objects.order_by("created_at")]))
"""


@pytest.fixture(scope="module")
def site(fake_openai_server, tmp_path_factory):
    require_chromium()
    host = HostPages().start()
    live = LiveServer(
        tmp_path_factory.mktemp("widget-feedback"),
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
        command = [sys.executable, "manage.py", "demo_bot", "--json", "--origin", host.origin]
        prepared = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert prepared.returncode == 0, prepared.stderr
        key = json.loads(prepared.stdout.strip().splitlines()[-1])["public_key"]
        host.pages["/shop.html"] = embedding_page(live.url, key, title="A shop")
        spanish = embedding_page(live.url, key, title="Una tienda")
        host.pages["/tienda.html"] = spanish.replace('data-open="true"', 'data-open="true" data-lang="es"')
        yield {"live": live, "key": key, "url": f"{host.origin}/shop.html", "es": f"{host.origin}/tienda.html"}
    finally:
        live.stop()
        host.stop()


@pytest.fixture
def page(browser):
    with fresh_page(browser) as tab:
        yield tab


def stored_feedback(live) -> list[list[str]]:
    shell = [sys.executable, "manage.py", "shell", "-c", STORED]
    done = subprocess.run(shell, cwd=ROOT, env=live.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def history(live, widget: Widget, key: str) -> list[dict]:
    stored = widget.stored(key)
    response = httpx.get(
        f"{live.url}/widget/sessions/{stored['sessionId']}/messages",
        headers={"Authorization": f"Visitor {stored['visitorToken']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def thumbs(widget: Widget):
    answer = widget.answer()
    return answer.get_by_role("button", name="Good answer"), answer.get_by_role("button", name="Bad answer")


def test_a_thumbs_down_is_stored_for_that_answer_kept_after_a_reload_and_cleared_by_a_second_click(site, page):
    live, key = site["live"], site["key"]
    page.goto(site["url"])
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(QUESTION)
    expect(widget.answer()).to_have_attribute("data-status", "complete", timeout=15_000)
    up, down = thumbs(widget)
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(down).to_have_attribute("aria-pressed", "false")

    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(down).to_be_enabled()  # saved
    answer_id = history(live, widget, key)[-1]["id"]
    [[message_id, rating, visitor_id]] = stored_feedback(live)
    assert (message_id, rating) == (answer_id, "down") and visitor_id != "None"

    page.reload()
    widget.wait_ready()
    up, down = thumbs(widget)
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")

    up.click()  # the other one: the rating changes
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    expect(up).to_be_enabled()
    assert [row[:2] for row in stored_feedback(live)] == [[answer_id, "up"]]

    up.click()  # the pressed one again: cleared
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(up).to_be_enabled()
    assert stored_feedback(live) == []
    assert history(live, widget, key)[-1]["feedback"] is None


def test_a_rating_that_cannot_be_saved_is_undone_and_said(site, page):
    page.goto(site["url"])
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(QUESTION)
    expect(widget.answer()).to_have_attribute("data-status", "complete", timeout=15_000)

    def unavailable(route):
        if route.request.method == "PUT":
            route.fulfill(status=503, json={"detail": "Unavailable."}, headers={"Access-Control-Allow-Origin": "*"})
        else:
            route.continue_()

    page.route("**/messages/*/feedback", unavailable)
    up, down = thumbs(widget)
    down.click()
    expect(widget.answer().locator(".bcw-rate-note")).to_have_text("Your rating was not saved. Please try again.")
    expect(down).to_have_attribute("aria-pressed", "false")
    expect(down).to_be_enabled()
    answer_id = history(site["live"], widget, site["key"])[-1]["id"]
    assert answer_id not in [row[0] for row in stored_feedback(site["live"])]
    failed = page.console.errors
    assert failed and all("503" in error for error in failed), failed
    page.console.errors.clear()

    page.unroute("**/messages/*/feedback", unavailable)
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(widget.answer().locator(".bcw-rate-note")).to_have_text("")
    assert [answer_id, "up"] in [row[:2] for row in stored_feedback(site["live"])]


def test_the_thumbs_are_real_buttons_labelled_in_the_widgets_language(site, page):
    page.goto(site["es"])
    widget = Widget(page)
    widget.wait_ready()
    widget.ask(QUESTION)
    expect(widget.answer()).to_have_attribute("data-status", "complete", timeout=15_000)
    bar = widget.answer().locator(".bcw-rate")
    expect(bar.get_by_role("button", name="Buena respuesta")).to_have_attribute("aria-pressed", "false")
    expect(bar.get_by_role("button", name="Mala respuesta")).to_be_visible()
    expect(widget.root.locator(".bcw-msg--user .bcw-rate")).to_be_hidden()
