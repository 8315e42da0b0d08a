"""The widget (chats/static/bytchat/widget.js) in Debian's headless Chromium, with no server: Playwright's router
answers its HTTP API (tests.browser.FakeApi) and the test plays the socket's side frame by frame (FAKE_SOCKETS).

What the widget makes of frames and histories: the Markdown renderer's cost on hostile input, link labels
that name another host, citations as visitors get them, and the labels of cancelled answers.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import COUNT_RENDERS, FAKE_SOCKETS, MEASURE_WORK, FakeApi, fresh_page

pytestmark = pytest.mark.browser

# Lines that make a Markdown renderer backtrack or scan again and again. Before, the first heading and the
# list item each held the host page's main thread for about 3 s, the code span 0.8 s, the closed brackets
# 0.3 s. Lines over 20,000 characters are shown as plain text: the shorter ones go through the inline parser.
HOSTILE = {
    "a heading with a long run of spaces": "# a" + " " * 40_000 + "b",
    "a heading of spaces": "# " + " " * 40_000 + "x",
    "a list item ending in U+2028": "- " + " " * 40_000 + "x\u2028",
    "opening brackets": "[" * 19_000,
    "opening brackets, one closed": "[" * 19_000 + "]",
    "link starts": "[a](" * 4_000,
    "asterisks": "a" + "*" * 19_000,
    "underscores within words": "_a" * 9_000,
    "strong openers": "**a " * 4_000,
    "a code span of one space and text": "` " + "a" * 19_000 + "`",
    "backtick runs of every length": " ".join("`" * n + "a" for n in range(1, 190)),
    "angle brackets": "<https://" * 2_000,
}


@pytest.fixture
def page(browser):
    with fresh_page(browser, MEASURE_WORK, FAKE_SOCKETS) as tab:
        yield tab


def answer(page, widget, question: str, *frames: dict, paced: bool = False) -> None:
    """Asks, then plays the server's frames for the answer (each in its own task, or with `paced`, each
    in its own animation frame)."""
    widget.ask(question)
    page.wait_for_function("q => window.__fake.last().sent.some((f) => f.content === q)", arg=question)
    page.evaluate("([frames, paced]) => window.__fake.play(frames, paced)", [list(frames), paced])


def done(content: str, **fields) -> dict:
    return {"type": "done", "content": content, "finish_reason": "stop", "citations": [], **fields}


def test_hostile_markdown_renders_and_stays_markdown(page):
    """Inputs that made the old renderer quadratic (figures in docs/benchmarks.md). Time is printed, not
    asserted (house rule: benchmarks measure, tests do not time); the test fails if one hangs past
    Playwright's own timeout or renders wrongly."""
    widget = FakeApi(page).open()
    spent = {}
    for name, text in HOSTILE.items():
        before = page.evaluate("window.__work.ms")
        answer(page, widget, name, {"type": "chunk", "content": text}, done(text))
        expect(widget.answer()).to_have_attribute("data-status", "complete")
        spent[name] = page.evaluate("window.__work.ms") - before
    print("\n" + "\n".join(f"{ms:7.1f} ms  {name}" for name, ms in spent.items()))

    # Still Markdown.
    assert widget.body(0).locator("h1").text_content() == "a" + " " * 40_000 + "b"
    assert widget.body(1).locator("h1").text_content() == "x"
    assert widget.body(6).text_content() == "a" + "*" * 19_000
    assert widget.body(9).locator("code").text_content() == " " + "a" * 19_000


