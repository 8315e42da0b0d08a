"""A share link's public page in Debian's headless Chromium, against a real server: stored HTML shows as text."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import fresh_page, require_chromium
from tests.live_server import LiveServer, new_user_auth

pytestmark = pytest.mark.browser

QUESTION = "Show me <b>markup</b>, please"
ANSWER = (
    "Here it is:\n<script>window.__pwned=1</script>\n"
    '<img src=x onerror="window.__pwned=2">\n'
    '<a href="javascript:window.__pwned=3">a link</a> and **not bold**'
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A live server and the public path of a link to a chat whose answer is hostile HTML."""
    require_chromium()
    live = LiveServer(tmp_path_factory.mktemp("share-page"), {}).start()
    try:
        with httpx.Client(base_url=live.url, timeout=10) as http:
            auth = new_user_auth(http)
            chat = http.post("/chats/create", json={"name": "<i>Shared</i> chat"}, headers=auth).json()
            for role, text in (("Human", QUESTION), ("Assistant", ANSWER)):
                body = {"chat_id": chat["id"], "role": role, "message": text}
                assert http.post("/conversations/create", json=body, headers=auth).status_code == 201
            link = http.post(f"/chats/{chat['id']}/shares", json={}, headers=auth)
            assert link.status_code == 201, link.text
            yield {"live": live, "link": link.json(), "auth": auth}
    finally:
        live.stop()


def test_html_in_a_shared_answer_is_shown_as_text_and_never_runs(shared, browser):
    with fresh_page(browser) as page:
        response = page.goto(shared["live"].url + shared["link"]["url"])
        assert response.status == 200
        assert "script-src" not in response.headers["content-security-policy"]
        messages = page.locator(".message .content")
        expect(messages).to_have_count(2)
        expect(messages.nth(0)).to_have_text(QUESTION)
        expect(messages.nth(1)).to_have_text(ANSWER)  # every character as written, line breaks kept
        expect(page.locator("h1")).to_have_text("<i>Shared</i> chat")
        expect(page.locator("main script, main img, main a, main b, main i, main strong, [onerror]")).to_have_count(0)
        page.wait_for_timeout(300)  # time for an <img onerror> to fire, had one been made
        assert page.evaluate("typeof window.__pwned") == "undefined"
        # The answer keeps its three lines: shown with its breaks, not run together.
        box = messages.nth(1).bounding_box()
        line = messages.nth(0).bounding_box()
        assert box["height"] > 3 * line["height"] * 0.9


def test_a_revoked_link_shows_the_not_found_page(shared, browser):
    live, link = shared["live"], shared["link"]
    revoked = httpx.delete(f"{live.url}/shares/{link['id']}", headers=shared["auth"], timeout=10)
    assert revoked.status_code == 204
    # Not fresh_page: Chromium logs a document answered with 404 as a console error.
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        response = page.goto(live.url + link["url"])
        assert response.status == 404
        expect(page.locator("h1")).to_have_text("Share link not found")
        expect(page.locator("body")).not_to_contain_text("markup")
    finally:
        context.close()
