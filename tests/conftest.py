"""Fixtures of the browser tests (test_browser_widget.py, test_widget_js_render.py)."""

import pytest

from tests.browser import chromium


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, once per module (skipped, or failed under CI, without it)."""
    with chromium() as browser:
        yield browser
