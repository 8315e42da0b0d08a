"""`chats.websearch.web_search` against a real fake SearxNG server: results, bounds and failures."""

import pytest

from chats.websearch import WebSearchFailed, WebSearchUnavailable, web_search
from tests.live_server import free_port


async def test_results_come_back_with_their_urls_from_a_json_query(searxng):
    results = await web_search("where is the treasure")
    assert [(r.title, r.url) for r in results] == [
        ("Pirate treasure", "https://example.org/pirates"),
        ("Treasure maps", "https://example.net/maps"),
    ]
    assert results[0].snippet == "Pirates buried their treasure on remote islands."
    [request] = searxng.requests
    assert request.path == "/search"
    assert request.query == {"q": "where is the treasure", "format": "json"}


async def test_unusable_results_are_skipped_and_the_rest_capped(searxng, settings):
    settings.WEB_SEARCH_MAX_RESULTS = 2
    searxng.results = [
        {"url": "javascript:alert(1)", "title": "js", "content": "x"},
        {"url": "file:///etc/passwd", "title": "file", "content": "x"},
        {"title": "no url", "content": "x"},
        "not an object",
        {"url": "https://a.example/1", "title": "  spaced \n title ", "content": "y" * 5000},
        {"url": "https://a.example/2", "title": None, "content": 42},
        {"url": "https://a.example/3", "title": "over the cap", "content": "z"},
    ]
    results = await web_search("q")
    assert [r.url for r in results] == ["https://a.example/1", "https://a.example/2"]
    assert results[0].title == "spaced title"
    assert len(results[0].snippet) == 600
    assert (results[1].title, results[1].snippet) == ("", "")


async def test_a_long_query_is_cut_before_it_is_sent(searxng):
    await web_search("w " * 1000)
    assert len(searxng.requests[0].query["q"]) <= 500


async def test_without_searxng_url_search_is_unavailable(settings):
    settings.SEARXNG_URL = ""
    with pytest.raises(WebSearchUnavailable) as raised:
        await web_search("anything")
    assert raised.value.status_code == 503
    assert "not configured" in raised.value.message


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("status-500", "HTTP 500"),
        ("status-429", "HTTP 429"),
        ("not-json", "JSON"),
        ("oversized", "more data"),
        ("drip", "in time"),
        ("stall", "in time"),
        ("redirect", "HTTP 302"),
    ],
)
async def test_a_failing_search_is_reported_and_follows_nothing(searxng, settings, mode, words):
    settings.WEB_SEARCH_TIMEOUT = 0.5
    searxng.mode = mode
    with pytest.raises(WebSearchFailed) as raised:
        await web_search("treasure")
    assert raised.value.status_code == 502
    assert words in raised.value.message
    assert searxng.canary_hits == 0


async def test_search_that_cannot_be_reached_is_reported(settings):
    settings.SEARXNG_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(WebSearchFailed) as raised:
        await web_search("treasure")
    assert "could not be reached" in raised.value.message