def test_a_streamed_answer_renders_as_the_same_answer_loaded_whole(page):
    """While an answer streams, blocks that ended are kept and only the rest is parsed again."""
    text = (
        "# Title ##\r\n\r\nA paragraph\nwith a break, **bold\n\ntext** and a [link](https://example.com/a).\n\n"
        "```python\ndef f():\n\n    return 1\n```\n\n- one\n- two\n  more\n\n1. first\n\n2. second\n\n"
        "> quoted\n>\n> ```\n> code\n\n---\n\n~~~\nunclosed fence\n\nto the end *x*"
    )
    api = FakeApi(page)
    widget = api.open()
    page.evaluate(COUNT_RENDERS)
    chunks = [{"type": "chunk", "content": text[i : i + 7]} for i in range(0, len(text), 7)]
    # Paced, so the answer is drawn while it grows however fast this machine runs the tasks (renders are
    # at most one an animation frame).
    answer(page, widget, "Markdown, please", *chunks, done(text), paced=True)
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    streamed = widget.body().inner_html()
    assert page.evaluate("window.__work.renders") > 3  # it was seen growing

    api.history = [
        {"id": "u1", "role": "user", "content": "Markdown, please", "status": "complete", "citations": []},
        {"id": "a1", "role": "assistant", "content": text, "status": "complete", "citations": []},
    ]
    page.reload()
    widget.wait_ready()
    assert widget.body().inner_html() == streamed
    expect(widget.body().locator("pre")).to_have_count(3)
    expect(widget.body().locator("h1")).to_have_text("Title")


def test_a_link_label_cannot_pass_for_another_host(page):
    text = " ".join(
        [
            "[https://bank.com](https://evil.com/login)",
            "[bank.com](https://bank.com.evil.com/)",
            "[**paypal.com**](https://evil.com/)",
            "[apple.com](https://\u0430pple.com/)",  # U+0430, the Cyrillic a
            "[www.bank.com/help](https://bank.com/help)",
            "[https://bank.com](https://bank.com/x)",
            "[the bank](https://evil.com/)",
            "https://example.com/bare",
            # Credentials in a URL hide its host: never a link.
            "[my bank](https://bank.com@evil.com/)",
            "https://user:secret@bank.example/",
            "<https://bank.com:pw@evil.com/>",
        ]
    )
    widget = FakeApi(page).open()
    answer(page, widget, "Links, please", done(text))
    links = widget.body().locator("a")
    expect(links).to_have_text(
        [
            "https://bank.com (evil.com)",
            "bank.com (bank.com.evil.com)",
            "paypal.com (evil.com)",
            "apple.com (xn--pple-43d.com)",
            "www.bank.com/help",
            "https://bank.com",
            "the bank",
            "https://example.com/bare",
        ]
    )
    assert [links.nth(i).get_attribute("href") for i in range(3)] == [
        "https://evil.com/login",
        "https://bank.com.evil.com/",
        "https://evil.com/",
    ]
    body = widget.body()
    expect(body).to_contain_text("my bank https://user:secret@bank.example/ <https://bank.com:pw@evil.com/>")


def test_sources_need_only_what_visitors_are_sent(page):
    """Visitors get a document's filename and page, or a web result's url and title: nothing else is needed."""
    citations = [
        {"filename": "guide.pdf", "page": 3},
        {"filename": "guide.pdf", "page": 1},
        {"filename": "notes.md", "page": None},
        {"url": "https://example.com/a", "title": "Example A"},
        {"url": "https://example.com/b", "title": ""},
        {"url": "https://user:pw@example.com/c", "title": "With credentials"},
        {"url": "javascript:alert(1)", "title": "A script"},
    ]
    api = FakeApi(page)
    widget = api.open()
    answer(page, widget, "Sources, please", done("An answer [1].", citations=citations))
    api.history = [
        {"id": "u1", "role": "user", "content": "Sources, please", "status": "complete", "citations": []},
        {"id": "a1", "role": "assistant", "content": "An answer [1].", "status": "complete", "citations": citations},
    ]
    for _load in ("streamed", "reloaded from the history"):
        sources = widget.answer().locator(".bcw-source")
        expect(sources).to_have_text(
            ["guide.pdf (p. 1, 3)", "notes.md", "Example A", "https://example.com/b", "With credentials", "A script"]
        )
        links = widget.answer().locator(".bcw-sources a")
        expect(links).to_have_text(["Example A", "https://example.com/b"])
        assert links.first.get_attribute("href") == "https://example.com/a"
        page.reload()
        widget.wait_ready()


