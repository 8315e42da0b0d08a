"""Web search through a SearxNG instance's JSON API (004 `inference_internet`).

Only the configured SearxNG URL is ever fetched: result URLs are cited, never followed
(docs/reliability.md I2, G2). The search is bounded in time, bytes and results (C8).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from core import metrics, tracing
from core.errors import DomainError

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 500
MAX_TITLE_CHARS = 200
MAX_SNIPPET_CHARS = 600
MAX_URL_CHARS = 2000


class WebSearchUnavailable(DomainError):
    status_code = 503
    code = "web_search_not_configured"


class WebSearchFailed(DomainError):
    status_code = 502
    code = "web_search_failed"


@dataclass(frozen=True, slots=True)
class WebResult:
    title: str
    url: str
    snippet: str

    def citation(self) -> dict[str, Any]:
        return {"title": self.title, "url": self.url, "snippet": self.snippet}


def web_search_enabled() -> bool:
    return bool(settings.SEARXNG_URL)


async def web_search(query: str) -> list[WebResult]:
    """The top results for `query`, or WebSearchUnavailable / WebSearchFailed with a message for the user."""
    if not web_search_enabled():
        raise WebSearchUnavailable(_("Web search is not configured on this server."))
    started = time.perf_counter()
    error_type = ""
    # A client span with the outcome and the number of results, never the query.
    span = tracing.span_start("bytchat.web_search", kind="client")
    try:
        async with asyncio.timeout(settings.WEB_SEARCH_TIMEOUT):
            body = await _fetch(query[:MAX_QUERY_CHARS])
        results = _parse(body)
        span.set_attribute("bytchat.web_search.results", len(results))
        return results
    except WebSearchFailed:
        error_type = "failed"
        raise
    except TimeoutError as exc:
        error_type = "timeout"
        logger.warning("web search timed out")
        raise WebSearchFailed(_("Web search did not answer in time or could not be reached.")) from exc
    except httpx.HTTPError as exc:
        error_type = "unreachable"
        logger.warning("web search failed: %s", type(exc).__name__)
        raise WebSearchFailed(_("Web search did not answer in time or could not be reached.")) from exc
    finally:
        metrics.web_search_duration.labels(error_type).observe(time.perf_counter() - started)
        tracing.span_failed(span, error_type)
        span.end()


async def _fetch(query: str) -> bytes:
    url = settings.SEARXNG_URL.rstrip("/") + "/search"
    timeout = httpx.Timeout(settings.WEB_SEARCH_TIMEOUT)
    # trust_env=False: no proxy from the environment; redirects are not followed.
    async with (
        httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False) as client,
        client.stream("GET", url, params={"q": query, "format": "json"}) as response,
    ):
        if response.status_code != 200:
            logger.warning("web search answered HTTP %s", response.status_code)
            raise WebSearchFailed(_("Web search failed (HTTP %(status)d).") % {"status": response.status_code})
        body = bytearray()
        async for part in response.aiter_bytes():
            body += part
            if len(body) > settings.WEB_SEARCH_MAX_BYTES:
                raise WebSearchFailed(_("Web search sent more data than allowed."))
    return bytes(body)


def _text(value: Any, limit: int) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def _parse(body: bytes) -> list[WebResult]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebSearchFailed(_("Web search answered with something other than JSON.")) from exc
    rows = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise WebSearchFailed(_("Web search answered without results."))
    results: list[WebResult] = []
    for row in rows:
        if len(results) >= settings.WEB_SEARCH_MAX_RESULTS:
            break
        if not isinstance(row, dict):
            continue
        url = row.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > MAX_URL_CHARS:
            continue
        results.append(
            WebResult(
                title=_text(row.get("title"), MAX_TITLE_CHARS),
                url=url,
                snippet=_text(row.get("content"), MAX_SNIPPET_CHARS),
            )
        )
    return results