def test_a_cancelled_answer_reads_stopped_and_one_whose_server_died_interrupted(page):
    api = FakeApi(page)
    widget = api.open()
    question = {"role": "user", "status": "complete", "citations": []}
    # Stopped by the visitor: the server ends it with finish_reason `cancelled`.
    answer(page, widget, "First", {"type": "chunk", "content": "Half"})
    widget.stop_button.click()
    page.wait_for_function("window.__fake.last().sent.some((f) => f.type === 'stop')")
    page.evaluate("frames => window.__fake.play(frames)", [done("Half", finish_reason="cancelled", parent_id="u1")])
    expect(widget.answer()).to_have_attribute("data-status", "cancelled")
    expect(widget.answer().locator(".bcw-meta")).to_have_text("Stopped")
    # After a reload: `cancelled` is always a stop (from this tab or another: a client that leaves no longer
    # stops an answer); `interrupted` is an answer whose server process died, kept up to its last checkpoint.
    api.history = [
        {**question, "id": "u1", "content": "First"},
        {"role": "assistant", "status": "cancelled", "citations": [], "id": "a1", "content": "Half"},
        {**question, "id": "u2", "content": "Second"},
        {"role": "assistant", "status": "cancelled", "citations": [], "id": "a2", "content": "Part"},
        {**question, "id": "u3", "content": "Third"},
        {"role": "assistant", "status": "interrupted", "citations": [], "id": "a3", "content": "Bit"},
    ]
    page.reload()
    widget.wait_ready()
    expect(widget.answers.locator(".bcw-meta")).to_have_text(["Stopped", "Stopped", "Interrupted"])
    statuses = [widget.answer(i).get_attribute("data-status") for i in range(3)]
    assert statuses == ["cancelled", "cancelled", "interrupted"]


def run_frame(kind: str, content: str, seq: int, run: str = "r1", **fields) -> dict:
    return {"type": kind, "content": content, "run_id": run, "seq": seq, **fields}


def test_after_a_dropped_connection_the_answer_resumes_from_the_last_frame_rendered_once_each(page):
    api = FakeApi(page)
    widget = api.open()
    answer(page, widget, "Question", run_frame("chunk", "Hello ", 1), run_frame("chunk", "wor", 2))
    expect(widget.body()).to_have_text("Hello wor")
    # The server checkpointed less than this tab rendered; the run goes on and the greeting names it.
    api.history = [
        {"id": "u1", "role": "user", "content": "Question", "status": "complete", "citations": []},
        {"id": "a1", "role": "assistant", "content": "Hello ", "status": "streaming", "citations": []},
    ]
    page.evaluate("window.__fakeGreeting = { run_id: 'r1' }; window.__fake.last().drop()")
    page.wait_for_function("window.__fake.sockets.length === 2 && window.__fake.last().sent.length > 0")
    assert page.evaluate("window.__fake.last().sent") == [{"type": "resume", "run_id": "r1", "after": 2}]
    expect(widget.body()).to_have_text("Hello wor")  # what it had, not the shorter checkpoint
    expect(widget.answer()).to_have_attribute("data-status", "streaming")
    expect(widget.stop_button).to_be_enabled()

    # Frames it already rendered (a server replaying from an older position) are not rendered again.
    page.evaluate(
        "frames => window.__fake.play(frames)",
        [run_frame("chunk", "Hello ", 1), run_frame("chunk", "wor", 2), run_frame("chunk", "ld", 3)],
    )
    expect(widget.body()).to_have_text("Hello world")
    page.evaluate("frames => window.__fake.play(frames)", [run_frame("done", "Hello world", 4, finish_reason="stop")])
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    expect(widget.answers).to_have_count(1)
    expect(widget.users).to_have_text(["Question"])

    # A snapshot replaces the text; a dead server process ends the answer with what it kept, "Interrupted".
    answer(page, widget, "Again", run_frame("chunk", "Part", 1, run="r2"))
    page.evaluate(
        "frames => window.__fake.play(frames)",
        [run_frame("snapshot", "Partial text", 7, run="r2"), run_frame("chunk", "Partial text", 6, run="r2")],
    )
    expect(widget.body()).to_have_text("Partial text")
    interrupted = run_frame("error", "The server process stopped.", 8, run="r2", code="interrupted", partial="Partial")
    page.evaluate("frames => window.__fake.play(frames)", [interrupted])
    expect(widget.answer()).to_have_attribute("data-status", "interrupted")
    expect(widget.answer().locator(".bcw-meta")).to_have_text("Interrupted")
    expect(widget.body()).to_have_text("Partial")
    expect(widget.stop_button).to_be_hidden()
    # A late frame of an answer that ended is not shown as a new one.
    page.evaluate("frames => window.__fake.play(frames)", [run_frame("chunk", " more", 9, run="r2")])
    expect(widget.answers).to_have_count(2)
    expect(widget.body()).to_have_text("Partial")


def test_an_answer_the_history_shows_in_progress_is_resumed_from_its_start(page):
    """A tab that never showed the answer (another tab asked it): the history's text so far stays on
    screen while the run is replayed from its first frame, then the answer goes on."""
    api = FakeApi(page)
    widget = api.open()
    api.history = [
        {"id": "u1", "role": "user", "content": "Question", "status": "complete", "citations": []},
        {"id": "a1", "role": "assistant", "content": "Hello wo", "status": "streaming", "citations": []},
    ]
    page.add_init_script("window.__fakeGreeting = { run_id: 'r1' }")
    page.reload()
    expect(widget.greeting).to_be_visible()
    page.wait_for_function("window.__fake.last().sent.length > 0")
    assert page.evaluate("window.__fake.last().sent") == [{"type": "resume", "run_id": "r1", "after": 0}]
    expect(widget.answer()).to_have_attribute("data-status", "streaming")
    expect(widget.body()).to_have_text("Hello wo")
    expect(widget.stop_button).to_be_visible()
    expect(widget.send_button).to_be_disabled()

    page.evaluate("frames => window.__fake.play(frames)", [run_frame("chunk", "Hello ", 1)])
    expect(widget.body()).to_have_text("Hello wo")  # the replay has not caught up with the checkpoint yet
    page.evaluate("frames => window.__fake.play(frames)", [run_frame("chunk", "wor", 2), run_frame("chunk", "ld!", 3)])
    expect(widget.body()).to_have_text("Hello world!")
    widget.stop_button.click()
    page.wait_for_function("window.__fake.last().sent.some((f) => f.type === 'stop')")
    expect(widget.stop_button).to_have_text("Stopping…")
    stopped = run_frame("done", "Hello world!", 4, finish_reason="cancelled", message_id="a1", parent_id="u1")
    page.evaluate("frames => window.__fake.play(frames)", [stopped])
    expect(widget.answer()).to_have_attribute("data-status", "cancelled")
    expect(widget.answer().locator(".bcw-meta")).to_have_text("Stopped")
    expect(widget.answers).to_have_count(1)


def test_an_answer_in_progress_whose_run_ended_meanwhile_shows_its_end_from_the_history(page):
    """The history showed the answer running; by the time the socket opened its run had ended (the greeting
    names no run): the widget reads the history again instead of leaving the answer in progress."""
    question = {"id": "u1", "role": "user", "content": "Question", "status": "complete", "citations": []}
    reads = [
        [question, {"id": "a1", "role": "assistant", "content": "Hello", "status": "streaming", "citations": []}],
        [question, {"id": "a1", "role": "assistant", "content": "Hello world", "status": "complete", "citations": []}],
    ]

    def messages(route):
        route.fulfill(json={"messages": reads.pop(0) if len(reads) > 1 else reads[0]})

    api = FakeApi(page)
    widget = api.open()
    page.route(f"{api.ORIGIN}/widget/sessions/*/messages", messages)
    page.reload()
    widget.wait_ready()
    expect(widget.answer()).to_have_attribute("data-status", "complete")
    expect(widget.body()).to_have_text("Hello world")
    expect(widget.stop_button).to_be_hidden()
    expect(widget.answers).to_have_count(1)
    assert page.evaluate("window.__fake.last().sent") == []
